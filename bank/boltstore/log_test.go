package boltstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"atm/bank"
	"atm/bank/lamport"
)

// TestLogRefusesTimestampReuse drives the bank's clock to its ceiling, where
// ticks stop instead of wrapping: an event that would reuse a timestamp
// already in the log fails instead of overwriting the record.
func TestLogRefusesTimestampReuse(t *testing.T) {
	t.Parallel()
	b := open(t, filepath.Join(t.TempDir(), "bank.db"), bank.Options{})
	b.Clock().Receive(lamport.MaxTS)
	count := func() (n int, last bank.Event) {
		_ = b.Events(context.Background(), func(e bank.Event) error { n++; last = e; return nil })
		return n, last
	}
	before, _ := count()
	ctx := context.Background()
	if _, err := b.Record(ctx, bank.Event{Kind: bank.KindConnect, Detail: "first at the ceiling"}); err != nil {
		t.Fatalf("the first event at the ceiling: %v", err)
	}
	if _, err := b.Record(ctx, bank.Event{Kind: bank.KindConnect, Detail: "second at the ceiling"}); err == nil {
		t.Fatal("a second event at the same timestamp was written")
	}
	n, last := count()
	if n != before+1 || last.Detail != "first at the ceiling" || last.TS != lamport.MaxTS {
		t.Fatalf("%d events (want %d), the last %+v", n, before+1, last)
	}
	if _, err := b.Verify(context.Background()); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// TestReceiveReportsKeptWithTheRequest: the receive reports a request
// carries are stored in its record, survive a reopen, and are not shown
// to the other party of a transfer on its statement.
func TestReceiveReportsKeptWithTheRequest(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	ctx := context.Background()
	seen := []bank.Seen{{TS: 5, At: 9}, {TS: 12, At: 13}}
	r, err := b.Transfer(ctx, bank.Meta{ReqID: "r1", Client: "atm-x", ClientTS: 14, Seen: seen}, "123", "456", 100)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = open(t, path, bank.Options{})
	var got []bank.Seen
	_ = b.Events(context.Background(), func(e bank.Event) error {
		if e.TS == r.Event.TS {
			got = e.Seen
		}
		return nil
	})
	if len(got) != 2 || got[0] != seen[0] || got[1] != seen[1] {
		t.Fatalf("the transfer's reports after a reopen: %+v", got)
	}
	page, _, err := b.Statement(ctx, bank.Meta{ReqID: "s1", Client: "atm-y"}, "456", 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) == 0 || page.Entries[0].TS != r.Event.TS || page.Entries[0].Seen != nil {
		t.Fatalf("the recipient's statement shows %+v", page.Entries)
	}
	if _, err := b.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestPushOriginKept: a push of another server's change records that
// server, the change's timestamp and this server's receive of it; all
// three survive a reopen, with or without receive reports beside them.
func TestPushOriginKept(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	ctx := context.Background()
	want := []bank.Event{
		{Kind: bank.KindPush, Account: "456", Amount: 250, Client: "atm-b", Origin: "bank-1", OrigTS: 2, RecvTS: 3},
		{Kind: bank.KindPush, Account: "456", Amount: 250, Client: "atm-c", Origin: "bank-3", OrigTS: 4, RecvTS: 5,
			Seen: []bank.Seen{{TS: 7, At: 8}}},
		{Kind: bank.KindPush, Account: "456", Amount: 250, Client: "atm-d"},
	}
	rec, err := b.RecordAll(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = open(t, path, bank.Options{})
	got := map[uint64]bank.Event{}
	_ = b.Events(context.Background(), func(e bank.Event) error { got[e.TS] = e; return nil })
	for i, r := range rec {
		g, w := got[r.TS], want[i]
		if g.Origin != w.Origin || g.OrigTS != w.OrigTS || g.RecvTS != w.RecvTS || len(g.Seen) != len(w.Seen) || g.Client != w.Client {
			t.Fatalf("push %d after a reopen: %+v, want %+v", i, g, w)
		}
	}
	if _, err := b.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}
