package retry_test

import (
	"testing"
	"time"

	"atm/netproto/retry"
)

// Each wait lies in [d/2, d] for the step d, which doubles from Min and
// stops at Max.
func TestBackoffBoundsAndGrowth(t *testing.T) {
	b := retry.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	steps := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000, 2000}
	var prev time.Duration
	for i, s := range steps {
		s *= time.Millisecond
		d := b.Next()
		if d < s/2 || d > s {
			t.Fatalf("wait %d is %v, want within [%v, %v]", i+1, d, s/2, s)
		}
		if d < prev/2 {
			t.Fatalf("wait %d is %v, less than half the one before (%v)", i+1, d, prev)
		}
		prev = d
	}
}

// At the same step the waits differ: many clients do not retry in lockstep.
func TestBackoffJitters(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 50 {
		b := retry.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
		seen[b.Next()] = true
	}
	if len(seen) < 2 {
		t.Fatalf("50 first waits were all %v", seen)
	}
	b := retry.Backoff{Min: time.Second, Max: time.Second}
	seen = map[time.Duration]bool{}
	for range 50 {
		d := b.Next()
		if d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("wait %v outside [500ms, 1s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatalf("50 waits at the top step were all %v", seen)
	}
}

func TestBackoffReset(t *testing.T) {
	b := retry.Backoff{Min: 10 * time.Millisecond, Max: time.Second}
	for range 10 {
		b.Next()
	}
	if d := b.Next(); d < 500*time.Millisecond {
		t.Fatalf("after 10 steps the wait is %v, want at the top step", d)
	}
	b.Reset()
	if d := b.Next(); d < 5*time.Millisecond || d > 10*time.Millisecond {
		t.Fatalf("after Reset the wait is %v, want within [5ms, 10ms]", d)
	}
	// Max below Min is taken as Min.
	b = retry.Backoff{Min: 50 * time.Millisecond}
	for range 5 {
		if d := b.Next(); d < 25*time.Millisecond || d > 50*time.Millisecond {
			t.Fatalf("with no Max the wait is %v, want within [25ms, 50ms]", d)
		}
	}
}
