package server_test

import (
	"sync"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"
)

// The client labels the messages it sends and receives by itself after a
// reconnect (the new greeting, the login that restores the session and its
// answer), and the requests an application labels with WithReason; the
// messages the application asked for carry no reason. Every message still
// has its clock event.
func TestClockEventReasons(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *server.Server) { s.IdleTimeout = 300 * time.Millisecond })
	var mu sync.Mutex
	var evs []client.ClockEvent
	c := e.login("123", client.Options{Reconnect: true, OnEvent: func(ev client.ClockEvent) {
		mu.Lock()
		evs = append(evs, ev)
		mu.Unlock()
	}})
	if _, err := c.Balance(client.WithReason(ctx(t), "checking")); err != nil {
		t.Fatal(err)
	}
	for s := range c.Status() { // the server closes the idle connection
		if s.State == client.StateReconnected {
			if s.Err != nil {
				t.Fatalf("session not restored: %v", s.Err)
			}
			break
		}
	}
	mu.Lock()
	got := append([]client.ClockEvent(nil), evs...)
	mu.Unlock()

	type step struct{ dir, typ, op, reason string }
	want := []step{
		{"recv", "hello", "", ""},
		{"send", "login", "login", ""},
		{"recv", "reply", "login", ""},
		{"send", "balance", "balance", "checking"},
		{"recv", "reply", "balance", "checking"},
		{"recv", "error", "", ""}, // idle_timeout
		{"recv", "hello", "", client.ReasonReconnect},
		{"send", "login", "login", client.ReasonRestore},
		{"recv", "reply", "login", client.ReasonRestore},
	}
	if len(got) < len(want) {
		t.Fatalf("%d clock events, want at least %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if (step{g.Dir, g.Type, g.Op, g.Reason}) != w {
			t.Errorf("event %d = %s %s %s reason %q, want %+v", i, g.Dir, g.Type, g.Op, g.Reason, w)
		}
	}
}

// RetryNow cuts the wait between reconnection attempts short: the attempt
// after it starts without waiting for its delay.
func TestRetryNowSkipsTheWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.login("123", client.Options{Reconnect: true})
	e.shutdown()
	var last client.ConnStatus
	for s := range c.Status() { // wait for a long delay: the backoff reaches 1 to 2 s
		if s.State == client.StateReconnecting && s.Delay >= time.Second {
			last = s
			break
		}
	}
	start := time.Now()
	c.RetryNow()
	for s := range c.Status() {
		if s.State == client.StateReconnecting {
			if s.Attempt != last.Attempt+1 {
				t.Fatalf("attempt %d after %d", s.Attempt, last.Attempt)
			}
			if waited := time.Since(start); waited >= last.Delay {
				t.Fatalf("the attempt after RetryNow came after %s, its whole delay of %s", waited, last.Delay)
			}
			return
		}
	}
	t.Fatal("the status channel closed")
}
