package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestClockNeverGoesBackAfterAKill answers a request the server refuses by
// itself (no transaction of its own) after a large but valid jump of its
// clock, then kills the server with SIGKILL at once and restarts it on the
// same file: the new greeting is above the refusal's timestamp. Each kind of
// refusal the server makes alone is tried.
func TestClockNeverGoesBackAfterAKill(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	db := filepath.Join(t.TempDir(), "bank.db")
	srv := startServe(t, bin, db, "127.0.0.1:0", 0)
	lines := []struct{ line, code string }{
		{`{"type":"balance","id":"c1","proc":"p","ts":%d}`, "not_logged_in"},
		{`{"type":"teleport","id":"c2","proc":"p","ts":%d}`, "unknown_type"},
		{`{"type":"balance","proc":"p","ts":%d}`, "invalid_request_id"},
		{`{"type":"audit","id":"c3","proc":"p","ts":%d,"token":"guess"}`, "forbidden"},
		{`{"type":"deposit","id":"c4","proc":"p","ts":%d,"amount":"100"}`, "bad_request"},
	}
	for i, l := range lines {
		conn, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		hello := readTS(t, conn, br)
		sent := hello + 1_000_000
		fmt.Fprintf(conn, l.line+"\n", sent)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("%s: %v", l.code, err)
		}
		if err := srv.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-srv.exited
		conn.Close()
		var m struct {
			Code string `json:"code"`
			TS   uint64 `json:"ts"`
		}
		if err := json.Unmarshal(line, &m); err != nil || m.Code != l.code {
			t.Fatalf("got %s, want %s", line, l.code)
		}
		if m.TS <= sent {
			t.Fatalf("%s: answered at %d to a request at %d", l.code, m.TS, sent)
		}
		srv = startServe(t, bin, db, "127.0.0.1:0", i+1)
		conn, err = net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		if again := readTS(t, conn, bufio.NewReader(conn)); again <= m.TS {
			t.Fatalf("after %s at L=%d and a kill, the server greets at L=%d", l.code, m.TS, again)
		}
		conn.Close()
	}
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	if out, err := exec.Command(bin, "verify", "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("atm verify after the kills: %v\n%s", err, out)
	}
}

func readTS(t *testing.T, conn net.Conn, br *bufio.Reader) uint64 {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	var m struct {
		Type string `json:"type"`
		TS   uint64 `json:"ts"`
	}
	if err := json.Unmarshal(line, &m); err != nil || m.Type != "hello" {
		t.Fatalf("greeting %q", line)
	}
	return m.TS
}
