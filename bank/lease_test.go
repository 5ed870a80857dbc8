package bank_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"atm/bank"
)

// resumeAfterCrash opens a copy of the running bank's file, as a crash would
// leave it, and returns where that copy's clock resumes.
func resumeAfterCrash(t *testing.T, path string) uint64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	if err := os.WriteFile(crashed, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := bank.Open(crashed, bank.Options{NoDefaults: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Clock().Now()
}

// TestClockResumesAboveUnwrittenTicks checks that ticks no transaction
// wrote (a server's own error replies) are still below the clock of a bank
// opened on the file after a crash: a few of them after a commit, and more
// than a whole lease of them with no operation at all.
func TestClockResumesAboveUnwrittenTicks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	if _, err := b.Record(context.Background(), bank.Event{Kind: bank.KindConnect}); err != nil {
		t.Fatal(err)
	}
	var last uint64
	for range 10 {
		last = b.Clock().Tick()
	}
	if now := resumeAfterCrash(t, path); now <= last {
		t.Fatalf("the clock resumed at %d after unwritten ticks up to %d", now, last)
	}

	for range 1_500_000 {
		last = b.Clock().Tick()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := resumeAfterCrash(t, path)
		if now > last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clock resumes at %d after unwritten ticks up to %d", now, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
