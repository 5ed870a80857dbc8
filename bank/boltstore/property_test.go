package boltstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/money"

	"golang.org/x/crypto/bcrypt"
	"pgregory.net/rapid"
)

// TestLedgerProperties runs random sequences of operations, some batches
// from several goroutines at once, and checks after every run: no negative
// balance, conservation, replay of the log equals the stored state, and
// timestamps strictly increase in the order the ledger applied events.
func TestLedgerProperties(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		var mu sync.Mutex
		var applied []uint64
		b, err := boltstore.Open(filepath.Join(dir, fmt.Sprintf("p%d.db", run)), boltstore.Options{
			Options: bank.Options{
				PINCost:          bcrypt.MinCost,
				MaxAmount:        5_000,
				NoDefaults:       true,
				RememberRequests: 50,
				OnEvent: func(e bank.Event) {
					mu.Lock()
					applied = append(applied, e.TS)
					mu.Unlock()
				},
			},
			MaxBatch: rapid.IntRange(1, 16).Draw(rt, "maxBatch"),
		})
		if err != nil {
			rt.Fatal(err)
		}
		defer b.Close()
		ids := []string{"1", "2", "3", "404"} // 404 does not exist
		for _, id := range ids[:3] {
			if _, err := b.CreateAccount(ctx, id, "Holder "+id, "1234"); err != nil {
				rt.Fatal(err)
			}
			if _, err := b.Deposit(ctx, bank.Meta{ReqID: "open"}, id, 1_000); err != nil {
				rt.Fatal(err)
			}
		}
		genOp := rapid.Custom(func(rt *rapid.T) func(req string) error {
			kind := rapid.IntRange(0, 3).Draw(rt, "kind")
			id := rapid.SampledFrom(ids).Draw(rt, "id")
			to := rapid.SampledFrom(ids).Draw(rt, "to")
			amount := money.Cents(rapid.Int64Range(-10, 6_000).Draw(rt, "amount"))
			repeat := rapid.IntRange(0, 9).Draw(rt, "repeat") == 0
			return func(req string) error {
				if repeat {
					req = "repeated" // a retry of an earlier request id
				}
				m := bank.Meta{ReqID: req, Client: "prop"}
				var err error
				switch kind {
				case 0:
					_, err = b.Deposit(ctx, m, id, amount)
				case 1:
					_, err = b.Withdraw(ctx, m, id, amount)
				case 2:
					_, err = b.Transfer(ctx, m, id, to, amount)
				case 3:
					_, err = b.Balance(ctx, m, id)
				}
				return err
			}
		})
		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for s := range steps {
			ops := rapid.SliceOfN(genOp, 1, 8).Draw(rt, "ops")
			if rapid.Bool().Draw(rt, "concurrent") {
				var wg sync.WaitGroup
				for i, o := range ops {
					wg.Add(1)
					go func() { defer wg.Done(); o(fmt.Sprintf("s%d-%d", s, i)) }()
				}
				wg.Wait()
			} else {
				for i, o := range ops {
					o(fmt.Sprintf("s%d-%d", s, i))
				}
			}
			a, err := b.Audit(context.Background())
			if err != nil {
				rt.Fatal(err)
			}
			if !a.Conserved() {
				rt.Fatalf("after step %d: total %s, deposits %s, withdrawals %s, negative %v",
					s, a.Total, a.Deposits, a.Withdrawals, a.Negative)
			}
		}
		if _, err := b.Verify(context.Background()); err != nil {
			rt.Fatalf("verify: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for i := 1; i < len(applied); i++ {
			if applied[i] <= applied[i-1] {
				rt.Fatalf("apply order: L=%d committed after L=%d", applied[i], applied[i-1])
			}
		}
	})
}
