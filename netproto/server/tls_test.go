package server_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/polltest"
	"atm/netproto/server"
	"atm/netproto/tlscert"
	"atm/netproto/wire"
)

// selfSigned is a TLS server configuration with a new self-signed
// certificate for 127.0.0.1, and that certificate's fingerprint.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	certPEM, keyPEM, err := tlscert.SelfSigned([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return serverConfig(t, certPEM, keyPEM)
}

func serverConfig(t *testing.T, certPEM, keyPEM []byte) (*tls.Config, string) {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, tlscert.Fingerprint(cert.Certificate[0])
}

// serveTLSOn serves e's bank on one more listener at addr ("127.0.0.1:0"
// for any port) over TLS with cfg, until the listener is closed, and
// returns the listener.
func (e *env) serveTLSOn(addr string, cfg *tls.Config) net.Listener {
	e.t.Helper()
	var l net.Listener
	polltest.Until(e.t, "listening on "+addr, 10*time.Second, func() bool {
		var err error
		l, err = net.Listen("tcp", addr)
		return err == nil
	})
	go func() { _ = e.srv.Serve(server.NewTLSListener(l, cfg)) }()
	e.t.Cleanup(func() { l.Close() })
	return l
}

// TestTLSFirstUseRemembersTheCertificate: the first connection to a TLS
// server remembers its fingerprint in the known-servers file (created with
// mode 0600) and says so; the next connection finds it there. The protocol
// inside is the same: a login and a deposit go through.
func TestTLSFirstUseRemembersTheCertificate(t *testing.T) {
	t.Parallel()
	e := newTLSEnv(t)
	hostport, _ := client.SplitScheme(e.addr)
	c := e.login("123", client.Options{ProcessID: "atm-tls"})
	info := c.Hello().TLS
	if info == nil || !info.FirstUse || info.Fingerprint != e.fingerprint || info.File != e.trust.KnownServers {
		t.Fatalf("first connection's TLS = %+v; want first use of %s recorded in %s", info, e.fingerprint, e.trust.KnownServers)
	}
	if r, err := c.Deposit(ctx(t), 12_34); err != nil || r.Balance != 101_234 {
		t.Fatalf("deposit over TLS = %+v, %v", r, err)
	}
	b, err := os.ReadFile(e.trust.KnownServers)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\n"+hostport+" "+e.fingerprint+"\n") {
		t.Fatalf("known_servers does not hold %s %s:\n%s", hostport, e.fingerprint, b)
	}
	if st, err := os.Stat(e.trust.KnownServers); err != nil || runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("known_servers: %v, mode %v; want 0600", err, st.Mode())
	}
	again := e.dial(client.Options{})
	if info := again.Hello().TLS; info == nil || info.FirstUse || info.Fingerprint != e.fingerprint {
		t.Fatalf("second connection's TLS = %+v; want the known certificate", info)
	}
	if after, _ := os.ReadFile(e.trust.KnownServers); !bytes.Equal(after, b) {
		t.Fatalf("a known server was written again:\n%s", after)
	}
	if plain := newEnv(t).dial(client.Options{}); plain.Hello().TLS != nil {
		t.Fatalf("a plain connection reports TLS %+v", plain.Hello().TLS)
	}
}

// TestTLSChangedCertificateRefused: a server that comes back at a
// remembered address with another certificate is refused before anything
// is sent, with an error naming both fingerprints and the file to edit;
// the file keeps the first. Once its line is deleted, the new one is
// accepted (and remembered).
func TestTLSChangedCertificateRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	known := filepath.Join(t.TempDir(), "known_servers")
	trust := client.TLSOptions{KnownServers: known}
	cfgA, fpA := selfSigned(t)
	l := e.serveTLSOn("127.0.0.1:0", cfgA)
	hostport := l.Addr().String()
	addr := client.TLSScheme + hostport
	c := e.dialAddr(addr, client.Options{TLS: trust})
	c.Close()

	l.Close()
	cfgB, fpB := selfSigned(t)
	e.serveTLSOn(hostport, cfgB)
	_, err := client.Dial(ctx(t), addr, client.Options{TLS: trust})
	var changed *client.CertChangedError
	if !errors.Is(err, client.ErrCertChanged) || !errors.As(err, &changed) {
		t.Fatalf("dial with a swapped certificate: %v; want ErrCertChanged", err)
	}
	if changed.Addr != hostport || changed.Known != fpA || changed.Got != fpB || changed.File != known {
		t.Fatalf("changed = %+v; want %s: %s then %s in %s", changed, hostport, fpA, fpB, known)
	}
	for _, part := range []string{fpA, fpB, known, "WARNING", "delete the line for " + hostport} {
		if !strings.Contains(err.Error(), part) {
			t.Fatalf("the refusal does not say %q: %v", part, err)
		}
	}
	b, _ := os.ReadFile(known)
	if strings.Contains(string(b), fpB) || !strings.Contains(string(b), fpA) {
		t.Fatalf("known_servers after the refusal:\n%s", b)
	}
	// The server saw the client refuse its certificate; the bank saw no
	// connection.
	polltest.Until(t, "the server's log of the refused handshake", 10*time.Second, func() bool {
		return bytes.Contains(e.log.Bytes(), []byte("TLS handshake failed"))
	})

	// The operator confirms the new certificate: the line is deleted.
	if err := os.WriteFile(known, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c = e.dialAddr(addr, client.Options{TLS: trust})
	if info := c.Hello().TLS; info == nil || !info.FirstUse || info.Fingerprint != fpB {
		t.Fatalf("after deleting the line: TLS %+v; want %s on first use", info, fpB)
	}
}

// TestTLSTrustsACertificateAuthority: with --ca, a server certificate
// signed by that authority for the address dialled is accepted without the
// known-servers file; a self-signed one is refused.
func TestTLSTrustsACertificateAuthority(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	caCert, caKey, err := tlscert.NewCA("Banco Lamport test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, caCert, 0o644); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := tlscert.SignedBy([]string{"127.0.0.1"}, time.Now(), caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg, fp := serverConfig(t, certPEM, keyPEM)
	known := filepath.Join(dir, "known_servers")
	trust := client.TLSOptions{CAFile: caFile, KnownServers: known}
	addr := client.TLSScheme + e.serveTLSOn("127.0.0.1:0", cfg).Addr().String()
	c := e.dialAddr(addr, client.Options{TLS: trust})
	if info := c.Hello().TLS; info == nil || !info.CA || info.FirstUse || info.Fingerprint != fp {
		t.Fatalf("TLS %+v; want a certificate trusted by the CA", info)
	}
	if _, err := c.Login(ctx(t), "456", "1234"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(known); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the known-servers file was touched with a CA: %v", err)
	}

	selfCfg, _ := selfSigned(t)
	other := client.TLSScheme + e.serveTLSOn("127.0.0.1:0", selfCfg).Addr().String()
	if _, err := client.Dial(ctx(t), other, client.Options{TLS: trust}); !errors.Is(err, client.ErrCertUntrusted) {
		t.Fatalf("a self-signed server with --ca: %v; want ErrCertUntrusted", err)
	}
}

// TestPlainClientOnTLSPort: a client of the plain protocol waits for the
// greeting; the TLS port tells it, in one plain line, to use tls://.
func TestPlainClientOnTLSPort(t *testing.T) {
	t.Parallel()
	e := newTLSEnv(t)
	hostport, _ := client.SplitScheme(e.addr)
	_, err := client.Dial(ctx(t), hostport, client.Options{})
	if !errors.Is(err, wire.ErrTLSRequired) || !strings.Contains(err.Error(), "tls://"+hostport) {
		t.Fatalf("plain client on the TLS port: %v; want tls_required naming tls://%s", err, hostport)
	}
	// A plain client that speaks first is told the same.
	r, err := net.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Write([]byte(`{"type":"login","id":"1","account":"123","pin":"1234"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	line := make([]byte, 4096)
	n, _ := r.Read(line)
	if !bytes.Contains(line[:n], []byte(`"code":"tls_required"`)) {
		t.Fatalf("a plain request on the TLS port got %q", line[:n])
	}
}

// TestTLSClientOnPlainPort: a tls:// client at a plain port is told the
// server speaks the plain protocol; the server closes the connection at
// the TLS hello instead of waiting for a line.
func TestTLSClientOnPlainPort(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := client.Dial(ctx(t), client.TLSScheme+e.addr, client.Options{TLS: client.TLSOptions{KnownServers: filepath.Join(t.TempDir(), "k")}})
	if !errors.Is(err, client.ErrNotTLS) || !strings.Contains(err.Error(), "without tls://") {
		t.Fatalf("TLS client on a plain port: %v; want ErrNotTLS", err)
	}
	polltest.Until(t, "the server's record of the TLS client", 10*time.Second, func() bool {
		return bytes.Contains(e.log.Bytes(), []byte("a TLS client on this plain port"))
	})
}

// dialAddr dials addr (not e's own) with a client closed at the end of the
// test.
func (e *env) dialAddr(addr string, opts client.Options) *client.Client {
	e.t.Helper()
	c, err := client.Dial(ctx(e.t), addr, opts)
	if err != nil {
		e.t.Fatalf("dial %s: %v", addr, err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}
