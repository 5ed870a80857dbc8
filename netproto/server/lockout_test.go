package server_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/outcome"
)

// A guesser at one ATM is stopped after 3 wrong PINs: its fourth attempt
// is refused with account_locked even with the right PIN, while the holder
// at another ATM (another process id) logs in with the right PIN. The lock
// event names the guessing source, process id and address.
func TestGuesserStoppedHolderLogsIn(t *testing.T) {
	t.Parallel()
	var clk fakeClock
	clk.set(time.Date(2030, 5, 6, 10, 0, 0, 0, time.UTC))
	s := startServer(t, filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{Now: clk.now}},
		func(s *server.Server) { s.LoginBackoff = time.Nanosecond })
	defer s.stop(t)

	guesser, err := client.Dial(ctx(t), s.addr, client.Options{ProcessID: "atm-bad1"})
	if err != nil {
		t.Fatal(err)
	}
	defer guesser.Close()
	for i, left := range []int{2, 1} {
		_, err := guesser.Login(ctx(t), "789", "0000")
		var pe *wire.Error
		if !errors.As(err, &pe) || pe.Code != "wrong_pin" || pe.AttemptsLeft != left {
			t.Fatalf("wrong PIN %d: %v, want wrong_pin with %d left", i+1, err, left)
		}
	}
	want := clk.now().Add(15 * time.Minute)
	_, err = guesser.Login(ctx(t), "789", "0000")
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != "account_locked" || !pe.Until.Equal(want) || !strings.Contains(pe.Message, "this ATM") {
		t.Fatalf("third wrong PIN: %v (until %v), want account_locked for this ATM until %v", err, untilOf(err), want)
	}
	// The fourth attempt, with the right PIN, on a new connection of the
	// same ATM: still refused.
	again, err := client.Dial(ctx(t), s.addr, client.Options{ProcessID: "atm-bad1"})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, err := again.Login(ctx(t), "789", "1234"); !errors.Is(err, outcome.ErrAccountLocked) || !untilOf(err).Equal(want) {
		t.Fatalf("fourth attempt, right PIN, from the guessing ATM: %v, want account_locked until %v", err, want)
	}
	// The holder at another ATM.
	holder, err := client.Dial(ctx(t), s.addr, client.Options{ProcessID: "atm-0wn3"})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	r, err := holder.Login(ctx(t), "789", "1234")
	if err != nil || r.Holder != "Carla Dias" {
		t.Fatalf("holder at another ATM: %+v %v", r, err)
	}
	var detail string
	_ = s.bank.Events(context.Background(), func(e bank.Event) error {
		if e.Kind == bank.KindLock && e.Account == "789" {
			detail = e.Detail
		}
		return nil
	})
	if !strings.Contains(detail, "atm-bad1@127.0.0.1") {
		t.Fatalf("lock event %q does not name the source atm-bad1@127.0.0.1", detail)
	}
}

// Ten wrong PINs from ten ATMs throttle the account: the holder's right
// PIN is refused with account_locked and when to try again, until the
// minute has passed; then it logs in.
func TestThrottleAcrossATMs(t *testing.T) {
	t.Parallel()
	var clk fakeClock
	clk.set(time.Date(2030, 5, 6, 10, 0, 0, 0, time.UTC))
	s := startServer(t, filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{Now: clk.now}},
		func(s *server.Server) { s.LoginBackoff = time.Nanosecond })
	defer s.stop(t)
	login := func(proc, pin string) error {
		c, err := client.Dial(ctx(t), s.addr, client.Options{ProcessID: proc})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Login(ctx(t), "456", pin)
		return err
	}
	for i := range 9 {
		if err := login(fmt.Sprintf("atm-g%03d", i), "0000"); !errors.Is(err, outcome.ErrWrongPIN) {
			t.Fatalf("wrong PIN %d: %v", i+1, err)
		}
	}
	next := clk.now().Add(time.Minute)
	err := login("atm-g009", "0000")
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != "account_locked" || !pe.Until.Equal(next) ||
		!strings.Contains(pe.Message, "several ATMs") || !strings.Contains(pe.Message, "one attempt a minute") {
		t.Fatalf("tenth wrong PIN: %v (until %v), want the account throttled until %v", err, untilOf(err), next)
	}
	clk.set(next.Add(-time.Second))
	if err := login("atm-h01d", "1234"); !errors.Is(err, outcome.ErrAccountLocked) || !untilOf(err).Equal(next) {
		t.Fatalf("right PIN while throttled: %v, want account_locked until %v", err, next)
	}
	clk.set(next)
	if err := login("atm-h01d", "1234"); err != nil {
		t.Fatalf("right PIN once the minute passed: %v", err)
	}
}
