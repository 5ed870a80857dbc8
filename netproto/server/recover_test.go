package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"atm/bank/boltstore"
	"atm/netproto/polltest"
	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank"
)

// A panic while the server handles a request closes that connection
// only, at once and without an answer: the deposit may have been applied,
// and no answer about it would be true. The panic is logged with its
// stack. A connection opened before and one opened after are served as
// usual; resent with its id, the deposit turns out applied once.
func TestPanicInARequestClosesItsConnectionOnly(t *testing.T) {
	t.Parallel()
	var fired atomic.Bool
	e := newEnv(t, func(s *server.Server) {
		server.SetFaults(s, func(req *wire.Message) {
			if req.ID == "dep-boom" && fired.CompareAndSwap(false, true) {
				panic("fault injected while answering " + req.ID)
			}
		}, nil)
	})
	before, _ := e.raw()
	if m := before.req(map[string]any{"type": "login", "id": "l", "account": "456", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login 456: %v", m)
	}

	a, _ := e.raw()
	if m := a.req(map[string]any{"type": "login", "id": "l", "account": "123", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login 123: %v", m)
	}
	m := a.req(map[string]any{"type": "balance", "id": "b0"})
	bal0, ok := m["balance"].(float64)
	if !ok {
		t.Fatalf("balance: %v", m)
	}
	a.send(map[string]any{"type": "deposit", "id": "dep-boom", "amount": 500})
	expectClosed(t, a)
	if !fired.Load() {
		t.Fatal("the fault never fired")
	}

	rec := panicRecord(t, e.log.Bytes(), "fault injected while answering dep-boom")
	if !strings.Contains(rec.Msg, "panic serving the connection for raw") {
		t.Errorf("the panic's record says %q", rec.Msg)
	}
	if !strings.Contains(rec.Stack, "(*conn).bankReply") || !strings.Contains(rec.Stack, "TestPanicInARequestClosesItsConnectionOnly") {
		t.Errorf("the logged stack is not the panic's:\n%s", rec.Stack)
	}
	polltest.Until(t, "the disconnect recorded with its reason", 10*time.Second, func() bool {
		return strings.Contains(string(e.log.Bytes()), "closed after a panic serving the connection")
	})

	if m := before.req(map[string]any{"type": "balance", "id": "b1"}); m["type"] != "reply" || m["balance"] == nil {
		t.Fatalf("a connection opened before the panic, after it: %v", m)
	}
	after, _ := e.raw()
	if m := after.req(map[string]any{"type": "login", "id": "l", "account": "123", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login after the panic: %v", m)
	}
	m = after.req(map[string]any{"type": "deposit", "id": "dep-boom", "amount": 500})
	if m["type"] != "reply" || m["duplicate"] != true || m["balance"] != bal0+500 {
		t.Fatalf("the deposit resent with its id: %v, want a duplicate with balance %v", m, bal0+500)
	}
	if m := before.req(map[string]any{"type": "balance", "id": "b2"}); m["type"] != "reply" {
		t.Fatalf("the first connection, at the end: %v", m)
	}
}

// A panic in the goroutine that sends a connection's pushes closes that
// connection only, without the push; the transfer that caused it is
// answered, and the server goes on.
func TestPanicSendingPushesClosesItsConnectionOnly(t *testing.T) {
	t.Parallel()
	var fired atomic.Bool
	e := newEnv(t, func(s *server.Server) {
		server.SetFaults(s, nil, func(events []bank.Event) {
			if events[0].Account == "456" && fired.CompareAndSwap(false, true) {
				panic("fault injected while pushing to 456")
			}
		})
	})
	payee, _ := e.raw()
	if m := payee.req(map[string]any{"type": "login", "id": "l", "account": "456", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login 456: %v", m)
	}
	payer, _ := e.raw()
	if m := payer.req(map[string]any{"type": "login", "id": "l", "account": "123", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login 123: %v", m)
	}
	if m := payer.req(map[string]any{"type": "transfer", "id": "t1", "to": "456", "amount": 250}); m["type"] != "reply" {
		t.Fatalf("transfer: %v", m)
	}
	expectClosed(t, payee)
	rec := panicRecord(t, e.log.Bytes(), "fault injected while pushing to 456")
	if !strings.Contains(rec.Msg, "panic sending pushes") || !strings.Contains(rec.Stack, "(*conn).sendBatch") {
		t.Errorf("the panic's record: %q\n%s", rec.Msg, rec.Stack)
	}
	if m := payer.req(map[string]any{"type": "balance", "id": "b1"}); m["type"] != "reply" {
		t.Fatalf("the payer after the panic: %v", m)
	}
	again, _ := e.raw()
	if m := again.req(map[string]any{"type": "login", "id": "l", "account": "456", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login 456 after the panic: %v", m)
	}
	if m := payer.req(map[string]any{"type": "transfer", "id": "t2", "to": "456", "amount": 1}); m["type"] != "reply" {
		t.Fatalf("a second transfer: %v", m)
	}
	if m := again.read(); m["type"] != "push" || m["kind"] != wire.PushTransferIn {
		t.Fatalf("the new session of 456 got %v, want the push of the second transfer", m)
	}
}

// expectClosed reads from r until the server closes the connection, and
// fails if it sends anything first.
func expectClosed(t *testing.T, r *raw) {
	t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.br.ReadBytes('\n')
	switch {
	case len(line) > 0:
		t.Fatalf("the server sent %q on the faulty connection, want nothing", line)
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatal("the faulty connection is still open")
	case !errors.Is(err, io.EOF):
		t.Logf("the faulty connection ended with %v", err)
	}
}

// panicLog is a panic's record in the server's JSON log.
type panicLog struct {
	Level, Msg, Panic, Stack string
}

// panicRecord finds the record of the panic whose value holds what.
func panicRecord(t *testing.T, log []byte, what string) panicLog {
	t.Helper()
	for _, line := range strings.Split(string(log), "\n") {
		var rec panicLog
		if json.Unmarshal([]byte(line), &rec) == nil && strings.Contains(rec.Panic, what) {
			if rec.Level != "ERROR" {
				t.Errorf("the panic is logged at level %s, want ERROR", rec.Level)
			}
			return rec
		}
	}
	t.Fatalf("no record of the panic %q in the log:\n%s", what, log)
	return panicLog{}
}

// A panic in the bank's rules while it applies a request (injected here
// through the bank's wall clock) is a fault of the bank, not of the
// connection: the request is answered `internal`, with nothing applied,
// the panic is logged with its stack, and the same connection goes on.
func TestPanicInTheBankAnswersInternal(t *testing.T) {
	t.Parallel()
	var armed atomic.Bool
	now := func() time.Time {
		if armed.Load() {
			panic("fault injected into the bank's rules")
		}
		return time.Now()
	}
	log := &syncBuffer{}
	s := startServer(t, filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{Now: now}},
		func(s *server.Server) { s.Logger = slog.New(slog.NewJSONHandler(log, nil)) })
	defer s.stop(t)
	a, _ := rawAt(t, s.addr)
	if m := a.req(map[string]any{"type": "login", "id": "l", "account": "123", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login: %v", m)
	}
	bal0 := a.req(map[string]any{"type": "balance", "id": "b0"})["balance"]
	armed.Store(true)
	m := a.req(map[string]any{"type": "deposit", "id": "dep-fault", "amount": 500})
	armed.Store(false)
	if m["type"] != "error" || m["code"] != "internal" || !strings.Contains(fmt.Sprint(m["message"]), "nothing was applied") {
		t.Fatalf("deposit whose rules panicked: %v, want an internal error saying nothing was applied", m)
	}
	rec := panicRecord(t, log.Bytes(), "fault injected into the bank's rules")
	if !strings.Contains(rec.Msg, "panic applying deposit") || !strings.Contains(rec.Stack, "TestPanicInTheBankAnswersInternal") {
		t.Errorf("the panic's record: %q\n%s", rec.Msg, rec.Stack)
	}
	if m := a.req(map[string]any{"type": "balance", "id": "b1"}); m["type"] != "reply" || m["balance"] != bal0 {
		t.Fatalf("balance after the fault, on the same connection: %v, want %v", m, bal0)
	}
	m = a.req(map[string]any{"type": "deposit", "id": "dep-fault", "amount": 500})
	if m["type"] != "reply" || m["duplicate"] == true || m["balance"] != bal0.(float64)+500 {
		t.Fatalf("the deposit sent again: %v, want it applied now, once", m)
	}
}
