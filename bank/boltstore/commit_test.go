package boltstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"atm/bank"
	"atm/bank/lamport"
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

// A failed transaction takes its statement marks with it: statements from
// any cursor read only what is on disk, before and after the operations
// are applied again.
func TestFailedCommitForgetsItsMarks(t *testing.T) {
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
	transfers := func(from, to int, fail bool) {
		t.Helper()
		failing.Store(fail)
		defer failing.Store(false)
		var wg sync.WaitGroup
		for i := from; i < to; i++ {
			wg.Go(func() {
				_, err := b.Transfer(ctx, bank.Meta{ReqID: fmt.Sprint("f", i)}, "123", "456", 10)
				if fail != (err != nil) || fail && !errors.Is(err, boom) {
					t.Errorf("transfer %d: %v", i, err)
				}
			})
		}
		wg.Wait()
	}
	// statements checks the statements of 456 from between each two of its
	// entries, oldest first, against its whole statement, all.
	statements := func(all bank.StatementPage) {
		t.Helper()
		for i, e := range slices.Backward(all.Entries) {
			page, _, err := b.Statement(ctx, bank.Meta{}, "456", e.TS+2, 100)
			if err != nil {
				t.Fatalf("statement of 456 before %d: %v", e.TS+2, err)
			}
			if fmt.Sprint(page.Entries) != fmt.Sprint(all.Entries[i:]) {
				t.Fatalf("statement of 456 before %d: %d entries, want %d", e.TS+2, len(page.Entries), len(all.Entries[i:]))
			}
		}
	}
	whole := func() bank.StatementPage {
		t.Helper()
		all, _, err := b.Statement(ctx, bank.Meta{}, "456", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	// 456 has 2 entries; 29 transfers make 31, the next is its 32nd,
	// marked, first in a failed transaction. The statements after it are
	// applied on the disk's state, without its mark.
	transfers(0, 29, false)
	all := whole()
	transfers(29, 39, true)
	statements(all)
	transfers(29, 39, false)
	statements(whole())
}

// A statement applied while the entry with its account's newest mark is
// still on its way to the disk starts from that mark: the page from a
// cursor between entries is the one the disk gives afterwards.
func TestStatementSeesMarksNotYetOnDisk(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "bank.db"), Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	// 456 has 2 entries; 28 deposits make 30.
	var last bank.Receipt
	for i := range 28 {
		if last, err = b.Deposit(ctx, bank.Meta{ReqID: fmt.Sprint("d", i)}, "456", 1); err != nil {
			t.Fatal(err)
		}
	}
	// The writer stops in the transaction of the next batch, A: the 31st
	// entry.
	var block atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	block.Store(true)
	failCommit = func(uint64) error {
		if block.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-release
		}
		return nil
	}
	defer func() { failCommit = nil }()
	ticked := make(chan struct{}, 1)
	defer b.Clock().Subscribe(func(lamport.Change) {
		select {
		case ticked <- struct{}{}:
		default:
		}
	})()
	var wg sync.WaitGroup
	deposit := func(req string) {
		wg.Go(func() {
			if _, err := b.Deposit(ctx, bank.Meta{ReqID: req}, "456", 1); err != nil {
				t.Error(err)
			}
		})
	}
	deposit("A")
	<-entered
	// B, the 32nd entry, marked, is applied in the next batch, which waits
	// for the writer; then the statement, from between entry 30 and A.
	<-ticked // A's
	deposit("B")
	<-ticked // B's: the applier has taken it, and takes what comes next after it
	before := last.Event.TS + 2
	var page bank.StatementPage
	wg.Go(func() {
		var err error
		if page, _, err = b.Statement(ctx, bank.Meta{}, "456", before, 5); err != nil {
			t.Error(err)
		}
	})
	close(release)
	wg.Wait()
	all, _, err := b.Statement(ctx, bank.Meta{}, "456", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Entries) != 32 || all.Entries[2].TS != last.Event.TS {
		t.Fatalf("456 has %d entries, the third newest at %d; want 32, at %d", len(all.Entries), all.Entries[2].TS, last.Event.TS)
	}
	if want := all.Entries[2:7]; fmt.Sprint(page.Entries) != fmt.Sprint(want) {
		t.Fatalf("statement before %d, while its mark was not on disk: %d entries, want 5 from %d", before, len(page.Entries), want[0].TS)
	}
}
