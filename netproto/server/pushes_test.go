package server_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// rest reads w until the server closes it (after a shutdown) and returns
// the lines it got.
func (w *wireConn) rest() []string {
	w.t.Helper()
	var lines []string
	for {
		_ = w.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, err := w.br.ReadString('\n')
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				w.t.Fatalf("the connection was not closed: %v", err)
			}
			return lines
		}
		lines = append(lines, line)
	}
}

// TestPushesToEverySessionOfTheAccount: two sessions on one account, and a
// third on another. Each change of a balance is pushed to every other
// session logged in to the changed account, with its kind, amount, balance
// and apply timestamp; the acting session gets its reply and no push, and a
// repeated request id pushes nothing.
func TestPushesToEverySessionOfTheAccount(t *testing.T) {
	e := newEnv(t)
	a1, _ := e.wire()
	a2, _ := e.wire()
	b, _ := e.wire()
	for _, s := range []struct {
		w       *wireConn
		proc    string
		account string
	}{{a1, "atm-a1", "123"}, {a2, "atm-a2", "123"}, {b, "atm-b", "456"}} {
		s.w.write(`{"type":"login","id":"` + s.proc + `-0","proc":"` + s.proc + `","ts":1,"account":"` + s.account + `","pin":"1234"}`)
		if m := s.w.read(); m["type"] != "reply" {
			t.Fatalf("%s login: %v", s.proc, m)
		}
	}
	checkPush := func(who string, m map[string]any, kind string, amount, balance, applyTS uint64) {
		t.Helper()
		if m["type"] != "push" || m["kind"] != kind || m["account"] != "123" && kind != "transfer_in" ||
			num(t, m, "amount") != amount || num(t, m, "balance") != balance || num(t, m, "apply_ts") != applyTS {
			t.Fatalf("%s got %v, want a %s push of %d with balance %d applied at %d", who, m, kind, amount, balance, applyTS)
		}
		if num(t, m, "ts") <= applyTS {
			t.Fatalf("%s: push ts %d not after the apply %d", who, num(t, m, "ts"), applyTS)
		}
	}

	// A withdrawal on a1 reaches a2.
	a1.write(`{"type":"withdraw","id":"w1","proc":"atm-a1","ts":5,"amount":5000}`)
	r := a1.read()
	if r["type"] != "reply" || num(t, r, "balance") != 95_000 {
		t.Fatalf("withdraw: %v", r)
	}
	checkPush("a2", a2.read(), "withdraw", 5000, 95_000, num(t, r, "apply_ts"))

	// A deposit on a2 reaches a1.
	a2.write(`{"type":"deposit","id":"d1","proc":"atm-a2","ts":9,"amount":2000}`)
	r = a2.read()
	if r["type"] != "reply" || num(t, r, "balance") != 97_000 {
		t.Fatalf("deposit: %v", r)
	}
	checkPush("a1", a1.read(), "deposit", 2000, 97_000, num(t, r, "apply_ts"))

	// A transfer from a1: the recipient's session and a2 both hear of it.
	a1.write(`{"type":"transfer","id":"t1","proc":"atm-a1","ts":20,"to":"456","amount":1000}`)
	r = a1.read()
	if r["type"] != "reply" || num(t, r, "balance") != 96_000 {
		t.Fatalf("transfer: %v", r)
	}
	m := b.read()
	checkPush("b", m, "transfer_in", 1000, 101_000, num(t, r, "apply_ts"))
	if m["account"] != "456" || m["from"] != "123" || m["from_holder"] != "Ana Souza" {
		t.Fatalf("b's push: %v", m)
	}
	m = a2.read()
	checkPush("a2", m, "transfer_out", 1000, 96_000, num(t, r, "apply_ts"))
	if m["to"] != "456" || m["to_holder"] != "Bruno Lima" || m["from"] != nil {
		t.Fatalf("a2's push: %v", m)
	}

	// The withdrawal again with its id: answered from the first outcome,
	// nothing applied, nothing pushed.
	a1.write(`{"type":"withdraw","id":"w1","proc":"atm-a1","ts":30,"amount":5000}`)
	if r := a1.read(); r["duplicate"] != true {
		t.Fatalf("repeated withdraw: %v", r)
	}

	// Once the server has shut down every push it queued has been sent:
	// what is left on each connection is its goodbye, no push.
	e.shutdown()
	for name, w := range map[string]*wireConn{"a1": a1, "a2": a2, "b": b} {
		rest := w.rest()
		if len(rest) != 1 || !strings.HasPrefix(rest[0], `{"type":"bye"`) {
			t.Errorf("%s got %d more messages after its last answer, want only the bye: %v", name, len(rest), rest)
		}
	}
}
