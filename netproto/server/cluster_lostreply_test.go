package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/bank/money"
	"atm/netproto/client"
	"atm/netproto/wire"
)

// TestClusterLostRepliesApplyOnce is TestLostRepliesThroughProxyApplyOnce
// on three bank servers of one etcd cluster: a proxy in front of each
// server loses the first reply to every money request after the server
// applied it. The ATMs know the three proxies and reconnect; the client
// library moves on to the next server and resends with the same id there.
// Each request is applied exactly once in the etcd log, and the answer the
// ATM finally gets, from another server, is the first outcome.
func TestClusterLostRepliesApplyOnce(t *testing.T) {
	t.Parallel()
	const clients = 6
	opsPer := 8
	if testing.Short() {
		opsPer = 4
	}
	rng := seededRand(t)
	began := time.Now()
	bc := newBankCluster(t, etcdtest.Start(t, 3), 3, etcdstore.Options{})
	var targets, procs []string
	for _, s := range bc.servers {
		targets, procs = append(targets, s.addr), append(procs, s.proc)
	}
	proxy := newReplyDropper(t, targets, procs)
	accounts := []string{"123", "456", "789"}
	start, err := bc.servers[0].ledger.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	type outcome struct {
		proc     string // the ATM's process id
		kind     bank.Kind
		amount   money.Cents
		rep      client.Reply
		code     string
		answerer string // the server the ATM was connected to when answered
	}
	results := make([][]outcome, clients)
	seeds := make([]uint64, clients)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		list := strings.Join(append(append([]string(nil), proxy.addrs[i%3:]...), proxy.addrs[:i%3]...), ",")
		proc := fmt.Sprintf("atm-lossy-%d", i)
		c := bc.login(list, accounts[i%len(accounts)], client.Options{ProcessID: proc, Reconnect: true, RequestTimeout: 20 * time.Second})
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand(seeds[i])
			for range opsPer {
				o := outcome{proc: proc, amount: money.Cents(1 + r.IntN(60_000))}
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
				o.answerer = c.Hello().Server
				o.code = wireCode(err)
				var pe *wire.Error
				if errors.As(err, &pe) {
					o.rep.ID = pe.ID
				}
				if err != nil && o.code != "insufficient_funds" {
					errs <- fmt.Errorf("%s %s: %w", proc, o.kind, err)
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

	byReq := map[requestKey][]loggedEvent{}
	for _, e := range bc.events() {
		switch e.Kind {
		case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer:
			k := requestKey{e.Client, e.ReqID}
			byReq[k] = append(byReq[k], e)
		}
	}
	var in, out money.Cents
	ops, elsewhere := 0, 0
	for _, rs := range results {
		for _, o := range rs {
			ops++
			evs := byReq[requestKey{o.proc, o.rep.ID}]
			lostOn, lost := proxy.lostOn(o.rep.ID)
			if !lost {
				t.Errorf("%s %s %s: answered without a lost reply", o.proc, o.kind, o.rep.ID)
			}
			if lostOn != o.answerer {
				elsewhere++
			}
			if o.code != "" { // refused: recorded once, as refused
				if len(evs) != 1 || evs[0].Outcome != o.code {
					t.Fatalf("%s %s %s refused with %s; the log has %+v", o.proc, o.kind, o.rep.ID, o.code, evs)
				}
				continue
			}
			if !o.rep.Duplicate {
				t.Errorf("%s %s %s: the resend was not answered as a duplicate", o.proc, o.kind, o.rep.ID)
			}
			if len(evs) != 1 {
				t.Fatalf("%s %s %s: %d applications in the log, want 1", o.proc, o.kind, o.rep.ID, len(evs))
			}
			if ev := evs[0]; ev.Outcome != "ok" || ev.Amount != o.amount || ev.Balance != o.rep.Balance || ev.TS != o.rep.ServerApply || ev.Proc != lostOn {
				t.Fatalf("%s: reply %+v (answered by %s) is not the first outcome %+v (reply lost from %s)", o.proc, o.rep, o.answerer, ev.Event, lostOn)
			}
			switch o.kind {
			case bank.KindDeposit:
				in += o.amount
			case bank.KindWithdraw:
				out += o.amount
			}
		}
	}
	for k, evs := range byReq {
		if len(evs) > 1 {
			t.Errorf("request %s of %s applied %d times", k.id, k.proc, len(evs))
		}
	}
	end, err := bc.servers[1].ledger.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if end.Deposits-start.Deposits != in || end.Withdrawals-start.Withdrawals != out {
		t.Fatalf("ledger moved +%v −%v; clients were told +%v −%v",
			end.Deposits-start.Deposits, end.Withdrawals-start.Withdrawals, in, out)
	}
	if lost := proxy.lost(); lost != ops {
		t.Fatalf("%d replies lost for %d operations", lost, ops)
	}
	if elsewhere == 0 {
		t.Fatal("no resend was answered by another server than the one whose reply was lost")
	}
	rep := bc.verify()
	figures(t, "servers=3 etcd_members=3 clients=%d operations=%d replies_lost=%d answered_by_another_server=%d connections_through_proxies=%d applied_twice=0 events_replayed=%d wall=%s",
		clients, ops, proxy.lost(), elsewhere, proxy.conns.Load(), rep.Events, time.Since(began).Round(time.Millisecond))
}
