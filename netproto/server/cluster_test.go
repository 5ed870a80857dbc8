package server_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"atm/bank/etcdledger"
	"atm/bank/money"
	"atm/netproto/client"

	"github.com/anishathalye/porcupine"
)

// TestClusterBankInvariants: three bank servers serve one bank kept in a
// three-member etcd cluster, with ATMs spread over the servers moving
// money at random while an operator audits through each server in turn.
// Every audit conserves money with no negative balance; at the end the
// totals are what the ATMs were told, every acknowledged request is in the
// log once, each account's events were committed in Lamport order, and the
// log replays to the balances.
func TestClusterBankInvariants(t *testing.T) {
	const clients = 12
	run := 2 * time.Second
	if testing.Short() {
		run = time.Second
	}
	rng := seededRand(t)
	began := time.Now()
	bc := newBankCluster(t, startEtcdCluster(t, 3), 3, etcdledger.Options{})
	accounts := []string{"123", "456", "789", "1001"}
	openAccounts(t, bc.servers[0].addr, accounts[3:], 50_000)
	start, err := bc.servers[0].ledger.Audit()
	if err != nil {
		t.Fatal(err)
	}

	ld := newClusterLoad(accounts)
	var atms []*client.Client
	for i := range clients {
		atms = append(atms, bc.login(bc.servers[i%3].addr, accounts[i%len(accounts)],
			client.Options{ProcessID: fmt.Sprintf("atm-%02d", i), RequestTimeout: 20 * time.Second}))
	}
	for i, c := range atms {
		ld.run(c, accounts[i%len(accounts)], rng.Uint64())
	}
	var auditors []*client.Client
	for _, s := range bc.servers {
		auditors = append(auditors, bc.dial(s.addr, client.Options{ProcessID: "auditor-" + s.proc}))
	}
	audits := 0
	deadline := time.Now().Add(run)
	for time.Now().Before(deadline) && !ld.failed() {
		a, err := auditors[audits%3].Audit(context.Background(), opToken)
		if err != nil {
			t.Errorf("audit through %s: %v", bc.servers[audits%3].proc, err)
			break
		}
		if err := checkAudit(a); err != nil {
			t.Error(err)
			break
		}
		audits++
	}
	ld.halt()
	events, rep := ld.check(t, bc, bc.servers[0].ledger, start)
	for _, s := range bc.servers {
		if ok, _ := ld.counts(s.proc); ok == 0 {
			t.Errorf("no operation succeeded on %s", s.proc)
		}
	}
	if audits == 0 {
		t.Error("no audit ran")
	}
	ok1, _ := ld.counts("bank-1")
	ok2, _ := ld.counts("bank-2")
	ok3, _ := ld.counts("bank-3")
	figures(t, "servers=3 etcd_members=3 clients=%d duration=%s operations=%d ok=%d (bank-1 %d, bank-2 %d, bank-3 %d) insufficient_funds=%d unknown=%d unavailable=%d audits=%d log_events=%d events_replayed=%d total=%v wall=%s",
		clients, run, ld.ops.Load(), ld.ok.Load(), ok1, ok2, ok3, ld.refused.Load(), ld.unknown.Load(), ld.unavailable.Load(),
		audits, len(events), rep.Events, rep.Total, time.Since(began).Round(time.Millisecond))
}

// TestClusterLinearizableOperations checks with porcupine, as
// TestLinearizableOperations does for one server, that a history of
// concurrent operations by ATMs spread over three servers of one bank is
// linearizable.
func TestClusterLinearizableOperations(t *testing.T) {
	const clients = 6
	opsPer := 30
	if testing.Short() {
		opsPer = 15
	}
	rng := seededRand(t)
	bc := newBankCluster(t, startEtcdCluster(t, 3), 3, etcdledger.Options{})
	ids := [linAccounts]string{"71", "72", "73"}
	const opening = 1_000
	openAccounts(t, bc.servers[0].addr, ids[:], opening)
	initial := linState{opening, opening, opening}

	var mu sync.Mutex
	var history []porcupine.Operation
	epoch := time.Now()
	var wg sync.WaitGroup
	atms := make([]*client.Client, clients)
	seeds := make([]uint64, clients)
	for i := range atms {
		seeds[i] = rng.Uint64()
		atms[i] = bc.login(bc.servers[i%3].addr, ids[i%linAccounts], client.Options{ProcessID: fmt.Sprintf("lin-%d", i)})
	}
	for i, c := range atms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand(seeds[i])
			a := i % linAccounts
			for range opsPer {
				in := linInput{A: a, Amount: money.Cents(1 + r.IntN(400))}
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if r.IntN(10) == 0 { // give up early: the outcome is unknown
					ctx, cancel = context.WithTimeout(ctx, time.Duration(r.IntN(20_000))*time.Microsecond)
				}
				var rep client.Reply
				var err error
				call := time.Since(epoch).Nanoseconds()
				switch r.IntN(4) {
				case 0:
					in.Kind = "deposit"
					rep, err = c.Deposit(ctx, in.Amount)
				case 1:
					in.Kind = "withdraw"
					rep, err = c.Withdraw(ctx, in.Amount)
				case 2:
					in.Kind = "transfer"
					in.To = (a + 1 + r.IntN(linAccounts-1)) % linAccounts
					rep, err = c.Transfer(ctx, ids[in.To], in.Amount)
				case 3:
					in.Kind, in.Amount = "balance", 0
					rep, err = c.Balance(ctx)
				}
				ret := time.Since(epoch).Nanoseconds()
				cancel()
				out := linOutput{Code: "ok", Balance: rep.Balance}
				if err != nil {
					out = linOutput{Code: wireCode(err)}
				}
				if out.Code == "" {
					ret = math.MaxInt64 // may take effect any time after the call
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: i, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	unknown := 0
	for _, op := range history {
		if op.Output.(linOutput).Code == "" {
			unknown++
		}
	}
	model := linModel(initial)
	res, info := porcupine.CheckOperationsVerbose(model, history, 60*time.Second)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("atm-cluster-linearizability-%d.html", time.Now().UnixNano()))
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			t.Errorf("write the visualisation: %v", err)
		}
		t.Fatalf("history of %d operations is %s; visualisation in %s", len(history), res, path)
	}
	// Not vacuous: an impossible read makes the history illegal.
	altered := false
	for i, op := range history {
		if op.Input.(linInput).Kind == "balance" && op.Output.(linOutput).Code == "ok" {
			bad := append([]porcupine.Operation(nil), history...)
			bad[i].Output = linOutput{Code: "ok", Balance: -1}
			if got := porcupine.CheckOperationsTimeout(model, bad, 60*time.Second); got != porcupine.Illegal {
				t.Fatalf("a history with an impossible read is %s, want Illegal", got)
			}
			altered = true
			break
		}
	}
	if !altered {
		t.Fatal("no successful balance read to alter")
	}
	bc.verify()
	figures(t, "servers=3 etcd_members=3 clients=%d operations=%d unknown_outcome=%d accounts=%d result=%s", clients, len(history), unknown, linAccounts, res)
}
