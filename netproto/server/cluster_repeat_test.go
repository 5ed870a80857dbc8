package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/netproto/client"
)

// TestSameRequestFromManyATMsAtOnce: many connections, spread over three
// servers of one etcd cluster and logged in to one account, send a
// deposit with the same request id at the same moment, round after round,
// while other ATMs keep the servers busy with deposits of their own. As
// PROTOCOL.md §5 says, an account remembers its request ids: in each
// round exactly one answer applies the deposit, every other one is a
// reply with "duplicate": true and the same apply_ts, none is an error,
// and the log holds each request once. The busy servers put a repeat in
// the same transaction as the request it repeats, or read it from a
// member that has not seen that transaction yet.
func TestSameRequestFromManyATMsAtOnce(t *testing.T) {
	t.Parallel()
	const conns, amount = 12, 700
	rounds := 8
	if testing.Short() {
		rounds = 4
	}
	bc := newBankCluster(t, etcdtest.Start(t, 3), 3, etcdstore.Options{})

	// The load: deposits on two other accounts, through every server.
	var stop atomic.Bool
	var load sync.WaitGroup
	loadErr := make(chan error, 6)
	for i := range 6 {
		c := bc.login(bc.servers[i%3].addr, []string{"456", "789"}[i%2], client.Options{ProcessID: fmt.Sprintf("atm-load-%d", i)})
		load.Go(func() {
			for !stop.Load() {
				if _, err := c.Deposit(context.Background(), 1); err != nil {
					loadErr <- err
					return
				}
			}
		})
	}

	wires := make([]*lineConn, conns)
	for i := range wires {
		wires[i] = dialLines(t, bc.servers[i%3].addr, fmt.Sprintf("atm-same-%d", i))
		if m, err := wires[i].do(map[string]any{"type": "login", "account": "123", "pin": "1234"}); err != nil || m["type"] != "reply" {
			t.Fatalf("login: %v %v", m, err)
		}
	}
	before := balanceOf(t, wires[0])
	for r := range rounds {
		id := fmt.Sprintf("same-%d", r)
		answers := make([]map[string]any, conns)
		errs := make([]error, conns)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i, w := range wires {
			wg.Go(func() {
				<-gate
				answers[i], errs[i] = w.do(map[string]any{"type": "deposit", "id": id, "amount": amount})
			})
		}
		close(gate)
		wg.Wait()
		firsts, applyTS := 0, map[float64]bool{}
		for i, m := range answers {
			if errs[i] != nil {
				t.Fatalf("round %d, %s: %v", r, wires[i].proc, errs[i])
			}
			if m["type"] != "reply" {
				t.Fatalf("round %d, %s on %v: %v", r, wires[i].proc, m["proc"], m)
			}
			if m["duplicate"] != true {
				firsts++
			}
			applyTS[m["apply_ts"].(float64)] = true
		}
		if firsts != 1 || len(applyTS) != 1 {
			t.Fatalf("round %d: %d answers applied the deposit, apply_ts %v; want 1 and one", r, firsts, applyTS)
		}
	}
	stop.Store(true)
	load.Wait()
	close(loadErr)
	for err := range loadErr {
		t.Fatalf("load: %v", err)
	}

	after := balanceOf(t, wires[1])
	if after-before != float64(rounds*amount) {
		t.Fatalf("balance of 123 went from %v to %v; want +%d, each round's deposit once", before, after, rounds*amount)
	}
	events := bc.events()
	var ours int
	for _, e := range events {
		if e.Account == "123" && e.Kind == bank.KindDeposit && strings.HasPrefix(e.ReqID, "same-") {
			ours++
		}
	}
	if ours != rounds {
		t.Fatalf("%d deposits on 123 in the log, want %d (one per round)", ours, rounds)
	}
	for k, n := range applied(events) {
		if n > 1 {
			t.Fatalf("request %s of %s applied %d times", k.id, k.proc, n)
		}
	}
	rep := bc.verify()
	figures(t, "servers=3 etcd_members=3 connections=%d rounds=%d applied_once_each=%d events_replayed=%d", conns, rounds, ours, rep.Events)
}

// TestClusterRemembersTheLastThousandOfAnAccount: PROTOCOL.md §5 says a
// bank kept in etcd remembers at least the last 1 000 money requests of
// each account, the same on every server. ATMs on one server send 1 100
// deposits to one account; then each of the newest 1 000 (in the order
// the bank applied them), sent again through the other servers, is
// answered as a duplicate with its first apply_ts, and nothing more is
// applied.
func TestClusterRemembersTheLastThousandOfAnAccount(t *testing.T) {
	t.Parallel()
	const window, sent, conns = 1000, 1100, 8
	bc := newBankCluster(t, etcdtest.Start(t, 3), 3, etcdstore.Options{})
	send := func(server int, ids []string, tag string) []map[string]any {
		t.Helper()
		out := make([]map[string]any, len(ids))
		errs := make(chan error, conns)
		var wg sync.WaitGroup
		for c := range conns {
			w := dialLines(t, bc.servers[server].addr, fmt.Sprintf("atm-%s-%d", tag, c))
			if m, err := w.do(map[string]any{"type": "login", "account": "123", "pin": "1234"}); err != nil || m["type"] != "reply" {
				t.Fatalf("login: %v %v", m, err)
			}
			wg.Go(func() {
				for i := c; i < len(ids); i += conns {
					m, err := w.do(map[string]any{"type": "deposit", "id": ids[i], "amount": 1})
					if err == nil && m["type"] != "reply" {
						err = fmt.Errorf("%s: %v", ids[i], m)
					}
					if err != nil {
						errs <- err
						return
					}
					out[i] = m
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return out
	}
	ids := make([]string, sent)
	for i := range ids {
		ids[i] = fmt.Sprintf("window-%d", i)
	}
	first := send(0, ids, "first")
	before := balanceOf(t, dialLogin123(t, bc.servers[0].addr))
	// The newest 1 000 in the order the bank applied them.
	applyTS := map[string]float64{}
	for i, m := range first {
		if m["duplicate"] == true {
			t.Fatalf("%s was answered as a duplicate the first time: %v", ids[i], m)
		}
		applyTS[ids[i]] = m["apply_ts"].(float64)
	}
	sorted := append([]string(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return applyTS[sorted[i]] < applyTS[sorted[j]] })
	newest := sorted[sent-window:]
	again := append(send(1, newest[:window/2], "again-2"), send(2, newest[window/2:], "again-3")...)
	for i, m := range again {
		if m["duplicate"] != true || m["apply_ts"] != applyTS[newest[i]] {
			t.Fatalf("%s sent again through another server: %v; want a duplicate applied at %v", newest[i], m, applyTS[newest[i]])
		}
	}
	if after := balanceOf(t, dialLogin123(t, bc.servers[2].addr)); after != before {
		t.Fatalf("balance moved from %v to %v on resends", before, after)
	}
	figures(t, "servers=3 etcd_members=3 deposits=%d resent_through_other_servers=%d all_duplicates=true", sent, window)
}

// dialLogin123 connects to addr and logs in to account 123.
func dialLogin123(t *testing.T, addr string) *lineConn {
	t.Helper()
	w := dialLines(t, addr, "atm-check")
	if m, err := w.do(map[string]any{"type": "login", "account": "123", "pin": "1234"}); err != nil || m["type"] != "reply" {
		t.Fatalf("login: %v %v", m, err)
	}
	return w
}

// balanceOf asks for the balance of the account w is logged in to.
func balanceOf(t *testing.T, w *lineConn) float64 {
	t.Helper()
	m, err := w.do(map[string]any{"type": "balance"})
	if err != nil || m["type"] != "reply" {
		t.Fatalf("balance: %v %v", m, err)
	}
	return m["balance"].(float64)
}

// lineConn is a connection speaking the protocol by hand, as an outside
// client would, that returns its failures instead of ending the test (it
// runs on goroutines of its own).
type lineConn struct {
	proc string
	c    net.Conn
	br   *bufio.Reader
	ts   uint64
	n    int
}

func dialLines(t *testing.T, addr, proc string) *lineConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &lineConn{proc: proc, c: c, br: bufio.NewReader(c)}
	if m, err := w.next(); err != nil || m["type"] != "hello" {
		t.Fatalf("greeting: %v %v", m, err)
	}
	return w
}

// next reads the next line that is not a push.
func (w *lineConn) next() (map[string]any, error) {
	for {
		_ = w.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := w.br.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("not JSON: %q", line)
		}
		if ts, ok := m["ts"].(float64); ok {
			w.ts = max(w.ts, uint64(ts)) + 1
		}
		if m["type"] != "push" {
			return m, nil
		}
	}
}

// do sends a request (with a fresh id unless fields has one) and returns
// its answer.
func (w *lineConn) do(fields map[string]any) (map[string]any, error) {
	w.ts++
	w.n++
	m := map[string]any{"id": fmt.Sprintf("%s-%d", w.proc, w.n), "proc": w.proc, "ts": w.ts}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	if _, err := w.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	return w.next()
}
