package sshatm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"
)

// HostKeyFile is the name of the host key kept beside a bank's database.
const HostKeyFile = "ssh_host_ed25519_key"

// HostKey returns the host key kept at path, or makes a new Ed25519 key
// and keeps it there (mode 0600, never overwriting a file that appeared
// meanwhile): the same key on every start, so that clients that trusted
// it once keep trusting it. created tells whether the key is new.
func HostKey(path string) (key gossh.Signer, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err = gossh.ParsePrivateKey(b)
		if err != nil {
			return nil, false, fmt.Errorf("the SSH host key %s is not a private key: %w", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("read the SSH host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "atm serve host key")
	if err != nil {
		return nil, false, err
	}
	data := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create the directory of the SSH host key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return HostKey(path) // made by another start meanwhile: use that one
	}
	if err != nil {
		return nil, false, fmt.Errorf("keep the SSH host key: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, false, fmt.Errorf("keep the SSH host key in %s: %w", path, err)
	}
	key, err = gossh.ParsePrivateKey(data)
	return key, true, err
}

// Fingerprint is a key's SHA256 fingerprint as OpenSSH shows it
// ("SHA256:…"), for people to compare with what their client prints.
func Fingerprint(key gossh.PublicKey) string { return gossh.FingerprintSHA256(key) }

// AuthorizedKeys reads the public keys of an OpenSSH authorized_keys file:
// one key a line, blank lines and # comments skipped. Options before a key
// are not supported: a line with them is refused with its number, as is a
// file without any key.
func AuthorizedKeys(path string) ([]gossh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the authorized keys: %w", err)
	}
	var keys []gossh.PublicKey
	for n, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, _, opts, _, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d is not a public key (ssh-ed25519 AAAA… or the like): %w", path, n+1, err)
		}
		if len(opts) > 0 {
			return nil, fmt.Errorf("%s line %d has options before the key; give the key alone", path, n+1)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no public key: nobody could log in", path)
	}
	return keys, nil
}

// Loopback reports whether a listening address HOST:PORT is reachable
// from this machine only: "localhost" or a loopback IP. An empty host (all
// interfaces), any other name or IP, or an address that does not parse is
// not.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
