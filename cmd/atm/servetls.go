package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/tlscert"
)

// errPlaintext refuses plain TCP on an address other machines can reach.
var errPlaintext = errors.New("refusing to serve in clear")

// tlsFlags are the flags of atm serve about TLS and plain TCP.
type tlsFlags struct {
	on        bool
	cert, key string
	dir       string
	plaintext bool
	// fingerprint is the certificate served, once listen has loaded it.
	fingerprint string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "tls", false, "serve over TLS (ATMs connect with --server tls://HOST:PORT): a self-signed certificate is made on first start and kept as tls.crt and tls.key (mode 0600) beside the database, or in --tls-dir; its fingerprint is printed in the start line")
	fs.StringVar(&f.cert, "tls-cert", "", "with --tls: the certificate to serve (PEM), with --tls-key, instead of a self-signed one")
	fs.StringVar(&f.key, "tls-key", "", "with --tls: the private key of --tls-cert (PEM)")
	fs.StringVar(&f.dir, "tls-dir", "", "with --tls: keep the self-signed certificate in this directory instead of beside the database (with --etcd, give --tls-dir, or --tls-cert and --tls-key)")
	fs.BoolVar(&f.plaintext, "insecure-plaintext", false, "serve plain TCP on an address other machines can reach, although PINs and the operator token then cross the network in clear (without it, a non-loopback --addr needs --tls)")
}

// check validates the flags; etcd says the bank is on etcd (no database
// beside which to keep a certificate).
func (f *tlsFlags) check(etcd bool) error {
	switch {
	case (f.cert == "") != (f.key == ""):
		return errors.New("--tls-cert and --tls-key go together: the certificate and its private key")
	case !f.on && (f.cert != "" || f.dir != ""):
		return errors.New("--tls-cert, --tls-key and --tls-dir are for --tls")
	case f.cert != "" && f.dir != "":
		return errors.New("--tls-dir keeps a self-signed certificate; with --tls-cert and --tls-key there is none to keep")
	case f.on && f.plaintext:
		return errors.New("--tls and --insecure-plaintext together: choose one")
	case f.on && etcd && f.cert == "" && f.dir == "":
		return errors.New("with --etcd, --tls needs --tls-cert FILE --tls-key FILE (for instance signed by the bank's own authority, so that ATMs can use --ca) or --tls-dir DIR, where this server keeps a self-signed certificate of its own")
	}
	return nil
}

// listen listens on addr, over TLS when asked (the certificate loaded, or
// made in the directory of dbPath), and returns the listener and what the
// start line says of it. Plain TCP on an address that is not loopback is
// refused (errPlaintext) unless --insecure-plaintext was given.
func (f *tlsFlags) listen(addr, dbPath string) (net.Listener, string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	if !f.on {
		if ta, ok := l.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() && !f.plaintext {
			l.Close()
			return nil, "", fmt.Errorf("%w on %s: it can be reached from other machines, and PINs and the operator token would cross the network in clear. "+
				"Serve it with --tls (ATMs then connect with --server tls://HOST:PORT), listen on 127.0.0.1, or give --insecure-plaintext to serve in clear anyway",
				errPlaintext, addr)
		}
		if f.plaintext {
			return l, ", plain TCP (--insecure-plaintext: PINs cross the network in clear)", nil
		}
		return l, "", nil
	}
	cert, fp, made, err := f.certificate(addr, dbPath)
	if err != nil {
		l.Close()
		return nil, "", err
	}
	f.fingerprint = fp
	note := fmt.Sprintf(", TLS (ATMs connect with tls://%s), certificate %s", reachAt(l.Addr()), fp)
	switch {
	case made:
		c, _ := f.paths(dbPath)
		note += " (made now, kept in " + c + ")"
	case f.cert == "":
		c, _ := f.paths(dbPath)
		note += " (" + c + ")"
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return server.NewTLSListener(l, cfg), note, nil
}

// dialBack is how a process inside this server (the ATMs over SSH)
// reaches the listener at a: its address, tls:// over TLS, and the trust
// that pins the certificate listen loaded.
func (f *tlsFlags) dialBack(a net.Addr) (string, client.TLSOptions) {
	if !f.on {
		return dialable(a), client.TLSOptions{}
	}
	return client.TLSScheme + dialable(a), client.TLSOptions{Fingerprint: f.fingerprint}
}

// reachAt is how another machine writes the address of a listener: this
// machine's name for one on every interface.
func reachAt(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "HOST"
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// paths are the certificate files of a self-signed certificate.
func (f *tlsFlags) paths(dbPath string) (cert, key string) {
	dir := f.dir
	if dir == "" {
		dir = filepath.Dir(dbPath)
	}
	return tlscert.Paths(dir)
}

// certificate loads the given certificate, or loads or makes the kept one.
func (f *tlsFlags) certificate(addr, dbPath string) (tls.Certificate, string, bool, error) {
	if f.cert != "" {
		cert, fp, err := tlscert.Load(f.cert, f.key)
		return cert, fp, false, err
	}
	certFile, keyFile := f.paths(dbPath)
	return tlscert.LoadOrCreate(certFile, keyFile, tlscert.Hosts(addr))
}

// listenExit is the exit code of a failed listen: 2 for a refusal of the
// flags given, 1 otherwise.
func listenExit(err error) int {
	if errors.Is(err, errPlaintext) {
		return 2
	}
	return 1
}
