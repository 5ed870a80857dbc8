package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/netproto/client"
	"atm/netproto/polltest"
)

// TestClusterServerCrashFailover crashes one of three bank servers under
// load: its listener and every connection close at once while requests are
// in flight, and its operations in progress lose their context. The ATMs,
// which know all three addresses and reconnect, fail over to the other two
// and resend what was pending with the same request ids. No acknowledged
// operation is lost, none is applied twice (counted by request id in the
// log), and the log replays to the balances.
func TestClusterServerCrashFailover(t *testing.T) {
	t.Parallel()
	const clients = 9
	const progress = 5
	rng := seededRand(t)
	began := time.Now()
	bc := newBankCluster(t, etcdtest.Start(t, 3), 3, etcdstore.Options{})
	accounts := []string{"123", "456", "789"}
	start, err := bc.servers[1].ledger.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{bc.servers[0].addr, bc.servers[1].addr, bc.servers[2].addr}
	ld := newClusterLoad(accounts)
	var onCrashed []string
	for i := range clients {
		// Each ATM lists the three servers starting from its own.
		list := strings.Join(append(append([]string(nil), addrs[i%3:]...), addrs[:i%3]...), ",")
		proc := fmt.Sprintf("atm-%02d", i)
		c := bc.login(list, accounts[i%len(accounts)], client.Options{ProcessID: proc, Reconnect: true, RequestTimeout: 20 * time.Second})
		if c.Hello().Server == "bank-1" {
			onCrashed = append(onCrashed, proc)
		}
		ld.run(c, accounts[i%len(accounts)], rng.Uint64())
	}
	defer func() {
		if !ld.stopped() {
			ld.halt()
		}
	}()
	if len(onCrashed) != clients/3 {
		t.Fatalf("ATMs on bank-1: %v", onCrashed)
	}
	okBy := func(proc string) int {
		ld.mu.Lock()
		defer ld.mu.Unlock()
		return ld.okBy[proc]
	}
	polltest.Until(t, "successes on every server", 30*time.Second, func() bool {
		for _, s := range bc.servers {
			if ok, _ := ld.counts(s.proc); ok < progress {
				return false
			}
		}
		return !ld.failed()
	})

	base := map[string]int{}
	for _, p := range onCrashed {
		base[p] = okBy(p)
	}
	t0 := time.Now()
	bc.servers[0].crash(t)
	polltest.Until(t, "successes of the ATMs of the crashed server on the others", 30*time.Second, func() bool {
		if ld.failed() {
			t.Fatal("the ATMs failed")
		}
		for _, p := range onCrashed {
			if okBy(p) < base[p]+progress {
				return false
			}
		}
		return true
	})
	failover := time.Since(t0)
	ld.halt()

	events, rep := ld.check(t, bc, bc.servers[1].ledger, start)
	ok1, _ := ld.counts("bank-1")
	ok2, _ := ld.counts("bank-2")
	ok3, _ := ld.counts("bank-3")
	retries := 0
	for _, e := range events {
		if e.Kind == bank.KindRetry {
			retries++
		}
	}
	figures(t, "servers=3 etcd_members=3 clients=%d operations=%d ok=%d (bank-1 %d, bank-2 %d, bank-3 %d) insufficient_funds=%d unknown=%d unavailable=%d acknowledged_money=%d "+
		"duplicate_replies=%d retry_events=%d crash_to_%d_ok_per_moved_atm=%s log_events=%d events_replayed=%d wall=%s",
		clients, ld.ops.Load(), ld.ok.Load(), ok1, ok2, ok3, ld.refused.Load(), ld.unknown.Load(), ld.unavailable.Load(), len(ld.acked),
		ld.dups, retries, progress, failover.Round(time.Millisecond), len(events), rep.Events, time.Since(began).Round(time.Millisecond))
}
