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
// It runs over plain TCP and over TLS (every ATM trusting the server's
// certificate on first use): TLS carries the same protocol.
func TestBankInvariantsUnderConcurrentClients(t *testing.T) {
	t.Run("tcp", func(t *testing.T) { bankInvariants(t, newEnv) })
	t.Run("tls", func(t *testing.T) { bankInvariants(t, newTLSEnv) })
}

func bankInvariants(t *testing.T, serve func(*testing.T, ...func(*server.Server)) *env) {
	const clients = 32
	run := 4 * time.Second
	if testing.Short() {
		run = 1500 * time.Millisecond
	}
	rng := seededRand(t)
	e := serve(t, func(s *server.Server) { s.LoginBackoff = time.Millisecond })
	accounts := []string{"123", "456", "789", "1001"}
	openAccountsWith(t, e.addr, e.trust, accounts[3:], 50_000)
	start := snapshot(t, e.bank)

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
		atms[i] = e.login(accounts[i%len(accounts)], client.Options{ProcessID: fmt.Sprintf("atm-%02d", i), RequestTimeout: 20 * time.Second})
	}
	op := e.dial(client.Options{ProcessID: "auditor"})
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
		for time.Now().Before(deadline) {
			a, err := op.Audit(context.Background(), opToken)
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

	final, err := op.Audit(ctx(t), opToken)
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
	rep, err := e.bank.Verify()
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if ops.Load() < clients {
		t.Fatalf("only %d operations ran", ops.Load())
	}
	figures(t, "clients=%d duration=%s operations=%d ok=%d insufficient_funds=%d unknown=%d audits=%d pushes=%d events_replayed=%d total=%v",
		clients, run, ops.Load(), okOps.Load(), refused.Load(), unknown.Load(), audits.Load(), pushes.Load(), rep.Events, final.Total)
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
