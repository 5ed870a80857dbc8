package bank_test

import (
	"atm/bank"
	"atm/bank/boltstore"
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
	t.Parallel()
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
	slots := bank.PINSlots(b.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if cap(slots) < 1 {
		t.Fatalf("%d PIN slots", cap(slots))
	}
	for range cap(slots) { // every comparison slot busy
		slots <- struct{}{}
	}
	before := b.Clock().Now()

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Authenticate(cancelled, bank.Meta{Client: "t"}, "123", "1234"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while the slots are busy: %v, want context.Canceled", err)
	}
	expiring, stop := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer stop()
	if _, err := b.Authenticate(expiring, bank.Meta{Client: "t"}, "123", "1234"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline while the slots are busy: %v, want context.DeadlineExceeded", err)
	}
	if now := b.Clock().Now(); now != before {
		t.Fatalf("a login that never got a slot reached the ledger (clock %d → %d)", before, now)
	}

	done := make(chan error, 1)
	go func() {
		_, err := b.Authenticate(context.Background(), bank.Meta{Client: "t"}, "123", "1234")
		done <- err
	}()
	<-slots // one slot frees
	if err := <-done; err != nil {
		t.Fatalf("login once a slot freed: %v", err)
	}
	for range cap(slots) - 1 {
		<-slots
	}
}
