package server_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/netproto/client"
	"atm/netproto/polltest"
)

// TestClusterSurvivesEtcdMemberFaults runs ATMs on three bank servers over
// a three-member etcd cluster and stops members under load. With one of
// three stopped (the raft leader), every server keeps answering with
// successes. With two stopped there is no quorum: a new operation on any
// server is refused as unavailable and nothing is acknowledged. When the
// two start again, every server serves again by itself. At the end every
// acknowledged request is in the log exactly once and the log replays to
// the balances.
func TestClusterSurvivesEtcdMemberFaults(t *testing.T) {
	t.Parallel()
	const clients = 6
	const progress = 5 // successes per server that show it serves
	rng := seededRand(t)
	began := time.Now()
	ec := etcdtest.Start(t, 3)
	bc := newBankCluster(t, ec, 3, etcdstore.Options{CommitTimeout: time.Second})
	accounts := []string{"123", "456", "789"}
	start, err := bc.servers[0].ledger.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ld := newClusterLoad(accounts)
	for i := range clients {
		c := bc.login(bc.servers[i%3].addr, accounts[i%len(accounts)],
			client.Options{ProcessID: fmt.Sprintf("atm-%02d", i), RequestTimeout: 20 * time.Second, Reconnect: true})
		ld.run(c, accounts[i%len(accounts)], rng.Uint64())
	}
	// Probes: one session per server, logged in before the faults.
	var probes []*client.Client
	for i, s := range bc.servers {
		probes = append(probes, bc.login(s.addr, accounts[i], client.Options{ProcessID: "probe-" + s.proc, RequestTimeout: 20 * time.Second, Reconnect: true}))
	}
	defer func() {
		if !ld.stopped() {
			ld.halt()
		}
	}()

	// everyServer waits until each server has answered more successes (or
	// unavailable answers) than it had in base.
	type count struct{ ok, unavailable int }
	snap := func() map[string]count {
		m := map[string]count{}
		for _, s := range bc.servers {
			ok, un := ld.counts(s.proc)
			m[s.proc] = count{ok, un}
		}
		return m
	}
	everyServer := func(what string, d time.Duration, base map[string]count, more func(now, base count) bool) {
		t.Helper()
		polltest.Until(t, what, d, func() bool {
			if ld.failed() {
				t.Fatalf("the ATMs failed while waiting for %s", what)
			}
			for _, s := range bc.servers {
				ok, un := ld.counts(s.proc)
				if !more(count{ok, un}, base[s.proc]) {
					return false
				}
			}
			return true
		})
	}
	moreOK := func(now, base count) bool { return now.ok >= base.ok+progress }

	everyServer("successes on every server", 30*time.Second, snap(), moreOK)

	// One of three members stops: the leader, the hardest one to lose.
	first := ec.Leader()
	if first < 0 {
		t.Fatal("no etcd leader")
	}
	t0 := time.Now()
	ec.Stop(first)
	base := snap()
	everyServer("successes on every server with one etcd member stopped", 30*time.Second, base, moreOK)
	oneDown := time.Since(t0)
	after1 := snap()
	unavailableWithOne := 0
	for p, c := range after1 {
		unavailableWithOne += c.unavailable - base[p].unavailable
	}

	// A second member stops: no quorum.
	second := (first + 1) % 3
	ec.Stop(second)
	t1 := time.Now()

	// Now every new operation is refused: the probes' balance reads get
	// unavailable on every server, and a deposit is never acknowledged:
	// the client holds it as unknown and keeps sending it again with its
	// id, until the bank answers it for good (after the restart below).
	for i, p := range probes {
		if _, err := p.Balance(ctx(t)); !unavailableCode(wireCode(err)) {
			t.Fatalf("a balance on %s without etcd quorum: %v, want unavailable", bc.servers[i].proc, err)
		}
		short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rep, err := p.Deposit(short, 1)
		cancel()
		if err == nil {
			t.Fatalf("a deposit on %s without etcd quorum succeeded: %+v", bc.servers[i].proc, rep)
		}
		if !errors.Is(err, client.ErrOutcomeUnknown) {
			t.Fatalf("a deposit on %s without etcd quorum: %v, want an unknown outcome", bc.servers[i].proc, err)
		}
		ld.unknownIn.Add(1) // the probe's cent: applied once when the bank is back
	}
	noQuorum := time.Since(t1)
	okAtNoQuorum := ld.ok.Load()

	// The two members start again: the servers serve again by themselves.
	t2 := time.Now()
	ec.Restart(first, second)
	everyServer("successes on every server after the etcd members restarted", 30*time.Second, snap(), moreOK)
	recovered := time.Since(t2)
	for i, p := range probes {
		if _, err := p.Balance(ctx(t)); err != nil {
			t.Errorf("a balance on %s after the restart: %v", bc.servers[i].proc, err)
		}
	}
	ld.halt()

	events, rep := ld.check(t, bc, bc.servers[1].ledger, start)
	retries := 0
	for _, e := range events {
		if e.Kind == bank.KindRetry {
			retries++
		}
	}
	figures(t, "servers=3 etcd_members=3 clients=%d operations=%d ok=%d insufficient_funds=%d unavailable=%d unknown=%d acknowledged_money=%d "+
		"one_member_down_to_%d_ok_per_server=%s unavailable_with_one_down=%d no_quorum_to_unavailable_everywhere=%s ok_before_no_quorum=%d "+
		"restart_to_%d_ok_per_server=%s log_events=%d retries=%d events_replayed=%d wall=%s",
		clients, ld.ops.Load(), ld.ok.Load(), ld.refused.Load(), ld.unavailable.Load(), ld.unknown.Load(), len(ld.acked),
		progress, oneDown.Round(time.Millisecond), unavailableWithOne, noQuorum.Round(time.Millisecond), okAtNoQuorum,
		progress, recovered.Round(time.Millisecond), len(events), retries, rep.Events, time.Since(began).Round(time.Millisecond))
}
