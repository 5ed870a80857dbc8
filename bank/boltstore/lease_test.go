package boltstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/boltstore"
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
	c, err := boltstore.Open(crashed, boltstore.Options{Options: bank.Options{NoDefaults: true}})
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
	t.Parallel()
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

// TestCleanRestartContinuesTheClock checks that after a clean Close the
// clock resumes exactly where it stopped, unwritten ticks included, with no
// jump: an orderly restart is seamless.
func TestCleanRestartContinuesTheClock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	if _, err := b.Deposit(context.Background(), bank.Meta{ReqID: "d"}, "123", 1); err != nil {
		t.Fatal(err)
	}
	last := b.Clock().Tick() // e.g. the server's own error reply
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open(t, path, bank.Options{})
	if now := b.Clock().Now(); now != last {
		t.Fatalf("after a clean restart the clock resumed at %d, want %d", now, last)
	}
}
