// Package tlscert holds the certificates of the bank's TLS port: a
// self-signed certificate made once and kept in two PEM files, and the
// fingerprint by which a server announces its certificate and a client
// remembers it.
//
// Guarantees:
//   - LoadOrCreate never overwrites a file: an existing pair is loaded (and
//     must match), a missing pair is made; one file without the other is an
//     error that names the missing file.
//   - The private key is written with mode 0600, in a directory made with
//     mode 0700 when it does not exist.
//   - Fingerprint is SHA-256 over the certificate's DER bytes, written
//     "SHA256:" + unpadded base64, as OpenSSH writes key fingerprints; the
//     same certificate always has the same fingerprint.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity is how long a certificate made by LoadOrCreate is valid.
const Validity = 10 * 365 * 24 * time.Hour

// Fingerprint is the SHA-256 fingerprint of a DER-encoded certificate:
// "SHA256:" followed by 43 characters of unpadded standard base64.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// Paths are the two files of a kept certificate in dir: tls.crt (the
// certificate) and tls.key (its private key).
func Paths(dir string) (certFile, keyFile string) {
	return filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
}

// Load reads a certificate and its key from PEM files, and returns it with
// the fingerprint of its leaf.
func Load(certFile, keyFile string) (tls.Certificate, string, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("load the TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return cert, Fingerprint(cert.Certificate[0]), nil
}

// LoadOrCreate loads the certificate kept in certFile and keyFile, or, when
// neither exists, makes a self-signed ECDSA P-256 certificate for hosts
// (names and IP addresses, as its subject alternative names), writes it
// there and returns it. created says a new one was made.
func LoadOrCreate(certFile, keyFile string, hosts []string) (cert tls.Certificate, fingerprint string, created bool, err error) {
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		cert, fingerprint, err = Load(certFile, keyFile)
		return cert, fingerprint, false, err
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		return cert, "", false, fmt.Errorf("the TLS certificate %s is there but its key %s is missing: restore the key, or remove the certificate to make a new pair (clients that remembered the old one will refuse the new one)", certFile, keyFile)
	case keyErr == nil && errors.Is(certErr, fs.ErrNotExist):
		return cert, "", false, fmt.Errorf("the TLS key %s is there but its certificate %s is missing: restore the certificate, or remove the key to make a new pair", keyFile, certFile)
	case !errors.Is(certErr, fs.ErrNotExist):
		return cert, "", false, fmt.Errorf("the TLS certificate %s: %w", certFile, certErr)
	case !errors.Is(keyErr, fs.ErrNotExist):
		return cert, "", false, fmt.Errorf("the TLS key %s: %w", keyFile, keyErr)
	}
	certPEM, keyPEM, err := SelfSigned(hosts, time.Now())
	if err != nil {
		return cert, "", false, err
	}
	for _, f := range []string{certFile, keyFile} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return cert, "", false, fmt.Errorf("create the directory of %s: %w", f, err)
		}
	}
	// The key first, exclusively: a concurrent start cannot pair its
	// certificate with another key.
	if err := writeNew(keyFile, keyPEM, 0o600); err != nil {
		return cert, "", false, fmt.Errorf("keep the TLS key in %s: %w", keyFile, err)
	}
	if err := writeNew(certFile, certPEM, 0o644); err != nil {
		return cert, "", false, fmt.Errorf("keep the TLS certificate in %s: %w", certFile, err)
	}
	cert, fingerprint, err = Load(certFile, keyFile)
	return cert, fingerprint, err == nil, err
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SelfSigned makes a self-signed ECDSA P-256 certificate for hosts, valid
// from an hour before now for Validity, usable by a server, and returns it
// and its private key in PEM. Each host is an IP address or a DNS name.
func SelfSigned(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	return sign(hosts, now, nil, nil)
}

// NewCA makes a self-signed certificate authority (ECDSA P-256), in PEM,
// for a bank that signs its servers' certificates with its own CA.
func NewCA(name string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := template(now)
	tmpl.Subject = pkix.Name{CommonName: name, Organization: []string{"Banco Lamport"}}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	return encode(der, key)
}

// SignedBy makes a server certificate for hosts signed by the CA in
// caCertPEM and caKeyPEM (as NewCA makes them), in PEM with its new key.
func SignedBy(hosts []string, now time.Time, caCertPEM, caKeyPEM []byte) (certPEM, keyPEM []byte, err error) {
	ca, err := tls.X509KeyPair(caCertPEM, caKeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("the CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("the CA: %w", err)
	}
	return sign(hosts, now, caCert, ca.PrivateKey)
}

func sign(hosts []string, now time.Time, parent *x509.Certificate, parentKey any) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := template(now)
	tmpl.Subject = pkix.Name{CommonName: "atm bank server", Organization: []string{"Banco Lamport"}}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.BasicConstraintsValid = true
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	return encode(der, key)
}

func template(now time.Time) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(Validity),
	}
}

func encode(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}

// Hosts are the names a self-signed certificate for a server listening on
// addr should carry: the listening IP when it is a specific one, else
// localhost, the loopback addresses and this machine's host name. They only
// matter to clients that check names (a CA's certificates); clients that
// trust on first use check the fingerprint.
func Hosts(addr string) []string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if ip := net.ParseIP(host); ip == nil && host != "" {
		hosts = append(hosts, host)
	} else if ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		hosts = append(hosts, host)
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	return hosts
}
