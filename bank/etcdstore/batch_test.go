package etcdstore

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"atm/bank"
	"atm/bank/money"
)

// TestConcurrentOperationsShareTransactions runs deposits on disjoint
// accounts, and deposits, repeated request ids and statements on one
// account, from many goroutines: they commit in fewer transactions than
// operations, and the ledger stays exact. A repeat often lands in the
// same batch as the request it repeats, before that batch's segment of
// the log is written: it gets the first one's outcome all the same.
func TestConcurrentOperationsShareTransactions(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1", NoDefaults: true}})
	const workers, each = 32, 10
	ids := make([]string, workers)
	for w := range ids {
		ids[w] = fmt.Sprintf("%d", 500+w)
		if _, err := l.CreateAccount(ctx, ids[w], "Holder", "1234"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.CreateAccount(ctx, "999", "Shared", "1234"); err != nil {
		t.Fatal(err)
	}
	before := l.Stats()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := l.Deposit(ctx, meta(fmt.Sprintf("w%d-%d", w, i)), ids[w], 3); err != nil {
					t.Error(err)
				}
				// Every worker sends "shared-i" to account 999: one applies it,
				// the others get its outcome back.
				r, err := l.Deposit(ctx, meta(fmt.Sprintf("shared-%d", i)), "999", 7)
				if err != nil {
					t.Error(err)
				} else if r.Event.Amount != 7 {
					t.Errorf("shared-%d: %+v", i, r)
				}
				if _, _, err := l.Statement(ctx, meta(""), "999", 0, 5); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := l.Stats()
	txns, ops := st.Txns-before.Txns, st.Ops-before.Ops
	t.Logf("%d operations in %d transactions (%d conflicts)", ops, txns, st.Conflicts-before.Conflicts)
	if ops != 3*workers*each {
		t.Fatalf("%d operations committed, want %d", ops, 3*workers*each)
	}
	if txns >= ops/2 {
		t.Fatalf("%d operations took %d transactions: not batched", ops, txns)
	}
	for _, id := range ids {
		if b := balance(t, l, id); b != 3*each {
			t.Fatalf("account %s: balance %s", id, b)
		}
	}
	if b := balance(t, l, "999"); b != money.Cents(7*each) {
		t.Fatalf("account 999: balance %s, want each shared request applied once", b)
	}
	a, err := l.Audit(context.Background())
	if err != nil || !a.Conserved() {
		t.Fatalf("audit: %+v %v", a, err)
	}
	verify(t, l)
}
