package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"

	"atm/bank/money"
)

// TestBankInvariantsUnderConcurrentClients is a bank test in the style of
// Jepsen's: many ATMs over real TCP move money at random between a few
// accounts while an operator audits the whole ledger. Every audit, taken in
// one transaction, must show the balances summing to deposits minus
// withdrawals with no account negative; at the end the totals must equal
// what the clients were told, and the log must replay to the balances.
//
// It runs against every backend, and over TLS on a bbolt file (every ATM
// trusting the server's certificate on first use): TLS carries the same
// protocol.
func TestBankInvariantsUnderConcurrentClients(t *testing.T) {
	t.Parallel()
	configure := func(s *server.Server) { s.LoginBackoff = time.Millisecond }
	eachBackend(t, testBankInvariants, configure)
	t.Run(overTLS.name, func(t *testing.T) {
		t.Parallel()
		testBankInvariants(t, overTLS.start(t, configure))
	})
}

func testBankInvariants(t *testing.T, b *testBank) {
	const clients = 32
	run := 4 * time.Second
	if b.cluster {
		run = 2 * time.Second
	}
	if testing.Short() {
		run = 1500 * time.Millisecond
	}
	rng := seededRand(t)
	accounts := []string{"123", "456", "789", "1001"}
	openAccountsWith(t, b.addr(0), b.trust, accounts[3:], 50_000)
	start := snapshot(t, b.ledger)

	var (
		deposited, withdrawn  atomic.Int64 // acknowledged successful amounts
		unknownIn, unknownOut atomic.Int64 // amounts whose outcome is unknown
		ops, okOps, refused   atomic.Int64
		unknown, audits       atomic.Int64
		pushes                atomic.Int64
	)
	var wg sync.WaitGroup
	errs := make(chan error, clients+1)
	seeds := make([]uint64, clients)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	atms := make([]*client.Client, clients)
	for i := range clients { // every session exists before money moves
		atms[i] = b.login(i, accounts[i%len(accounts)], client.Options{ProcessID: fmt.Sprintf("atm-%02d", i), RequestTimeout: 20 * time.Second})
	}
	var auditors []*client.Client // one on each server, used in turn
	for i := range b.addrs {
		auditors = append(auditors, b.dial(i, client.Options{ProcessID: fmt.Sprintf("auditor-%d", i+1)}))
	}
	deadline := time.Now().Add(run)
	for i, c := range atms {
		acct := accounts[i%len(accounts)]
		go func() {
			for range c.Pushes() {
				pushes.Add(1)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand(seeds[i])
			for time.Now().Before(deadline) {
				amount := money.Cents(1 + r.IntN(60_000))
				var (
					rep client.Reply
					err error
				)
				kind := r.IntN(10)
				switch {
				case kind < 3:
					rep, err = c.Deposit(context.Background(), amount)
				case kind < 6:
					rep, err = c.Withdraw(context.Background(), amount)
				case kind < 9:
					to := accounts[(indexOf(accounts, acct)+1+r.IntN(len(accounts)-1))%len(accounts)]
					rep, err = c.Transfer(context.Background(), to, amount)
				default:
					rep, err = c.Balance(context.Background())
				}
				ops.Add(1)
				code := wireCode(err)
				switch {
				case err == nil:
					okOps.Add(1)
					if rep.Balance < 0 {
						errs <- fmt.Errorf("client %d: %s left a negative balance %v", i, rep.Op, rep.Balance)
						return
					}
					switch {
					case kind < 3:
						deposited.Add(int64(amount))
					case kind < 6:
						withdrawn.Add(int64(amount))
					}
				case code == "insufficient_funds":
					refused.Add(1)
				case code == "":
					// No answer: the operation may or may not have happened.
					unknown.Add(1)
					switch {
					case kind < 3:
						unknownIn.Add(int64(amount))
					case kind < 6:
						unknownOut.Add(int64(amount))
					}
				default:
					errs <- fmt.Errorf("client %d: unexpected error %w", i, err)
					return
				}
			}
		}()
	}

	// The operator audits while the ATMs run.
	auditDone := make(chan struct{})
	go func() {
		defer close(auditDone)
		for n := 0; time.Now().Before(deadline); n++ {
			a, err := auditors[n%len(auditors)].Audit(context.Background(), opToken)
			if err != nil {
				errs <- fmt.Errorf("audit: %w", err)
				return
			}
			audits.Add(1)
			if err := checkAudit(a); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	<-auditDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	final, err := auditors[0].Audit(ctx(t), opToken)
	if err != nil {
		t.Fatalf("final audit: %v", err)
	}
	if err := checkAudit(final); err != nil {
		t.Fatal(err)
	}
	gotIn, gotOut := final.Deposits-start.Deposits, final.Withdrawals-start.Withdrawals
	wantIn, wantOut := money.Cents(deposited.Load()), money.Cents(withdrawn.Load())
	if gotIn < wantIn || gotIn > wantIn+money.Cents(unknownIn.Load()) {
		t.Errorf("the ledger took in %v; clients were told %v (plus up to %v unknown)", gotIn, wantIn, unknownIn.Load())
	}
	if gotOut < wantOut || gotOut > wantOut+money.Cents(unknownOut.Load()) {
		t.Errorf("the ledger paid out %v; clients were told %v (plus up to %v unknown)", gotOut, wantOut, unknownOut.Load())
	}
	rep := b.verify(t)
	if ops.Load() < clients {
		t.Fatalf("only %d operations ran", ops.Load())
	}
	figures(t, "servers=%d clients=%d duration=%s operations=%d ok=%d insufficient_funds=%d unknown=%d audits=%d pushes=%d events_replayed=%d total=%v",
		len(b.addrs), clients, run, ops.Load(), okOps.Load(), refused.Load(), unknown.Load(), audits.Load(), pushes.Load(), rep.Events, final.Total)
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
