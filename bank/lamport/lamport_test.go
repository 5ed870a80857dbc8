package lamport_test

import (
	"sync"
	"testing"

	"atm/bank/lamport"
)

func TestClockRules(t *testing.T) {
	var c lamport.Clock // the zero value is a clock at 0
	if c.Now() != 0 {
		t.Fatalf("a new clock reads %d", c.Now())
	}
	if got := c.Tick(); got != 1 {
		t.Fatalf("first tick = %d, want 1", got)
	}
	if got := c.Receive(10).New; got != 11 { // max(1, 10)+1
		t.Fatalf("observe 10 at 1 = %d, want 11", got)
	}
	if got := c.Receive(3).New; got != 12 { // max(11, 3)+1
		t.Fatalf("observe 3 at 11 = %d, want 12", got)
	}
	ch := c.Receive(12)
	if ch != (lamport.Change{Old: 12, New: 13, Observed: true, Received: 12}) {
		t.Fatalf("receive 12 at 12 = %+v", ch)
	}
	if got := lamport.NewClock(40).Tick(); got != 41 {
		t.Fatalf("tick of a clock resumed at 40 = %d", got)
	}
}

// TestClockConcurrentAndWatched ticks and observes from many goroutines:
// every value is handed out once, and a subscriber sees every change, each
// starting where the previous one ended.
func TestClockConcurrentAndWatched(t *testing.T) {
	var c lamport.Clock
	var mu sync.Mutex
	var seen []lamport.Change
	cancel := c.Subscribe(func(ch lamport.Change) {
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
					values <- c.Receive(uint64(i)).New
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

// TestClockCeiling: a clock never goes past MaxTS and never wraps.
func TestClockCeiling(t *testing.T) {
	var c lamport.Clock
	if got := c.Receive(^uint64(0)).New; got != lamport.MaxTS {
		t.Fatalf("receiving 2^64-1 gave %d, want %d", got, lamport.MaxTS)
	}
	if got := c.Tick(); got != lamport.MaxTS {
		t.Fatalf("a tick at the ceiling gave %d", got)
	}
	if got := c.Receive(5).New; got != lamport.MaxTS {
		t.Fatalf("a receive at the ceiling gave %d", got)
	}
}
