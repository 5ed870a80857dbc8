package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/outcome"
)

// fakeNow is a wall clock the test moves by hand.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func from(src string) bank.Meta { m := meta(); m.Source = src; return m }

// A guesser is stopped after 3 wrong PINs from its source, the right PIN
// included, while the holder at another ATM still logs in; the lockout
// survives a restart and ends after LockFor. The lock is logged before the
// refusal that announces it.
func TestGuesserLockedOutHolderNot(t *testing.T) {
	t.Parallel()
	clk := &fakeNow{t: time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{Now: clk.now})
	const guesser, holder = "atm-bad1@10.0.0.9", "atm-0a0a@10.0.0.1"
	for left := 2; left >= 1; left-- {
		_, err := b.Authenticate(ctx, from(guesser), "123", "0000")
		var wp *outcome.WrongPINError
		if !errors.As(err, &wp) || wp.AttemptsLeft != left {
			t.Fatalf("wrong PIN: %v, want %d attempts left", err, left)
		}
		if !strings.Contains(err.Error(), "this ATM is locked out") {
			t.Errorf("wrong PIN message %q does not say who would be locked out", err)
		}
	}
	r, err := b.Authenticate(ctx, from(guesser), "123", "0000")
	var le *outcome.LockedError
	if !errors.As(err, &le) || le.Every != 0 || !le.Until.Equal(clk.now().Add(15*time.Minute)) {
		t.Fatalf("third wrong PIN: %v, want this source locked out for 15 minutes", err)
	}
	if !strings.Contains(err.Error(), "this ATM") || !strings.Contains(err.Error(), "locked out") {
		t.Errorf("lockout message %q does not say it is this ATM that is locked out", err)
	}
	lockedAt := r.Event.TS
	// The fourth attempt, with the right PIN, is refused too.
	if _, err := b.Authenticate(ctx, from(guesser), "123", "1234"); !errors.Is(err, outcome.ErrAccountLocked) {
		t.Fatalf("right PIN from the locked-out source: %v, want account_locked", err)
	}
	// The holder, elsewhere, logs in, and the account is not Locked.
	if r, err := b.Authenticate(ctx, from(holder), "123", "1234"); err != nil || r.Holder != "Ana Souza" {
		t.Fatalf("holder from another ATM: %+v %v", r, err)
	}
	accts, _ := b.Accounts(context.Background())
	if b.Locked(accts[0]) {
		t.Fatal("account reads as locked while only a source is locked out")
	}
	// The lockout survives a restart; the holder's success did not lift it.
	b.Close()
	b = open(t, path, bank.Options{Now: clk.now})
	if _, err := b.Authenticate(ctx, from(guesser), "123", "1234"); !errors.Is(err, outcome.ErrAccountLocked) {
		t.Fatalf("locked-out source after a restart: %v", err)
	}
	clk.add(15 * time.Minute)
	if _, err := b.Authenticate(ctx, from(guesser), "123", "1234"); err != nil {
		t.Fatalf("once the lockout ended: %v", err)
	}
	// The log: lock at n, the refusal announcing it at n+1, its reply n+2.
	var seq []string
	var lockTS uint64
	b.Events(context.Background(), func(e bank.Event) error {
		if e.Account == "123" && (e.Kind == bank.KindLogin || e.Kind == bank.KindLock) {
			seq = append(seq, string(e.Kind)+":"+e.Outcome)
		}
		if e.Kind == bank.KindLock {
			lockTS = e.TS
			if !strings.Contains(e.Detail, guesser) {
				t.Errorf("lock event %q does not name the source", e.Detail)
			}
		}
		return nil
	})
	if lockTS+1 != lockedAt || r.ReplyTS != lockedAt+1 {
		t.Fatalf("lock at L=%d, refusal at L=%d, reply at L=%d: want n, n+1, n+2", lockTS, lockedAt, r.ReplyTS)
	}
	want := "login:wrong_pin login:wrong_pin lock:ok login:account_locked login:account_locked login:ok login:account_locked login:ok"
	if got := strings.Join(seq, " "); got != want {
		t.Fatalf("log:\n got %s\nwant %s", got, want)
	}
}

// Ten wrong PINs from ten sources throttle the account: one attempt a
// minute from anyone, an earlier one refused with when the next is allowed
// (even with the right PIN), and the right PIN once allowed logs in and
// ends the throttle.
func TestThrottleAfterManySources(t *testing.T) {
	t.Parallel()
	clk := &fakeNow{t: time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{Now: clk.now})
	for i := range 9 {
		if _, err := b.Authenticate(ctx, from(fmt.Sprintf("atm-%d@10.0.0.%d", i, i)), "456", "0000"); !errors.Is(err, outcome.ErrWrongPIN) {
			t.Fatalf("wrong PIN %d: %v", i+1, err)
		}
	}
	_, err := b.Authenticate(ctx, from("atm-9@10.0.0.9"), "456", "0000")
	var le *outcome.LockedError
	next := clk.now().Add(time.Minute)
	if !errors.As(err, &le) || le.Every != time.Minute || !le.Until.Equal(next) {
		t.Fatalf("tenth wrong PIN: %v, want the account throttled until %v", err, next)
	}
	msg := "too many wrong PINs on this account from several ATMs; the bank accepts one attempt a minute: try again at " +
		next.Local().Format("15:04:05")
	if err.Error() != msg {
		t.Errorf("message %q, want %q", err, msg)
	}
	accts, _ := b.Accounts(context.Background())
	if !b.Locked(accts[1]) {
		t.Fatal("the throttled account does not read as locked")
	}
	// Before the minute is up, even the holder with the right PIN waits.
	clk.add(59 * time.Second)
	if _, err := b.Authenticate(ctx, from("atm-holder@10.0.0.50"), "456", "1234"); !errors.As(err, &le) || !le.Until.Equal(next) {
		t.Fatalf("right PIN while throttled: %v, want account_locked until %v", err, next)
	}
	// Survives a restart.
	b.Close()
	b = open(t, path, bank.Options{Now: clk.now})
	if _, err := b.Authenticate(ctx, from("atm-holder@10.0.0.50"), "456", "1234"); !errors.Is(err, outcome.ErrAccountLocked) {
		t.Fatalf("throttle after a restart: %v", err)
	}
	// When allowed, a wrong PIN arms it again for a minute.
	clk.add(time.Second)
	if _, err := b.Authenticate(ctx, from("atm-10@10.0.0.10"), "456", "0000"); !errors.As(err, &le) || !le.Until.Equal(clk.now().Add(time.Minute)) {
		t.Fatalf("wrong PIN when allowed: %v, want the throttle for another minute", err)
	}
	clk.add(time.Minute)
	if r, err := b.Authenticate(ctx, from("atm-holder@10.0.0.50"), "456", "1234"); err != nil || r.Holder != "Bruno Lima" {
		t.Fatalf("right PIN once allowed: %+v %v", r, err)
	}
	accts, _ = b.Accounts(context.Background())
	if b.Locked(accts[1]) || accts[1].FailedPINs != 0 {
		t.Fatalf("after a success the account is still throttled: %+v", accts[1])
	}
	if _, err := b.Authenticate(ctx, from("atm-11@10.0.0.11"), "456", "0000"); !errors.Is(err, outcome.ErrWrongPIN) {
		t.Fatalf("a wrong PIN after the reset: %v, want wrong_pin", err)
	}
}

// The sources remembered per account are bounded: the oldest is forgotten.
func TestSourcesBounded(t *testing.T) {
	t.Parallel()
	b := open(t, filepath.Join(t.TempDir(), "bank.db"), bank.Options{ThrottleAfter: 1000})
	for i := range bank.MaxSources + 5 {
		if _, err := b.Authenticate(ctx, from(fmt.Sprintf("atm-%d@h", i)), "789", "0000"); !errors.Is(err, outcome.ErrWrongPIN) {
			t.Fatal(err)
		}
	}
	accts, _ := b.Accounts(context.Background())
	src := accts[2].Sources
	if len(src) != bank.MaxSources || src[0].Source != "atm-5@h" || src[len(src)-1].Source != fmt.Sprintf("atm-%d@h", bank.MaxSources+4) {
		t.Fatalf("%d sources remembered, from %q to %q", len(src), src[0].Source, src[len(src)-1].Source)
	}
}
