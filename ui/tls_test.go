package ui

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/bank/boltstore"
	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/tlscert"

	"golang.org/x/crypto/bcrypt"

	"atm/bank"
)

// tlsBank is a real bank served over TLS on 127.0.0.1:0 with a new
// self-signed certificate: its tls:// address and its fingerprint.
func tlsBank(t *testing.T) (addr, fingerprint string) {
	t.Helper()
	addr, fingerprint, _ = tlsBankAt(t, filepath.Join(t.TempDir(), "bank.db"), "127.0.0.1:0")
	return addr, fingerprint
}

// tlsBankAt serves the bank file db over TLS at hostport with a new
// self-signed certificate until stop (or the end of the test).
func tlsBankAt(t *testing.T, db, hostport string) (addr, fingerprint string, stop func()) {
	t.Helper()
	certPEM, keyPEM, err := tlscert.SelfSigned([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b, err := boltstore.Open(db, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	deadline := time.Now().Add(10 * time.Second)
	for l == nil { // the address of a server just stopped may take a moment
		if l, err = net.Listen("tcp", hostport); err != nil && time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	srv := &server.Server{Ledger: b}
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(server.NewTLSListener(l, &tls.Config{Certificates: []tls.Certificate{cert}}))
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
			<-done
			b.Close()
		})
	}
	t.Cleanup(stop)
	return client.TLSScheme + l.Addr().String(), tlscert.Fingerprint(cert.Certificate[0]), stop
}

// dialTLS dials addr with the real client and the given trust.
func dialTLS(t *testing.T, addr string, trust client.TLSOptions) (Client, error) {
	t.Helper()
	c, err := DialNetproto(context.Background(), addr, client.Options{ProcessID: "atm-test", DialTimeout: 5 * time.Second, TLS: trust})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// What the ATM says when TLS stands between it and the bank: what
// happened and what to do, in words, never a Go or TLS library error.
func TestTLSConnectErrorsAreReadable(t *testing.T) {
	addr, fp := tlsBank(t)
	hostport, _ := client.SplitScheme(addr)
	dir := t.TempDir()

	// A certificate other than the remembered one, in the file where the
	// ATM keeps them by default (shown from the home directory).
	known := homeKnownServers(t)
	const oldFP = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if err := os.WriteFile(known, []byte(hostport+" "+oldFP+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, changed := dialTLS(t, addr, client.TLSOptions{KnownServers: known})
	// A plain client at the TLS port.
	_, plainOnTLS := dialTLS(t, hostport, client.TLSOptions{})
	// A TLS client at a plain port.
	plainAddr := closedPortServer(t)
	_, tlsOnPlain := dialTLS(t, client.TLSScheme+plainAddr, client.TLSOptions{KnownServers: known})
	// A CA that did not sign the certificate.
	caPEM, _, err := tlscert.NewCA("another authority", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	_, untrustedErr := dialTLS(t, addr, client.TLSOptions{CAFile: caFile})

	// want: sentences, as words; exact: fingerprints and paths, which
	// may be broken across lines. Both in pairs, English then Portuguese.
	cases := []struct {
		name        string
		addr        string
		err         error
		want, exact []string
	}{
		{"certificate changed", addr, changed, []string{
			"WARNING: the bank's certificate has changed. The ATM did not connect.", "ATENÇÃO: o certificado do banco mudou. O caixa não se conectou.",
			"Someone may be intercepting the connection", "Alguém pode estar interceptando a conexão",
			"Nothing was sent", "Nada foi enviado",
			"Only if the bank's operator confirms the new one, delete the line for", "Só se o operador do banco confirmar o novo, apague a linha de"},
			[]string{
				"Remembered" + oldFP + ",now" + fp, "guardadoé" + oldFP + ";odeagora," + fp,
				"deletethelinefor" + hostport + "in~/.config/atm/known_servers.", "apaguealinhade" + hostport + "em~/.config/atm/known_servers."}},
		{"plain client at a TLS port", hostport, plainOnTLS, []string{
			"disagree about TLS", "não combinam quanto ao uso de TLS",
			"speaks TLS only.", "só aceita TLS."},
			[]string{"--server" + addr, "--server" + addr}},
		{"TLS client at a plain port", client.TLSScheme + plainAddr, tlsOnPlain, []string{
			"disagree about TLS", "não combinam quanto ao uso de TLS",
			"answers without TLS", "responde sem TLS",
			"start the server with", "inicie o servidor com"},
			[]string{"--tls.", "--tls."}},
		{"not signed by the CA", addr, untrustedErr, []string{
			"certificate is not trusted", "certificado do banco não é confiável",
			"not signed for that address", "não foi assinado para esse endereço"},
			[]string{"--ca", "--ca"}},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Fatalf("%s: the dial succeeded", c.name)
		}
		t.Run(c.name, func(t *testing.T) {
			eachScreen(t, func(t *testing.T, m *Model, w words) {
				m.cfg.Addr, m.connect.addr = c.addr, c.addr
				send(m, dialResultMsg{err: c.err})
				text := atmPanelWords(t, m)
				mustContain(t, text, w.pick(c.want...)...)
				mustContain(t, squash(text), w.pick(c.exact...)...)
				mustNotContain(t, text, "x509", "tls: ", "remote error", "handshake", "record", w.one("not answering", "não está respondendo"))
			})
		})
	}
}

// closedPortServer is a plain bank on 127.0.0.1:0.
func closedPortServer(t *testing.T) string {
	t.Helper()
	s, err := startTestServer("127.0.0.1:0", filepath.Join(t.TempDir(), "bank.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Addr()
}

// The first connection to a TLS bank shows the certificate's fingerprint
// on the login screen, and where it is now remembered.
func TestTLSFirstUseShownOnLogin(t *testing.T) {
	t.Parallel()
	addr, fp := tlsBank(t)
	known := filepath.Join(t.TempDir(), "known_servers")
	c, err := dialTLS(t, addr, client.TLSOptions{KnownServers: known})
	if err != nil {
		t.Fatal(err)
	}
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		send(m, dialResultMsg{client: c})
		text := atmPanelWords(t, m)
		mustContain(t, text, w.pick("Welcome! Please log in.", "Bem-vindo! Faça seu login.",
			"First connection to this bank: its certificate", "Primeira conexão com este banco: o certificado",
			"another will be refused", "outro será recusado")...)
		mustContain(t, squash(text), w.pick("certificate"+fp+"isnowrememberedin"+known, "certificado"+fp+"agoraestáguardadoem"+known)...)
	})
	again, err := dialTLS(t, addr, client.TLSOptions{KnownServers: known})
	if err != nil {
		t.Fatal(err)
	}
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		send(m, dialResultMsg{client: again})
		mustNotContain(t, atmPanelWords(t, m), w.one("First connection", "Primeira conexão"))
	})
}

// A connected ATM whose server comes back with a certificate it refuses
// leaves the session and shows the warning on the connect screen.
func TestTLSReconnectRefusedShowsTheWarning(t *testing.T) {
	addr, _ := tlsBank(t)
	hostport, _ := client.SplitScheme(addr)
	known := homeKnownServers(t)
	if err := os.WriteFile(known, []byte(hostport+" SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, refused := dialTLS(t, addr, client.TLSOptions{KnownServers: known})
	if !errors.Is(refused, client.ErrCertChanged) {
		t.Fatalf("dial: %v, want ErrCertChanged", refused)
	}
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		m.cfg.Addr, m.connect.addr = addr, addr
		connected(m)
		send(m, statusMsg{gen: m.gen, status: client.ConnStatus{State: client.StateLost}},
			statusMsg{gen: m.gen, status: client.ConnStatus{State: client.StateReconnecting, Attempt: 2, Err: refused}})
		if m.page != pageConnect || m.client != nil {
			t.Fatalf("after a refused certificate: page %v, client %v", m.page, m.client)
		}
		text := atmPanelWords(t, m)
		mustContain(t, text, w.one("WARNING: the bank's certificate has changed", "ATENÇÃO: o certificado do banco mudou"))
		mustContain(t, squash(text), w.one("deletethelinefor"+hostport+"in~/.config/atm/known_servers.", "apaguealinhade"+hostport+"em~/.config/atm/known_servers."))
	})
}

// squash is text without its spaces, for words a narrow screen breaks.
func squash(text string) string { return strings.ReplaceAll(text, " ", "") }

// homeKnownServers makes a home directory for the test and returns the
// known-servers file in it, where the ATM keeps it on Linux by default.
func homeKnownServers(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := filepath.Join(home, ".config", "atm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "known_servers")
}

// End to end: an ATM logged in to a TLS bank whose server comes back with
// another certificate (the files deleted, the server restarted) refuses
// it, leaves the session, and shows the warning; it keeps running.
func TestTLSSwappedCertificateEndToEnd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bank.db")
	addr, fp, stop := tlsBankAt(t, db, "127.0.0.1:0")
	hostport, _ := client.SplitScheme(addr)
	known := homeKnownServers(t)
	a := startATMConfig(t, Config{Addr: addr, ProcessID: "atm-tls", RequestTimeout: 10 * time.Second,
		TLS: client.TLSOptions{KnownServers: known}})
	shown := squash(a.waitFor("First connection to this bank"))
	if !strings.Contains(shown, fp) {
		t.Fatalf("the login screen does not show the fingerprint %s:\n%s", fp, a.rec.screen())
	}
	a.typeKeys("123\r")
	a.typeKeys("1234\r")
	a.waitFor("What would you like to do?", "Ana Souza")

	stop()
	_, swapped, _ := tlsBankAt(t, db, hostport)
	a.waitFor("WARNING: the bank's certificate has changed", "Nothing was sent")
	if s := squash(a.rec.screen()); !strings.Contains(s, fp) || !strings.Contains(s, swapped) {
		t.Fatalf("the warning does not show both fingerprints %s and %s:\n%s", fp, swapped, a.rec.screen())
	}
	a.quit()
}
