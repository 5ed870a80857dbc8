package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"atm/netproto/polltest"
)

// TestServeKeepsATokenAndDelaysForTeaching runs atm serve without an
// operator token and with --delay: it keeps a new token in operator.token
// beside the database (mode 0600), which atm log --server finds on its
// own; its greeting says messages are delayed, and a request's answer
// comes no sooner than the shortest delay.
func TestServeKeepsATokenAndDelaysForTeaching(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "bank.db")
	out := filepath.Join(dir, "serve.log")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db, "--delay", "40ms-60ms")
	cmd.Env = append(os.Environ(), "ATM_OPERATOR_TOKEN=")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var (
		addr string
		b    []byte
	)
	started := polltest.Within(20*time.Second, func() bool {
		b, _ = os.ReadFile(out)
		m := listenRE.FindSubmatch(b)
		if m == nil {
			return false
		}
		addr = string(m[1])
		if !strings.Contains(string(b), "operator token in "+tokenFile(db)) || !strings.Contains(string(b), "teaching mode") {
			t.Fatalf("start line: %s", b)
		}
		return true
	})
	if !started {
		t.Fatalf("no start line: %s", b)
	}
	st, err := os.Stat(tokenFile(db))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v", err, st)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var hello struct{ Message string }
	line, err := br.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &hello) != nil || !strings.Contains(hello.Message, "delays each message") {
		t.Fatalf("greeting %q: %v", line, err)
	}
	start := time.Now()
	if _, err := c.Write([]byte(`{"type":"balance","id":"b","proc":"p","ts":100}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadBytes('\n'); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Fatalf("answered after %s, below the shortest delay of 40ms", waited)
	}
	code, logOut, errOut := runATM(t, bin, "log", "--server", addr, "--db", db)
	if code != 0 || !strings.Contains(logOut, "server_start") {
		t.Fatalf("atm log --server with the kept token: exit %d\n%s%s", code, logOut, errOut)
	}
}
