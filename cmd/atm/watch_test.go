package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The watcher's token: the flag (whose default is $ATM_OPERATOR_TOKEN),
// else the file an ATM's local server writes beside the default database.
func TestWatchOperatorToken(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dir)
	if got := watchToken(""); got != "" {
		t.Fatalf("no flag, no file: token %q", got)
	}
	if code := runWatch([]string{"--server", "127.0.0.1:1", "--operator-token", ""}); code != 2 {
		t.Fatalf("no token: exit %d, want 2", code)
	}
	if err := os.MkdirAll(filepath.Join(dir, "atm"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "atm", "operator.token"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := watchToken(""); got != "s3cret" {
		t.Fatalf("token from the file: %q", got)
	}
	if got := watchToken("given"); got != "given" {
		t.Fatalf("token from the flag: %q", got)
	}
}
