package bank

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// With every PIN-check slot taken, Authenticate waits for one, and a
// cancelled or expired ctx ends the wait with the context's error; nothing
// reaches the ledger. Once a slot frees, the login goes through.
func TestAuthenticateWaitsForAPINSlotHonouringCtx(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "bank.db"), Options{PINCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if cap(b.pinSlots) < 1 {
		t.Fatalf("%d PIN slots", cap(b.pinSlots))
	}
	for range cap(b.pinSlots) { // every comparison slot busy
		b.pinSlots <- struct{}{}
	}
	before := b.clock.Now()

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Authenticate(cancelled, Meta{Client: "t"}, "123", "1234"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while the slots are busy: %v, want context.Canceled", err)
	}
	expiring, stop := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer stop()
	if _, err := b.Authenticate(expiring, Meta{Client: "t"}, "123", "1234"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline while the slots are busy: %v, want context.DeadlineExceeded", err)
	}
	if now := b.clock.Now(); now != before {
		t.Fatalf("a login that never got a slot reached the ledger (clock %d → %d)", before, now)
	}

	done := make(chan error, 1)
	go func() {
		_, err := b.Authenticate(context.Background(), Meta{Client: "t"}, "123", "1234")
		done <- err
	}()
	<-b.pinSlots // one slot frees
	if err := <-done; err != nil {
		t.Fatalf("login once a slot freed: %v", err)
	}
	for range cap(b.pinSlots) - 1 {
		<-b.pinSlots
	}
}
