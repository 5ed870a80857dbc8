package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/money"
)

// replyDropper is a set of TCP proxies, one in front of each server of a
// bank, that together lose the first reply to every money request: the
// proxy that carries it reads the reply the server sent after applying the
// request, throws it away and cuts both connections. A resend of the same
// id, through whichever proxy, is let through.
type replyDropper struct {
	mu      sync.Mutex
	dropped map[string]string // request id → process id of the server whose reply was lost
	conns   atomic.Int64
	wg      sync.WaitGroup
	addrs   []string
}

// newReplyDropper starts a proxy in front of each target; procs names the
// server behind each one.
func newReplyDropper(t *testing.T, targets, procs []string) *replyDropper {
	t.Helper()
	p := &replyDropper{dropped: map[string]string{}}
	var ls []net.Listener
	for i, target := range targets {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		p.addrs = append(p.addrs, l.Addr().String())
		p.wg.Add(1)
		go p.run(l, target, procs[i])
	}
	t.Cleanup(func() {
		for _, l := range ls {
			l.Close()
		}
		p.wg.Wait()
	})
	return p
}

func (p *replyDropper) run(l net.Listener, target, proc string) {
	defer p.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(s, c)
			s.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			defer s.Close()
			br := bufio.NewReader(s)
			for {
				line, err := br.ReadBytes('\n')
				if err != nil {
					return
				}
				var m struct{ Type, ID, Op string }
				_ = json.Unmarshal(line, &m)
				if (m.Type == "reply" || m.Type == "error") && (m.Op == "deposit" || m.Op == "withdraw" || m.Op == "transfer") {
					p.mu.Lock()
					_, seen := p.dropped[m.ID]
					if !seen {
						p.dropped[m.ID] = proc
					}
					p.mu.Unlock()
					if !seen {
						return // the reply is lost with the connection
					}
				}
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}()
	}
}

func (p *replyDropper) lostOn(id string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	proc, ok := p.dropped[id]
	return proc, ok
}

func (p *replyDropper) lost() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.dropped)
}

// moneyEvents counts, per request id, the money events the log holds (kind
// deposit, withdraw or transfer: applications or refusals, not retries).
func moneyEvents(t *testing.T, b ledgerReader) map[string][]bank.Event {
	t.Helper()
	out := map[string][]bank.Event{}
	err := b.Events(context.Background(), func(e bank.Event) error {
		switch e.Kind {
		case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer:
			out[e.ReqID] = append(out[e.ReqID], e)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the log: %v", err)
	}
	return out
}

// TestLostRepliesThroughProxyApplyOnce runs ATMs through a proxy that loses
// the first reply to every money request after the server applied it. The
// client reconnects, logs in again and resends with the same id: each
// request is applied exactly once and the answer is its first outcome.
func TestLostRepliesThroughProxyApplyOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, testLostReplies, func(s *server.Server) { s.LoginBackoff = time.Millisecond })
}

func testLostReplies(t *testing.T, b *testBank) {
	const clients = 4
	opsPer := 12
	if testing.Short() {
		opsPer = 6
	}
	rng := seededRand(t)
	proxy := newReplyDropper(t, b.addrs, make([]string, len(b.addrs))) // one proxy in front of each server
	accounts := []string{"123", "456", "789"}
	start := snapshot(t, b.ledger)

	type outcome struct {
		kind   bank.Kind
		amount money.Cents
		rep    client.Reply
		code   string
	}
	results := make([][]outcome, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	seeds := make([]uint64, clients)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := accounts[i%len(accounts)]
			c, err := client.Dial(context.Background(), proxy.addrs[i%len(proxy.addrs)],
				client.Options{ProcessID: fmt.Sprintf("atm-lossy-%d", i), Reconnect: true})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if _, err := c.Login(context.Background(), acct, "1234"); err != nil {
				errs <- fmt.Errorf("login: %w", err)
				return
			}
			r := newRand(seeds[i])
			for range opsPer {
				o := outcome{amount: money.Cents(1 + r.IntN(60_000))}
				var err error
				switch r.IntN(3) {
				case 0:
					o.kind = bank.KindDeposit
					o.rep, err = c.Deposit(context.Background(), o.amount)
				case 1:
					o.kind = bank.KindWithdraw
					o.rep, err = c.Withdraw(context.Background(), o.amount)
				default:
					o.kind = bank.KindTransfer
					o.rep, err = c.Transfer(context.Background(), accounts[(i+1)%len(accounts)], o.amount)
				}
				o.code = wireCode(err)
				var pe *wire.Error
				if errors.As(err, &pe) {
					o.rep.ID = pe.ID
				}
				if err != nil && o.code != "insufficient_funds" {
					errs <- fmt.Errorf("client %d %s: %w", i, o.kind, err)
					return
				}
				results[i] = append(results[i], o)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	log := moneyEvents(t, b.ledger)
	var in, out money.Cents
	ops := 0
	for i, rs := range results {
		for _, o := range rs {
			ops++
			if o.code != "" { // refused: recorded once, as refused
				if evs := log[o.rep.ID]; len(evs) != 1 || evs[0].Outcome != o.code {
					t.Fatalf("client %d %s %s refused with %s; the log has %+v", i, o.kind, o.rep.ID, o.code, evs)
				}
				continue
			}
			if !o.rep.Duplicate {
				t.Errorf("client %d %s %s: answered without a lost reply", i, o.kind, o.rep.ID)
			}
			evs := log[o.rep.ID]
			if len(evs) != 1 {
				t.Fatalf("client %d %s %s: %d applications in the log, want 1", i, o.kind, o.rep.ID, len(evs))
			}
			if ev := evs[0]; ev.Outcome != "ok" || ev.Amount != o.amount || ev.Balance != o.rep.Balance || ev.TS != o.rep.ServerApply {
				t.Fatalf("client %d: reply %+v is not the first outcome %+v", i, o.rep, ev)
			}
			switch o.kind {
			case bank.KindDeposit:
				in += o.amount
			case bank.KindWithdraw:
				out += o.amount
			}
		}
	}
	for id, evs := range log {
		if len(evs) > 1 {
			t.Errorf("request %s applied %d times", id, len(evs))
		}
	}
	end := snapshot(t, b.ledger)
	if end.Deposits-start.Deposits != in || end.Withdrawals-start.Withdrawals != out {
		t.Fatalf("ledger moved +%v −%v; clients were told +%v −%v",
			end.Deposits-start.Deposits, end.Withdrawals-start.Withdrawals, in, out)
	}
	lost, conns := proxy.lost(), proxy.conns.Load()
	if lost != ops {
		t.Fatalf("%d replies lost for %d operations", lost, ops)
	}
	rep := b.verify(t)
	figures(t, "servers=%d clients=%d operations=%d replies_lost=%d connections_through_proxy=%d applied_twice=0 events_replayed=%d",
		len(b.addrs), clients, ops, lost, conns, rep.Events)
}

// TestRetryAfterClientCloseAppliesOnce sends money requests and closes the
// connection at once, without reading the answer. Resending the same ids on
// a new connection applies each exactly once, and every later resend returns
// the first outcome even after the balance moved on, for refusals too.
func TestRetryAfterClientCloseAppliesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start := snapshot(t, e.bank)
	type req struct {
		fields map[string]any
		code   string // first outcome's code, "" for ok
	}
	reqs := []req{
		{fields: map[string]any{"type": "deposit", "id": "cut-1", "amount": 777}},
		{fields: map[string]any{"type": "withdraw", "id": "cut-2", "amount": 300}},
		{fields: map[string]any{"type": "transfer", "id": "cut-3", "to": "456", "amount": 1_000}},
		{fields: map[string]any{"type": "withdraw", "id": "cut-4", "amount": 5_000_000}, code: "insufficient_funds"},
	}
	for _, r := range reqs {
		c, _ := e.raw()
		if m := c.req(map[string]any{"type": "login", "id": "l", "account": "123", "pin": "1234"}); m["type"] != "reply" {
			t.Fatalf("login: %v", m)
		}
		c.send(r.fields)
		c.c.Close() // gone before the answer
	}

	r, _ := e.raw()
	if m := r.req(map[string]any{"type": "login", "id": "l2", "account": "123", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login: %v", m)
	}
	first := map[string]map[string]any{}
	for _, q := range reqs {
		m := r.req(q.fields)
		first[q.fields["id"].(string)] = m
		if q.code != "" {
			if m["type"] != "error" || m["code"] != q.code {
				t.Fatalf("%v: got %v", q.fields, m)
			}
		} else if m["type"] != "reply" {
			t.Fatalf("%v: got %v", q.fields, m)
		}
	}
	// The balance moves on; enough money arrives to cover cut-4 now.
	if m := r.req(map[string]any{"type": "deposit", "id": "later", "amount": 6_000_000}); m["type"] != "reply" {
		t.Fatalf("deposit: %v", m)
	}
	for _, q := range reqs {
		id := q.fields["id"].(string)
		m := r.req(q.fields)
		f := first[id]
		if m["duplicate"] != true && m["type"] == "reply" {
			t.Fatalf("%s resent: not a duplicate: %v", id, m)
		}
		for _, k := range []string{"type", "code", "amount", "balance", "apply_ts"} {
			if fmt.Sprint(m[k]) != fmt.Sprint(f[k]) {
				t.Fatalf("%s resent: %s is %v, first outcome had %v", id, k, m[k], f[k])
			}
		}
	}
	log := moneyEvents(t, e.bank)
	for _, q := range reqs {
		id := q.fields["id"].(string)
		if n := len(log[id]); n != 1 {
			t.Fatalf("%s is in the log %d times, want once", id, n)
		}
	}
	end := snapshot(t, e.bank)
	if got, want := end.Balances["123"]-start.Balances["123"], money.Cents(777-300-1_000+6_000_000); got != want {
		t.Fatalf("account 123 moved by %v, want %v", got, want)
	}
	if got := end.Balances["456"] - start.Balances["456"]; got != 1_000 {
		t.Fatalf("account 456 moved by %v, want 1000", got)
	}
	figures(t, "requests_cut=%d resends=%d applied_twice=0", len(reqs), 2*len(reqs))
}
