package bank_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"atm/bank"
)

func TestClockRules(t *testing.T) {
	var c bank.Clock // the zero value is a clock at 0
	if c.Now() != 0 {
		t.Fatalf("a new clock reads %d", c.Now())
	}
	if got := c.Tick(); got != 1 {
		t.Fatalf("first tick = %d, want 1", got)
	}
	if got := c.Observe(10); got != 11 { // max(1, 10)+1
		t.Fatalf("observe 10 at 1 = %d, want 11", got)
	}
	if got := c.Observe(3); got != 12 { // max(11, 3)+1
		t.Fatalf("observe 3 at 11 = %d, want 12", got)
	}
	ch := c.Receive(12)
	if ch != (bank.Change{Old: 12, New: 13, Observed: true, Received: 12}) {
		t.Fatalf("receive 12 at 12 = %+v", ch)
	}
	if got := bank.NewClock(40).Tick(); got != 41 {
		t.Fatalf("tick of a clock resumed at 40 = %d", got)
	}
}

// TestClockConcurrentAndWatched ticks and observes from many goroutines:
// every value is handed out once, and a subscriber sees every change, each
// starting where the previous one ended.
func TestClockConcurrentAndWatched(t *testing.T) {
	var c bank.Clock
	var mu sync.Mutex
	var seen []bank.Change
	cancel := c.Subscribe(func(ch bank.Change) {
		mu.Lock()
		seen = append(seen, ch)
		mu.Unlock()
	})
	const workers, each = 8, 500
	values := make(chan uint64, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if (w+i)%5 == 0 {
					values <- c.Observe(uint64(i))
				} else {
					values <- c.Tick()
				}
			}
		}()
	}
	wg.Wait()
	close(values)
	unique := map[uint64]bool{}
	for v := range values {
		if unique[v] {
			t.Fatalf("value %d handed out twice", v)
		}
		unique[v] = true
	}
	mu.Lock()
	if len(seen) != workers*each {
		t.Fatalf("subscriber saw %d changes, want %d", len(seen), workers*each)
	}
	for i, ch := range seen {
		if i > 0 && ch.Old != seen[i-1].New {
			t.Fatalf("change %d starts at %d, the previous ended at %d", i, ch.Old, seen[i-1].New)
		}
		want := ch.Old + 1
		if ch.Observed {
			want = max(ch.Old, ch.Received) + 1
		}
		if ch.New != want {
			t.Fatalf("change %+v breaks the rule", ch)
		}
	}
	mu.Unlock()
	cancel()
	c.Tick()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != workers*each {
		t.Fatal("a cancelled subscriber was still called")
	}
}

// TestClockCeiling drives the bank's clock to its ceiling: ticks stop there
// instead of wrapping, and an event that would reuse a timestamp already in
// the log fails instead of overwriting the record.
func TestClockCeiling(t *testing.T) {
	var c bank.Clock
	if got := c.Observe(^uint64(0)); got != bank.MaxTS {
		t.Fatalf("observing 2^64-1 gave %d, want %d", got, bank.MaxTS)
	}
	if got := c.Tick(); got != bank.MaxTS {
		t.Fatalf("a tick at the ceiling gave %d", got)
	}

	b := open(t, filepath.Join(t.TempDir(), "bank.db"), bank.Options{})
	b.Clock().Observe(bank.MaxTS)
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
	if n != before+1 || last.Detail != "first at the ceiling" || last.TS != bank.MaxTS {
		t.Fatalf("%d events (want %d), the last %+v", n, before+1, last)
	}
	if _, err := b.Verify(); err != nil {
		t.Fatalf("verify: %v", err)
	}
}
