package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"atm/netproto/tlscert"
)

// TLS: an address written tls://HOST:PORT is reached over TLS, with the
// same protocol inside; any other address is plain TCP. A failover list
// may mix both.
//
// Trust, in order of precedence:
//   - TLSOptions.Fingerprint pins one certificate.
//   - TLSOptions.CAFile trusts the certificates its authorities signed for
//     the host dialled (names checked as a browser does).
//   - Otherwise trust on first use, as SSH does: the first certificate seen
//     at an address is remembered in the known-servers file (after the
//     handshake proved the server holds its key), and later connections to
//     that address accept that certificate only. A different one is refused
//     with a *CertChangedError; nothing is sent on such a connection.

// TLSScheme prefixes an address reached over TLS.
const TLSScheme = "tls://"

// KnownServersEnv names the environment variable that, when set, is the
// known-servers file (instead of the one in the user's config directory).
const KnownServersEnv = "ATM_KNOWN_SERVERS"

// TLS errors.
var (
	// ErrCertChanged is matched by a *CertChangedError.
	ErrCertChanged = errors.New("the bank's certificate changed")
	// ErrNotTLS: a tls:// address where the server speaks the plain
	// protocol.
	ErrNotTLS = errors.New("the server does not speak TLS")
	// ErrCertUntrusted: the certificate is not signed by a trusted
	// authority for the host dialled (with a CA), or is not the pinned one.
	ErrCertUntrusted = errors.New("the bank's certificate is not trusted")
	// ErrKnownServers: the known-servers file could not be read or
	// written.
	ErrKnownServers = errors.New("the known-servers file is unusable")
)

// TLSOptions says which certificates a client trusts at tls:// addresses.
// The zero value trusts on first use with the default known-servers file.
type TLSOptions struct {
	// CAFile is a PEM file of certificate authorities: when set, a server's
	// certificate must be signed by one of them for the host dialled, and
	// the known-servers file is not used.
	CAFile string
	// KnownServers is the file where fingerprints are remembered; default
	// KnownServersFile().
	KnownServers string
	// Fingerprint, when set, is the only certificate accepted (as
	// tlscert.Fingerprint writes it): for a process that knows the server's
	// certificate already.
	Fingerprint string
}

// TLSInfo describes the TLS of a connection.
type TLSInfo struct {
	// Fingerprint is the SHA-256 fingerprint of the server's certificate,
	// as the server prints it when it starts.
	Fingerprint string
	// FirstUse says the certificate was not known for this address and has
	// just been remembered in File: compare Fingerprint with the one the
	// bank's operator announces.
	FirstUse bool
	// CA says the certificate was accepted because a trusted authority
	// signed it.
	CA bool
	// File is the known-servers file consulted ("" with a CA or a pin).
	File string
}

// CertChangedError refuses a server whose certificate differs from the one
// remembered for its address. It matches ErrCertChanged.
type CertChangedError struct {
	Addr  string // HOST:PORT
	Known string // the fingerprint remembered
	Got   string // the fingerprint the server presented
	File  string // the known-servers file
}

func (e *CertChangedError) Error() string {
	return fmt.Sprintf("WARNING: the certificate of the bank at %s has changed: %s was remembered, the server presented %s. "+
		"Someone may be intercepting the connection (and would read PINs), or the bank was given a new certificate. "+
		"Nothing was sent. If the bank's operator confirms the new fingerprint, delete the line for %s in %s and connect again",
		e.Addr, e.Known, e.Got, e.Addr, e.File)
}

// Is makes the error match ErrCertChanged.
func (e *CertChangedError) Is(target error) bool { return target == ErrCertChanged }

// KnownServersFile is the default known-servers file: $ATM_KNOWN_SERVERS,
// else known_servers in the atm folder of the user's config directory
// (os.UserConfigDir).
func KnownServersFile() (string, error) {
	if f := os.Getenv(KnownServersEnv); f != "" {
		return f, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("%w: no config directory for it (%v); set $%s to a file", ErrKnownServers, err, KnownServersEnv)
	}
	return dir + string(os.PathSeparator) + "atm" + string(os.PathSeparator) + "known_servers", nil
}

// SplitScheme splits an address into HOST:PORT and whether it is reached
// over TLS ("tls://HOST:PORT").
func SplitScheme(addr string) (hostport string, secure bool) {
	if rest, ok := strings.CutPrefix(addr, TLSScheme); ok {
		return rest, true
	}
	return addr, false
}

// DialTransport opens the transport to one server address: a TCP
// connection, with TLS inside for a tls:// address, its certificate
// checked as opts says. info is nil over plain TCP. It reads nothing of
// the protocol: the server's greeting is next on the connection.
func DialTransport(ctx context.Context, addr string, opts TLSOptions) (conn net.Conn, info *TLSInfo, err error) {
	hostport, secure := SplitScheme(addr)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the bank at %s: %w", addr, err)
	}
	if !secure {
		return nc, nil, nil
	}
	tc, info, err := clientTLS(ctx, nc, hostport, opts)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return tc, info, nil
}

// clientTLS runs the client's handshake on nc.
func clientTLS(ctx context.Context, nc net.Conn, hostport string, opts TLSOptions) (*tls.Conn, *TLSInfo, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	info := &TLSInfo{}
	var known *knownServers
	switch {
	case opts.Fingerprint != "":
		cfg.InsecureSkipVerify = true // the fingerprint is checked below
	case opts.CAFile != "":
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("read the certificate authorities in %s: %w", opts.CAFile, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("%s holds no PEM certificate", opts.CAFile)
		}
		info.CA = true
	default:
		file := opts.KnownServers
		if file == "" {
			if file, err = KnownServersFile(); err != nil {
				return nil, nil, err
			}
		}
		known = &knownServers{file: file}
		info.File = file
		cfg.InsecureSkipVerify = true // the fingerprint is checked below
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: the server at %s presented no certificate", ErrCertUntrusted, hostport)
		}
		info.Fingerprint = tlscert.Fingerprint(cs.PeerCertificates[0].Raw)
		switch {
		case opts.Fingerprint != "":
			if info.Fingerprint != opts.Fingerprint {
				return fmt.Errorf("%w: the server at %s presented %s, not %s", ErrCertUntrusted, hostport, info.Fingerprint, opts.Fingerprint)
			}
		case known != nil:
			first, err := known.check(hostport, info.Fingerprint)
			if err != nil {
				return err
			}
			info.FirstUse = first
		}
		return nil
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, handshakeError(hostport, err)
	}
	if info.FirstUse {
		// Remembered only now: the handshake proved the server holds the
		// certificate's key.
		if err := known.remember(hostport, info.Fingerprint); err != nil {
			tc.Close()
			return nil, nil, err
		}
	}
	return tc, info, nil
}

// handshakeError says why a TLS handshake with the server at hostport
// failed, in the errors of this package where it can.
func handshakeError(hostport string, err error) error {
	var rhe tls.RecordHeaderError
	var cve *tls.CertificateVerificationError
	switch {
	case errors.Is(err, ErrCertChanged), errors.Is(err, ErrCertUntrusted), errors.Is(err, ErrKnownServers):
		return err
	case errors.As(err, &rhe):
		if rhe.RecordHeader[0] == '{' {
			return fmt.Errorf("%w: the server at %s answered in plain text: it serves the bank without TLS; connect without %s (PINs then cross the network in clear), or ask its operator to start it with --tls",
				ErrNotTLS, hostport, TLSScheme)
		}
		return fmt.Errorf("%w: the server at %s did not answer with TLS: %v", ErrNotTLS, hostport, err)
	case errors.As(err, &cve):
		return fmt.Errorf("%w: the certificate of the server at %s is not signed for %s by the given authorities: %v",
			ErrCertUntrusted, hostport, hostport, cve.Err)
	}
	return fmt.Errorf("TLS handshake with the bank at %s: %w", hostport, err)
}
