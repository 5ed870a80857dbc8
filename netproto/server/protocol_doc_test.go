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
