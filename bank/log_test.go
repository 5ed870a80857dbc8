package bank_test

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
	b := open(t, filepath.Join(t.TempDir(), "bank.db"), bank.Options{})
	b.Clock().Receive(lamport.MaxTS)
	count := func() (n int, last bank.Event) {
		_ = b.Events(func(e bank.Event) error { n++; last = e; return nil })
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
	if _, err := b.Verify(); err != nil {
		t.Fatalf("verify: %v", err)
	}
}
