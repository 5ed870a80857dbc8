package boltstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"atm/bank"
	"atm/bank/money"

	"golang.org/x/crypto/bcrypt"
)

// A failed transaction fails its operations and those applied on top of it,
// acknowledges none of them, and the ledger carries on from the disk: the
// balances, the remembered request ids and the log stay consistent.
func TestFailedCommitFailsOnlyWhatDependsOnIt(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "bank.db"), Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	boom := errors.New("disk on fire")
	var failing atomic.Bool
	failCommit = func(uint64) error {
		if failing.Load() {
			return boom
		}
		return nil
	}
	defer func() { failCommit = nil }()

	before, err := b.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.Transfer(ctx, bank.Meta{ReqID: fmt.Sprint("f", i)}, "123", "456", 10)
			if errors.Is(err, boom) {
				failed.Add(1)
			} else if err != nil {
				t.Errorf("transfer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 16 {
		t.Fatalf("%d of 16 transfers failed with the commit error", failed.Load())
	}
	failing.Store(false)
	after, err := b.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after.Total != before.Total || fmt.Sprint(after.Accounts) != fmt.Sprint(before.Accounts) {
		t.Fatalf("a failed commit changed the ledger: %+v -> %+v", before, after)
	}
	// The same request ids were never applied: they apply now, once.
	for i := range 16 {
		r, err := b.Transfer(ctx, bank.Meta{ReqID: fmt.Sprint("f", i)}, "123", "456", 10)
		if err != nil || r.Duplicate {
			t.Fatalf("retry of f%d: duplicate=%v err=%v", i, r.Duplicate, err)
		}
	}
	r, err := b.Transfer(ctx, bank.Meta{ReqID: "f0"}, "123", "456", 10)
	if err != nil || !r.Duplicate {
		t.Fatalf("second retry of f0: duplicate=%v err=%v", r.Duplicate, err)
	}
	if _, err := b.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	page, _, err := b.Statement(ctx, bank.Meta{}, "456", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(page.Entries); got != 18 { // open, opening deposit, 16 transfers
		t.Fatalf("statement of 456 has %d entries, want 18", got)
	}
}

// One failed transaction amid concurrent traffic: whatever succeeded is
// applied exactly once, whatever failed not at all, and replay agrees.
func TestOneFailedCommitAmidTraffic(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "bank.db"), Options{Options: bank.Options{PINCost: bcrypt.MinCost}, MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	boom := errors.New("disk on fire")
	var target atomic.Uint64
	failCommit = func(seq uint64) error {
		if seq == target.Load() {
			return boom
		}
		return nil
	}
	defer func() { failCommit = nil }()
	start, err := b.Balance(ctx, bank.Meta{}, "456")
	if err != nil {
		t.Fatal(err)
	}
	target.Store(b.s.committedSeq.Load() + 3)
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.Transfer(ctx, bank.Meta{ReqID: fmt.Sprint("t", i)}, "123", "456", 10)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, boom):
				failed.Add(1)
			default:
				t.Errorf("transfer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if failed.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("ok %d failed %d: want some of each", ok.Load(), failed.Load())
	}
	end, err := b.Balance(ctx, bank.Meta{}, "456")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := end.Event.Balance-start.Event.Balance, money.Cents(10*ok.Load()); got != want {
		t.Fatalf("456 gained %s for %d successful transfers", got, ok.Load())
	}
	if _, err := b.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}
