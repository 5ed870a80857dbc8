package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
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
	t.Parallel()
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

// TestNoPushAfterLogout: a session that logs out while transfers keep
// arriving for its account gets no push after the reply to its logout (a
// push may come before it), and none before the reply to its next login.
func TestNoPushAfterLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, _ := e.wire()
	// Three payers keep transferring a cent to 123, each waiting for its
	// answer before the next, until the rounds are done.
	stop := make(chan struct{})
	var payers sync.WaitGroup
	for i := range 3 {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		payers.Add(1)
		go func() {
			defer payers.Done()
			br := bufio.NewReader(c)
			proc := fmt.Sprintf("payer-%d", i)
			line := func(s string) bool {
				if _, err := c.Write([]byte(s + "\n")); err != nil {
					return false
				}
				_, err := br.ReadString('\n')
				return err == nil
			}
			_, _ = br.ReadString('\n') // the greeting
			line(`{"type":"login","id":"` + proc + `-0","proc":"` + proc + `","ts":1,"account":"456","pin":"1234"}`)
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if !line(fmt.Sprintf(`{"type":"transfer","id":"%s-%d","proc":"%s","to":"123","amount":1}`, proc, n, proc)) {
					return
				}
			}
		}()
	}
	defer func() { close(stop); payers.Wait() }()

	// answer reads a's messages up to the answer to id; pushes before it
	// are counted, and refused when outside wants them refused.
	pushes := 0
	answer := func(id string, outside bool) map[string]any {
		t.Helper()
		for {
			m := a.read()
			if m["type"] != "push" {
				if m["id"] != id || m["type"] != "reply" {
					t.Fatalf("answer to %s: %v", id, m)
				}
				return m
			}
			if outside {
				t.Fatalf("a push between the logout and the next login's reply: %v", m)
			}
			if m["account"] != "123" {
				t.Fatalf("push for another account: %v", m)
			}
			pushes++
		}
	}
	const rounds = 200
	for n := range rounds {
		a.write(fmt.Sprintf(`{"type":"login","id":"i%d","proc":"atm-a","account":"123","pin":"1234"}`, n))
		answer(fmt.Sprintf("i%d", n), n > 0)
		a.write(fmt.Sprintf(`{"type":"logout","id":"o%d","proc":"atm-a"}`, n))
		answer(fmt.Sprintf("o%d", n), false)
	}
	if pushes == 0 {
		t.Fatalf("no push came in %d rounds: the test exercised nothing", rounds)
	}
	t.Logf("%d rounds, %d pushes while logged in", rounds, pushes)
}
