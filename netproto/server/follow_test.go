package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/netproto/client"
	"atm/netproto/server"
)

// eventKey names an event of the log: its timestamp and its process.
func eventKey(ts uint64, proc string) string { return fmt.Sprintf("%d/%s", ts, proc) }

// tally counts the events of log messages by eventKey, and fails on an
// event counted twice.
type tally struct {
	t    *testing.T
	seen map[string]int
}

func newTally(t *testing.T) *tally { return &tally{t: t, seen: map[string]int{}} }

// take counts the entries of a reply or log message.
func (ta *tally) take(m map[string]any) int {
	ta.t.Helper()
	entries, _ := m["entries"].([]any)
	for _, e := range entries {
		e := e.(map[string]any)
		k := eventKey(uint64(e["ts"].(float64)), e["proc"].(string))
		ta.seen[k]++
		if ta.seen[k] > 1 {
			ta.t.Errorf("event %s sent %d times", k, ta.seen[k])
		}
	}
	return len(entries)
}

// missing counts the keys of want not seen yet.
func (ta *tally) missing(want []string) int {
	n := 0
	for _, k := range want {
		if ta.seen[k] == 0 {
			n++
		}
	}
	return n
}

// lines reads the messages of a connection on a goroutine of its own, for
// a test that must not block on a read: the channel closes when the
// connection does.
func lines(c net.Conn, br *bufio.Reader) <-chan map[string]any {
	out := make(chan map[string]any, 1024)
	go func() {
		defer close(out)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(line, &m) != nil {
				return
			}
			out <- m
		}
	}()
	return out
}

// wantFollowReply fails unless m is the reply to the subscription id.
func wantFollowReply(t *testing.T, m map[string]any, id string) {
	t.Helper()
	if m["type"] != "reply" || m["op"] != "log" || m["id"] != id || m["follow"] != true {
		t.Fatalf("the answer to log with follow is %v", m)
	}
}

// An operator follows the log of one server of a bank three servers keep,
// a few entries a page, while ATMs deposit through all three: it is sent
// every event of the bank's log exactly once, each message above the one
// before it.
func TestFollowOnSeveralServersSendsEveryEventOnce(t *testing.T) {
	t.Parallel()
	bc := newBankCluster(t, etcdtest.Start(t, 1), 3, etcdstore.Options{})
	fol, _ := rawAt(t, bc.servers[0].addr)
	fol.send(map[string]any{"type": "log", "id": "follow-1", "token": opToken, "limit": 5, "follow": true})
	msgs := lines(fol.c, fol.br)
	got := newTally(t)
	m := <-msgs
	wantFollowReply(t, m, "follow-1")
	got.take(m)
	last := uint64(m["ts"].(float64))

	var wg sync.WaitGroup
	for i, acct := range []string{"123", "456", "789"} {
		c := bc.login(bc.servers[i].addr, acct, client.Options{ProcessID: "atm-" + acct})
		wg.Go(func() {
			for range 40 {
				if _, err := c.Deposit(ctx(t), 1); err != nil {
					t.Errorf("deposit on %s: %v", acct, err)
					return
				}
			}
		})
	}
	wg.Wait()
	var want []string
	for _, e := range bc.events() {
		want = append(want, eventKey(e.TS, e.Proc))
	}
	timeout := time.After(20 * time.Second)
	pages := 0
	for got.missing(want) > 0 {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("the connection closed with %d events missing", got.missing(want))
			}
			if m["type"] != "log" || m["id"] != "follow-1" {
				t.Fatalf("a message of the subscription: %v", m)
			}
			ts := uint64(m["ts"].(float64))
			if ts <= last {
				t.Fatalf("a log message at L=%d after one at L=%d", ts, last)
			}
			if _, ok := m["next"].(string); !ok {
				t.Fatalf("a page of a bank several servers keep without a string cursor: %v", m["next"])
			}
			if n := got.take(m); n == 0 || n > 5 {
				t.Fatalf("a page of %d entries, limit 5", n)
			}
			last = ts
			pages++
		case <-timeout:
			t.Fatalf("%d of the bank's %d events not sent in 20s", got.missing(want), len(want))
		}
	}
	if pages < 2 {
		t.Errorf("the events came in %d pages", pages)
	}
}

// A follower costs the bank's clock nothing while nothing commits: the
// subscription's reply is the server's last tick until another request
// comes, a read of the log commits nothing and sends the follower
// nothing, and a deposit is sent to the follower in one page whose
// timestamp is the send right after the deposit's reply.
func TestAnIdleFollowerDoesNotTickTheClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dep, _ := e.raw()
	if m := dep.req(map[string]any{"type": "login", "id": "d1", "account": "123", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login: %v", m)
	}
	reader, _ := e.raw()
	fol, _ := e.raw()
	m := fol.req(map[string]any{"type": "log", "id": "f1", "token": opToken, "follow": true})
	wantFollowReply(t, m, "f1")
	T := uint64(m["ts"].(float64))

	// The reader and the depositor are behind the server's clock: their
	// requests' receives are the clock's next tick.
	r := reader.req(map[string]any{"type": "log", "id": "r1", "token": opToken, "after": m["next"]})
	if r["type"] != "reply" || uint64(r["recv_ts"].(float64)) != T+1 || uint64(r["ts"].(float64)) != T+3 {
		t.Fatalf("a log read after the subscription's reply at L=%d: %v (want recv_ts %d, ts %d)", T, r, T+1, T+3)
	}
	if entries, _ := r["entries"].([]any); len(entries) != 0 {
		t.Fatalf("events committed since the subscription: %v", entries)
	}
	d := dep.req(map[string]any{"type": "deposit", "id": "d2", "amount": 500})
	if d["type"] != "reply" || uint64(d["recv_ts"].(float64)) != T+4 || uint64(d["apply_ts"].(float64)) != T+5 || uint64(d["ts"].(float64)) != T+6 {
		t.Fatalf("deposit: %v (want recv_ts %d, apply_ts %d, ts %d)", d, T+4, T+5, T+6)
	}
	p := fol.read()
	entries, _ := p["entries"].([]any)
	if p["type"] != "log" || p["id"] != "f1" || uint64(p["ts"].(float64)) != T+7 || len(entries) != 1 {
		t.Fatalf("the follower's next message: %v (want a log page of the deposit at L=%d)", p, T+7)
	}
	if en := entries[0].(map[string]any); en["kind"] != "deposit" || uint64(en["ts"].(float64)) != T+5 || en["req_id"] != "d2" {
		t.Fatalf("the page holds %v, not the deposit", en)
	}
}

// A follower that stops reading while deposits commit falls behind: once
// its socket is full and the entries waiting for it pass the bound, the
// server ends the subscription with one log_behind, while it goes on
// serving the others. The follower reads what it was sent, resumes from
// log_behind's cursor, and has every event of the log exactly once.
func TestASlowFollowerFallsBehindAndResumes(t *testing.T) {
	t.Parallel()
	e := newSmallBufferEnv(t, func(s *server.Server) {
		s.MaxFollowQueue = 10
		s.WriteTimeout = time.Minute // the test reads again long before
	})
	fol, _ := e.raw()
	if tc, ok := fol.c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	got := newTally(t)
	m := fol.req(map[string]any{"type": "log", "id": "f1", "token": opToken, "limit": 1, "follow": true})
	wantFollowReply(t, m, "f1")
	got.take(m)

	atm := e.login("123", client.Options{ProcessID: "atm-a"})
	behind := func() bool { return strings.Contains(string(e.log.Bytes()), "fell behind") }
	deposits := 0
	for ; !behind(); deposits++ {
		if deposits == 5_000 {
			t.Fatalf("no log_behind after %d deposits", deposits)
		}
		if _, err := atm.Deposit(ctx(t), 1); err != nil {
			t.Fatalf("deposit %d: %v", deposits, err)
		}
	}
	other := e.login("456", client.Options{ProcessID: "atm-b"})
	if _, err := other.Deposit(ctx(t), 100); err != nil {
		t.Fatalf("another ATM, while the follower is behind: %v", err)
	}
	if _, err := atm.Deposit(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("behind after %d deposits", deposits)

	var next any
	for pages := 0; next == nil; pages++ {
		m := fol.read()
		switch {
		case m["id"] != "f1":
			t.Fatalf("a message of the subscription: %v", m)
		case m["type"] == "log":
			got.take(m)
		case m["type"] == "log_behind":
			next = m["next"]
			if next == nil || m["message"] == "" {
				t.Fatalf("log_behind without its cursor or its message: %v", m)
			}
		default:
			t.Fatalf("a message of the subscription: %v", m)
		}
		if pages > deposits+10 {
			t.Fatal("no log_behind after every page")
		}
	}
	m = fol.req(map[string]any{"type": "log", "id": "f2", "token": opToken, "after": next, "follow": true})
	wantFollowReply(t, m, "f2")
	got.take(m)
	var want []string
	if err := e.bank.Events(context.Background(), func(ev bank.Event) error {
		want = append(want, eventKey(ev.TS, ev.Proc))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for got.missing(want) > 0 {
		m := fol.read()
		if m["type"] != "log" || m["id"] != "f2" {
			t.Fatalf("a message of the new subscription: %v", m)
		}
		got.take(m)
	}
}

// The Go client follows the log through a failover: it follows server 1
// of three while ATMs deposit through servers 2 and 3; server 1 crashes
// halfway, the client reconnects to server 2 and follows on from its
// cursor. It has every event of the bank exactly once.
func TestFollowLogAcrossAFailoverMissesNothing(t *testing.T) {
	t.Parallel()
	bc := newBankCluster(t, etcdtest.Start(t, 1), 3, etcdstore.Options{})
	op := bc.dial(bc.servers[0].addr+","+bc.servers[1].addr, client.Options{ProcessID: "op", Reconnect: true})
	fctx, stop := context.WithCancel(context.Background())
	defer stop()
	f, err := op.FollowLog(fctx, opToken, "", 7)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	take := func(p client.LogPage) {
		for _, e := range p.Events {
			k := eventKey(e.TS, e.Proc)
			if seen[k]++; seen[k] > 1 {
				t.Errorf("event %s delivered %d times", k, seen[k])
			}
		}
	}
	halfway := make(chan struct{})
	var wg sync.WaitGroup
	for i, acct := range []string{"456", "789"} {
		c := bc.login(bc.servers[i+1].addr, acct, client.Options{ProcessID: "atm-" + acct})
		wg.Go(func() {
			for n := range 60 {
				if n == 30 && i == 0 {
					close(halfway)
				}
				if _, err := c.Deposit(ctx(t), 1); err != nil {
					t.Errorf("deposit on %s: %v", acct, err)
					return
				}
			}
		})
	}
	// Take pages until halfway, then crash server 1 under the follower.
	for waiting := true; waiting; {
		select {
		case p, ok := <-f.Pages():
			if !ok {
				t.Fatalf("the follow ended: %v", f.Err())
			}
			take(p)
		case <-halfway:
			waiting = false
		}
	}
	bc.servers[0].crash(t)
	wg.Wait()
	var want []string
	for _, e := range bc.events() {
		want = append(want, eventKey(e.TS, e.Proc))
	}
	missing := func() int {
		n := 0
		for _, k := range want {
			if seen[k] == 0 {
				n++
			}
		}
		return n
	}
	timeout := time.After(30 * time.Second)
	for missing() > 0 {
		select {
		case p, ok := <-f.Pages():
			if !ok {
				t.Fatalf("the follow ended: %v", f.Err())
			}
			take(p)
		case <-timeout:
			t.Fatalf("%d of the bank's %d events not delivered in 30s", missing(), len(want))
		}
	}
	if op.Hello().Server != "bank-2" {
		t.Errorf("the follower is on %s, not bank-2", op.Hello().Server)
	}
	stop()
	for range f.Pages() {
	}
	if f.Err() == nil {
		t.Error("no reason after the follow ended")
	}
}
