package polltest

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWithinSeesAConditionThatComesTrue(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	go func() {
		for range 5 {
			n.Add(1)
		}
	}()
	if !Within(10*time.Second, func() bool { return n.Load() == 5 }) {
		t.Fatal("Within gave up on a condition that came true")
	}
}

func TestWithinChecksAtLeastOnceAndGivesUp(t *testing.T) {
	t.Parallel()
	calls := 0
	if Within(0, func() bool { calls++; return false }) {
		t.Fatal("Within reported a false condition as holding")
	}
	if calls != 1 {
		t.Fatalf("cond called %d times with no time to wait, want 1", calls)
	}
	if !Within(0, func() bool { return true }) {
		t.Fatal("Within missed a condition true at once")
	}
}

// fatalRecorder records a failure instead of ending the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}

func TestUntilNamesWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	r := &fatalRecorder{TB: t}
	Until(r, "the answer", time.Millisecond, func() bool { return false })
	if !strings.Contains(r.msg, "the answer") {
		t.Fatalf("Until's failure on a condition that never held: %q, want it to name what it waited for", r.msg)
	}
}
