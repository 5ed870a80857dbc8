package server_test

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"
)

// TestProtocolDocSession replays the worked session of PROTOCOL.md against a
// fresh server and checks every reply, so the document stays true.
func TestProtocolDocSession(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "wire", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(s *server.Server) { s.LoginBackoff = time.Nanosecond })
	type term struct {
		c  net.Conn
		br *bufio.Reader
	}
	terms := map[string]*term{}
	steps := 0
	for _, line := range strings.Split(string(doc), "\n") {
		if len(line) < 4 || (line[0] != 'A' && line[0] != 'B') || line[1] != ' ' || (line[2] != '<' && line[2] != '>') || line[3] != ' ' {
			continue
		}
		name, dir, text := line[:1], line[2], line[4:]
		tm := terms[name]
		if tm == nil {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tm = &term{c: c, br: bufio.NewReader(c)}
			terms[name] = tm
		}
		steps++
		if dir == '>' {
			if _, err := tm.c.Write([]byte(text + "\n")); err != nil {
				t.Fatal(err)
			}
			continue
		}
		_ = tm.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := tm.br.ReadString('\n')
		if err != nil {
			t.Fatalf("step %d (%s): %v", steps, name, err)
		}
		if !sameMessage(t, text, got) {
			t.Fatalf("step %d (%s):\n documented %s\n got        %s", steps, name, text, strings.TrimSpace(got))
		}
	}
	if steps < 20 {
		t.Fatalf("only %d steps found in PROTOCOL.md", steps)
	}
}

// sameMessage compares two JSON lines, ignoring wall-clock times.
func sameMessage(t *testing.T, want, got string) bool {
	var w, g map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("documented line is not JSON: %s", want)
	}
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		return false
	}
	for _, m := range []map[string]any{w, g} {
		if entries, ok := m["entries"].([]any); ok {
			for _, en := range entries {
				delete(en.(map[string]any), "wall")
			}
		}
	}
	return reflect.DeepEqual(w, g)
}

// TestProtocolDocFollowMessages sends the subscription request of
// PROTOCOL.md's "Following the log" (with the test server's token) and
// checks that the server's reply subscribes, and that its log and
// log_behind messages have exactly the documented fields, log_behind its
// documented sentence.
func TestProtocolDocFollowMessages(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "wire", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	var request, page, behind map[string]any
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		var m map[string]any
		if !strings.HasPrefix(line, `{"type":"log`) || json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch {
		case m["type"] == "log" && m["token"] != nil:
			request = m
		case m["type"] == "log":
			page = m
		case m["type"] == "log_behind":
			behind = m
		}
	}
	if request == nil || page == nil || behind == nil {
		t.Fatalf("PROTOCOL.md lacks an example: request %v, log %v, log_behind %v", request, page, behind)
	}
	e := newSmallBufferEnv(t, func(s *server.Server) {
		s.MaxFollowQueue = 1
		s.WriteTimeout = time.Minute
	})
	fol, _ := e.raw()
	request["token"] = opToken
	line, _ := json.Marshal(request)
	fol.writeLine(string(line))
	if m := fol.read(); m["type"] != "reply" || m["follow"] != true || m["id"] != request["id"] {
		t.Fatalf("the documented request is answered %v", m)
	}
	atm := e.login("123", client.Options{ProcessID: "atm-a"})
	for n := 0; !strings.Contains(string(e.log.Bytes()), "fell behind"); n++ {
		if n == 5000 {
			t.Fatal("no log_behind after 5000 deposits")
		}
		if _, err := atm.Deposit(ctx(t), 1); err != nil {
			t.Fatal(err)
		}
	}
	sameKeys := func(what string, want, got map[string]any) {
		t.Helper()
		for k := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("%s: the server sends no %q: %v", what, k, got)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: the server sends %q, undocumented: %v", what, k, got)
			}
		}
	}
	for {
		m := fol.read()
		if m["type"] == "log" {
			sameKeys("log", page, m)
			continue
		}
		sameKeys("log_behind", behind, m)
		if m["type"] != "log_behind" || m["message"] != behind["message"] {
			t.Fatalf("the subscription ended with %v, not the documented %v", m, behind)
		}
		break
	}
}
