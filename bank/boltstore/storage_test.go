package boltstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"atm/bank"
	"atm/bank/money"
	"atm/bank/outcome"
)

// The remembered request ids are rebuilt from the log when the file is
// opened again: a retry after a server restart is still answered from its
// first outcome, and the bound still holds.
func TestRememberedRequestsSurviveReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{RememberRequests: 3})
	for i := range 5 {
		if _, err := b.Deposit(ctx, bank.Meta{ReqID: fmt.Sprint("d", i)}, "123", 1); err != nil {
			t.Fatal(err)
		}
	}
	// A failed operation is remembered too, with its outcome.
	if _, err := b.Withdraw(ctx, bank.Meta{ReqID: "big"}, "456", 1_000_000_000); err == nil {
		t.Fatal("withdrawal above the balance succeeded")
	}
	before := balance(t, b, "123")
	b.Close()

	b = open(t, path, bank.Options{RememberRequests: 3})
	r, err := b.Withdraw(ctx, bank.Meta{ReqID: "big"}, "456", 1_000_000_000)
	if err == nil || !r.Duplicate {
		t.Fatalf("repeated failed withdrawal: duplicate=%v err=%v", r.Duplicate, err)
	}
	// The newest three ids are "big", d4 and d3.
	for i := 4; i >= 0; i-- {
		r, err := b.Deposit(ctx, bank.Meta{ReqID: fmt.Sprint("d", i)}, "123", 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := i >= 3; r.Duplicate != want {
			t.Errorf("id d%d after reopen: duplicate=%v want %v", i, r.Duplicate, want)
		}
	}
	if got := balance(t, b, "123"); got != before+3 {
		t.Fatalf("balance %s, want %s", got, before+3)
	}
	if _, err := b.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Statements follow each account's chain through the log; every page, from
// a cursor or from an arbitrary timestamp, equals the log filtered by hand.
func TestStatementMatchesLog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	ids := []string{"123", "456", "789"}
	for i := range 60 {
		from, to := ids[i%3], ids[(i+1)%3]
		switch i % 4 {
		case 0:
			b.Deposit(ctx, meta(), from, money.Cents(i+1))
		case 1:
			b.Transfer(ctx, meta(), from, to, money.Cents(i+1))
		case 2:
			b.Withdraw(ctx, meta(), from, money.Cents(i+1))
		case 3:
			b.Withdraw(ctx, meta(), from, 1_000_000_000) // fails: not an entry
		}
		b.Balance(ctx, bank.Meta{}, to) // not an entry
	}
	b.Close()
	b = open(t, path, bank.Options{})

	want := map[string][]uint64{}
	err := b.Events(context.Background(), func(e bank.Event) error {
		if e.Outcome != outcome.OutcomeOK {
			return nil
		}
		switch e.Kind {
		case bank.KindOpen, bank.KindDeposit, bank.KindWithdraw:
			want[e.Account] = append(want[e.Account], e.TS)
		case bank.KindTransfer:
			want[e.Account] = append(want[e.Account], e.TS)
			want[e.To] = append(want[e.To], e.TS)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		slices.Reverse(want[id])
		var got []uint64
		var before uint64
		for {
			page, _, err := b.Statement(ctx, bank.Meta{}, id, before, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Entries {
				got = append(got, e.TS)
			}
			if page.Next == 0 {
				break
			}
			before = page.Next
		}
		if !slices.Equal(got, want[id]) {
			t.Fatalf("statement of %s:\n got %v\nwant %v", id, got, want[id])
		}
		// From other timestamps: entries strictly below them. An entry's
		// TS+1 is its reply tick, never an event, so +2 walks the chain.
		for _, off := range []uint64{1, 2} {
			mid := want[id][len(want[id])/2] + off
			page, _, err := b.Statement(ctx, bank.Meta{}, id, mid, 100)
			if err != nil {
				t.Fatal(err)
			}
			var tail []uint64
			for _, e := range page.Entries {
				tail = append(tail, e.TS)
			}
			if !slices.Equal(tail, want[id][len(want[id])/2:]) {
				t.Fatalf("statement of %s before %d:\n got %v\nwant %v", id, mid, tail, want[id][len(want[id])/2:])
			}
		}
	}
}
