package client

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// The known-servers file: one line per server, "HOST:PORT SHA256:…", in
// the order they were first met; blank lines and lines starting with #
// are ignored. Several lines for one address accept each of their
// fingerprints, as OpenSSH's known_hosts does.

// knownHeader starts a new known-servers file.
const knownHeader = "# Bank servers this user's atm trusts, one per line: HOST:PORT and the SHA-256\n" +
	"# fingerprint of its TLS certificate, remembered the first time it was met.\n" +
	"# Delete a server's line to accept a new certificate for it.\n"

// knownMu orders the check-then-append of the clients of this process.
var knownMu sync.Mutex

type knownServers struct{ file string }

// lookup returns the fingerprints remembered for hostport.
func (k *knownServers) lookup(hostport string) ([]string, error) {
	f, err := os.Open(k.file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKnownServers, err)
	}
	defer f.Close()
	var fps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == hostport {
			fps = append(fps, fields[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrKnownServers, k.file, err)
	}
	return fps, nil
}

// check says whether fingerprint may be accepted at hostport: first is true
// when nothing is remembered for it yet; a different remembered
// fingerprint is a *CertChangedError.
func (k *knownServers) check(hostport, fingerprint string) (first bool, err error) {
	fps, err := k.lookup(hostport)
	if err != nil {
		return false, err
	}
	if len(fps) == 0 {
		return true, nil
	}
	for _, fp := range fps {
		if fp == fingerprint {
			return false, nil
		}
	}
	return false, &CertChangedError{Addr: hostport, Known: fps[0], Got: fingerprint, File: k.file}
}

// remember appends hostport's fingerprint, unless a line for it appeared
// meanwhile (then that line decides, as check does).
func (k *knownServers) remember(hostport, fingerprint string) error {
	knownMu.Lock()
	defer knownMu.Unlock()
	first, err := k.check(hostport, fingerprint)
	if err != nil || !first {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(k.file), 0o700); err != nil {
		return fmt.Errorf("%w: %v", ErrKnownServers, err)
	}
	f, err := os.OpenFile(k.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKnownServers, err)
	}
	line := hostport + " " + fingerprint + "\n"
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		line = knownHeader + line
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrKnownServers, k.file, err)
	}
	return nil
}
