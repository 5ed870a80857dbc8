// Package polltest waits, in tests, for a condition that another goroutine
// or process makes true: a log line, a screen, a count of answers.
//
// It checks the condition at once and then after short pauses that grow
// from 1 ms to 20 ms, so a condition that holds soon is seen soon and one
// that takes seconds costs little CPU while the test waits.
package polltest

import (
	"testing"
	"time"
)

// Pauses between two checks of a condition: the first, and the longest.
const (
	firstPause = time.Millisecond
	maxPause   = 20 * time.Millisecond
)

// Until checks cond until it returns true. If timeout passes first, it
// fails the test at once, saying it timed out waiting for what. cond runs
// on the caller's goroutine, so it may itself call t.Fatal.
func Until(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// Within checks cond until it returns true or timeout passes, and reports
// whether it held: for a caller that says more on failure than Until does
// (the last screen, the missing lines). cond is checked once more at the
// deadline, so a condition that came true during the last pause counts.
func Within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	pause := firstPause
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, maxPause)
	}
	return true
}
