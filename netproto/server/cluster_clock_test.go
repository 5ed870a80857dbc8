package server_test

import (
	"fmt"
	"sync"
	"testing"

	"atm/bank"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/bank/lamport"
	"atm/netproto/client"
)

// TestClusterClockCondition checks the clock condition across three bank
// servers sharing one etcd log, against the clients' own clock events:
// every request is sent before the server receives it, received before it
// is applied, applied before the reply is sent and the reply sent before
// the client receives it; each server uses each of its timestamps once;
// each client's clock only rises; each push of another server's change
// names a receive after that change, shared by that change's pushes on
// the server; and each account's events, whichever server applied them,
// were committed in (ts, proc) order.
func TestClusterClockCondition(t *testing.T) {
	t.Parallel()
	const clients = 6
	rounds := 8
	if testing.Short() {
		rounds = 4
	}
	bc := newBankCluster(t, etcdtest.Start(t, 3), 3, etcdstore.Options{})
	accounts := []string{"123", "456", "789"}
	logs := map[string]*clockLog{}
	var atms []*client.Client
	for i := range clients {
		proc := fmt.Sprintf("atm-k%d", i)
		l := &clockLog{}
		logs[proc] = l
		// Clients start far apart so that receives take the max both ways.
		atms = append(atms, bc.login(bc.servers[i%3].addr, accounts[i%len(accounts)],
			client.Options{ProcessID: proc, OnEvent: l.add, Clock: lamport.NewClock(uint64(i * 1000))}))
	}
	var wg sync.WaitGroup
	for i, c := range atms {
		wg.Go(func() {
			to := accounts[(i+1)%len(accounts)]
			for range rounds {
				_, _ = c.Deposit(ctx(t), 10)
				_, _ = c.Transfer(ctx(t), to, 5)
				_, _ = c.Withdraw(ctx(t), 1_000_000) // refused: insufficient funds
				_, _ = c.Balance(ctx(t))
			}
		})
	}
	wg.Wait()

	events := bc.events()
	type key struct{ proc, req string }
	byReq := map[key]loggedEvent{}
	type tick struct {
		proc string
		ts   uint64
	}
	used := map[tick]string{}
	use := func(proc string, ts uint64, what string) {
		if ts == 0 {
			return
		}
		if prev, ok := used[tick{proc, ts}]; ok {
			t.Errorf("%s used timestamp %d twice: %s and %s", proc, ts, prev, what)
		}
		used[tick{proc, ts}] = what
	}
	// A push of another server's change names this server's receive of
	// it: the pushes of one change share that receive, which must come
	// after the change (the max rule across servers).
	logged := map[tick]bool{}
	for _, e := range events {
		logged[tick{e.Proc, e.TS}] = true
	}
	shared := map[tick]tick{}
	crossServer := 0
	for _, e := range events {
		if e.Origin != "" {
			recv, from := tick{e.Proc, e.RecvTS}, tick{e.Origin, e.OrigTS}
			if !logged[from] || e.RecvTS <= e.OrigTS || e.Origin == e.Proc {
				t.Errorf("push (%d, %s) names a receive at %d of (%d, %s): not a logged change of another server before it", e.TS, e.Proc, e.RecvTS, e.OrigTS, e.Origin)
			}
			if prev, ok := shared[recv]; ok {
				if prev != from {
					t.Errorf("%s's receive at %d is named for (%d, %s) and (%d, %s)", e.Proc, e.RecvTS, prev.ts, prev.proc, from.ts, from.proc)
				}
			} else {
				shared[recv] = from
				crossServer++
				use(e.Proc, e.RecvTS, fmt.Sprintf("receive of (%d, %s)", e.OrigTS, e.Origin))
			}
		} else {
			use(e.Proc, e.RecvTS, fmt.Sprintf("receive of %s L=%d", e.Kind, e.TS))
		}
		use(e.Proc, e.TS, fmt.Sprintf("%s L=%d", e.Kind, e.TS))
		use(e.Proc, e.ReplyTS, fmt.Sprintf("reply of %s L=%d", e.Kind, e.TS))
		if e.RecvTS != 0 && e.RecvTS >= e.TS || e.ReplyTS != 0 && e.ReplyTS <= e.TS {
			t.Errorf("event (%d, %s) %s: receive %d, apply %d, reply %d out of order", e.TS, e.Proc, e.Kind, e.RecvTS, e.TS, e.ReplyTS)
		}
		if e.ReqID != "" && e.Kind != bank.KindRetry {
			if _, dup := byReq[key{e.Client, e.ReqID}]; dup {
				t.Errorf("request %s of %s is in the log twice", e.ReqID, e.Client)
			}
			byReq[key{e.Client, e.ReqID}] = e
		}
	}

	matched, servers := 0, map[string]bool{}
	for proc, l := range logs {
		sent := map[string]uint64{}
		var prev uint64
		for _, ce := range l.all() {
			if ce.After <= prev {
				t.Errorf("%s: clock went from %d to %d", proc, prev, ce.After)
			}
			prev = ce.After
			switch {
			case ce.Dir == "send":
				sent[ce.ReqID] = ce.After
			case ce.Dir == "recv" && ce.ReqID != "" && (ce.Type == "reply" || ce.Type == "error"):
				e, ok := byReq[key{proc, ce.ReqID}]
				if !ok {
					t.Errorf("%s: request %s (%s) was answered but is not in the log", proc, ce.ReqID, ce.Op)
					continue
				}
				s := sent[ce.ReqID]
				if !(s == e.ClientTS && s < e.RecvTS && e.RecvTS < e.TS && e.TS < e.ReplyTS && e.ReplyTS == ce.Remote && ce.Remote < ce.After) {
					t.Errorf("%s: request %s (%s): sent at %d (logged %d), received by %s at %d, applied at %d, replied at %d, reply stamped %d received at %d",
						proc, ce.ReqID, ce.Op, s, e.ClientTS, e.Proc, e.RecvTS, e.TS, e.ReplyTS, ce.Remote, ce.After)
				}
				if ce.Peer != e.Proc {
					t.Errorf("%s: request %s answered by %s, applied by %s", proc, ce.ReqID, ce.Peer, e.Proc)
				}
				matched++
				servers[e.Proc] = true
			}
		}
	}
	if want := clients * (4*rounds + 1); matched != want {
		t.Errorf("%d answered requests matched their events in the log, want %d (a login and %d operations per client)", matched, want, 4*rounds)
	}
	if len(servers) != 3 {
		t.Errorf("requests were applied by %d servers, want 3", len(servers))
	}
	if crossServer == 0 {
		t.Error("no push of another server's change: transfers reach sessions on other servers, so there must be some")
	}
	pairs := checkAccountOrder(t, events)
	rep := bc.verify()
	figures(t, "servers=3 etcd_members=3 clients=%d requests_checked=%d server_timestamps=%d cross_server_receives=%d account_events_in_order=%d log_events=%d events_replayed=%d",
		clients, matched, len(used), crossServer, pairs, len(events), rep.Events)
}
