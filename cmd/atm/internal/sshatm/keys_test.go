package sshatm_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"atm/cmd/atm/internal/sshatm"
)

// Only addresses this machine alone reaches count as loopback.
func TestLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:2222": true, "127.1.2.3:2222": true, "[::1]:2222": true, "localhost:2222": true,
		"0.0.0.0:2222": false, ":2222": false, "[::]:2222": false, "192.168.0.10:2222": false,
		"example.com:2222": false, "127.0.0.1": false,
	} {
		if got := sshatm.Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// The host key is made once, readable by its owner only, and the same key
// comes back on the next start; a file that is not a key is refused.
func TestHostKeyKept(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data", sshatm.HostKeyFile)
	first, created, err := sshatm.HostKey(path)
	if err != nil || !created {
		t.Fatalf("first HostKey: created %v, %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 && runtime.GOOS != "windows" {
		t.Errorf("host key mode %v, want 0600", perm)
	}
	again, created, err := sshatm.HostKey(path)
	if err != nil || created {
		t.Fatalf("second HostKey: created %v, %v", created, err)
	}
	if sshatm.Fingerprint(again.PublicKey()) != sshatm.Fingerprint(first.PublicKey()) {
		t.Error("the host key changed between two starts")
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sshatm.HostKey(path); err == nil || !strings.Contains(err.Error(), "is not a private key") {
		t.Errorf("a damaged host key: %v", err)
	}
}

// An authorized_keys file gives its keys; comments and blank lines are
// skipped; a line that is not a key, a key with options, or a file without
// keys is refused naming the problem.
func TestAuthorizedKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := newKey(t), newKey(t)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	line := func(k gossh.Signer) string {
		return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k.PublicKey())))
	}
	keys, err := sshatm.AuthorizedKeys(write("good", "# the class\n\n"+line(a)+" ana@laptop\n"+line(b)+"\n"))
	if err != nil || len(keys) != 2 || sshatm.Fingerprint(keys[1]) != sshatm.Fingerprint(b.PublicKey()) {
		t.Fatalf("AuthorizedKeys: %d keys, %v", len(keys), err)
	}
	for name, c := range map[string]struct{ text, want string }{
		"garbage": {line(a) + "\nhello\n", "line 2 is not a public key"},
		"options": {`from="10.0.0.1" ` + line(a) + "\n", "line 1 has options before the key"},
		"empty":   {"# nobody yet\n", "holds no public key"},
	} {
		if _, err := sshatm.AuthorizedKeys(write(name, c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
