package bank_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"

	"golang.org/x/crypto/bcrypt"
)

// eventID names an event of the log.
type eventID struct {
	ts   uint64
	proc string
}

// follow reads the log of l from the start with pages of at most limit
// events, waiting on Appended when it is at the end, until it is at the
// end after stop is closed, or ctx ends. It fails the test on an event
// read twice.
func follow(ctx context.Context, t *testing.T, l *bank.Ledger, limit int, stop <-chan struct{}) map[eventID]bool {
	t.Helper()
	seen := map[eventID]bool{}
	var after bank.Cursor
	for {
		stopped := false
		select {
		case <-stop:
			stopped = true
		default:
		}
		wake := l.Appended()
		page, next, err := l.EventsAfter(ctx, after, limit)
		if err != nil {
			t.Errorf("read after %q: %v", after, err)
			return seen
		}
		if len(page) > limit {
			t.Errorf("a page of %d events, asked for %d", len(page), limit)
		}
		for _, e := range page {
			id := eventID{e.TS, e.Proc}
			if seen[id] {
				t.Errorf("event L=%d of %s read twice (cursor %q)", e.TS, e.Proc, after)
			}
			seen[id] = true
		}
		after = next
		if len(page) == 0 {
			if stopped {
				return seen
			}
			select {
			case <-wake:
			case <-stop:
			case <-ctx.Done():
				return seen
			}
		}
	}
}

// everyEvent lists the events of l's log at one point.
func everyEvent(t *testing.T, l *bank.Ledger) map[eventID]bool {
	t.Helper()
	all := map[eventID]bool{}
	if err := l.Events(context.Background(), func(e bank.Event) error {
		all[eventID{e.TS, e.Proc}] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return all
}

// depositThrough runs n deposits of 1 cent through each of ls, side by
// side, each server on its own account (123, 456, 789, in turn), so that
// the servers do not wait for each other.
func depositThrough(t *testing.T, ls []*bank.Ledger, n int) {
	var wg sync.WaitGroup
	for i, l := range ls {
		acct := bank.DefaultAccounts[i%len(bank.DefaultAccounts)].ID
		for w := range 2 {
			wg.Go(func() {
				for j := range n / 2 {
					m := bank.Meta{ReqID: fmt.Sprintf("s%d-w%d-%d", i, w, j), Client: fmt.Sprintf("atm-%d-%d", i, w)}
					if _, err := l.Deposit(context.Background(), m, acct, 1); err != nil {
						t.Errorf("deposit through server %d: %v", i, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

// A reader that pages through the log, one event at a time or a few, while
// deposits commit, reads every event exactly once, on every store: the
// cursor is in the store's commit order. A cursor the store never gave is
// refused.
func TestTheLogCursorReadsEveryEventOnce(t *testing.T) {
	t.Parallel()
	for _, l := range stores(t, bank.Options{ProcessID: "bank"}) {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			const deposits = 200
			before := len(everyEvent(t, l.Ledger))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done, stop := make(chan map[eventID]bool), make(chan struct{})
			go func() { done <- follow(ctx, t, l.Ledger, 1, stop) }()
			depositThrough(t, []*bank.Ledger{l.Ledger}, deposits)
			close(stop)
			got := <-done
			all := everyEvent(t, l.Ledger)
			for id := range all {
				if !got[id] {
					t.Errorf("event L=%d of %s was skipped", id.ts, id.proc)
				}
			}
			if len(got) != len(all) || len(all) < before+deposits {
				t.Fatalf("read %d events, the log holds %d (%d before the deposits)", len(got), len(all), before)
			}
			for _, bad := range []bank.Cursor{"x", "-1", "1.5", "01", "bank:", ",", "18446744073709551616"} {
				if _, _, err := l.EventsAfter(context.Background(), bad, 10); !errors.Is(err, bank.ErrBadCursor) {
					t.Errorf("cursor %q: %v, want ErrBadCursor", bad, err)
				}
			}
		})
	}
}

// Three servers write one bank in etcd while a reader follows the log on
// one of them, a page of one event at a time and a page of many: each
// reads every event of every server exactly once. Servers' events share
// timestamps and a server publishes events below timestamps already read
// from another, so a cursor that is one timestamp loses some; the
// cursor holds each server's position.
func TestAFollowerOnSeveralServersReadsEveryEvent(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	var ls []*bank.Ledger
	for i := range 3 {
		l, err := etcdstore.Open(context.Background(), c.Client(), etcdstore.Options{
			Options: bank.Options{ProcessID: fmt.Sprintf("bank-%d", i+1), PINCost: bcrypt.MinCost}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		ls = append(ls, l.Ledger)
	}
	const deposits = 120 // per server
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	reads := make([]map[eventID]bool, 2)
	for i, limit := range []int{1, 1000} {
		wg.Go(func() { reads[i] = follow(ctx, t, ls[i], limit, stop) })
	}
	depositThrough(t, ls, deposits)
	close(stop)
	wg.Wait()
	all := everyEvent(t, ls[2])
	if len(all) < 3*deposits {
		t.Fatalf("the log holds %d events, want at least %d", len(all), 3*deposits)
	}
	for i, got := range reads {
		missed := 0
		for id := range all {
			if !got[id] {
				missed++
			}
		}
		if missed > 0 || len(got) != len(all) {
			t.Errorf("reader %d (limit %d) read %d of %d events, missed %d", i, []int{1, 1000}[i], len(got), len(all), missed)
		}
	}
}
