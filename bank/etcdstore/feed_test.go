package etcdstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/money"
	"atm/bank/outcome"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// next reads the next event of a feed, failing after a generous wait.
func next(t *testing.T, ch <-chan bank.Event) bank.Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("the feed closed")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event on the feed")
	}
	return bank.Event{}
}

// TestChangesDeliversOtherProcessesMoneyEvents commits operations through
// two ledgers: s2's feed carries exactly s1's successful money changes, in
// commit order, and none of its own, nor refusals, nor reads.
func TestChangesDeliversOtherProcessesMoneyEvents(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	s1 := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	s2 := open(t, cli, Options{Options: bank.Options{ProcessID: "s2"}})
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed := s2.Changes(fctx)

	mustOK := func(_ bank.Receipt, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustOK(s2.Deposit(ctx, meta("own"), "123", 1))            // its own: not fed
	mustOK(s1.Balance(ctx, meta(""), "123"))                  // a read: not fed
	mustOK(s1.Deposit(ctx, meta("d"), "123", 700))            // fed
	_, err := s1.Withdraw(ctx, meta("big"), "456", 9_999_999) // refused: not fed
	if !errors.Is(err, outcome.ErrInsufficientFunds) {
		t.Fatalf("withdraw 9_999_999: %v", err)
	}
	mustOK(s1.Deposit(ctx, meta("d"), "123", 700))            // a retry: not fed
	mustOK(s1.Withdraw(ctx, meta("w"), "456", 300))           // fed
	tr, err := s1.Transfer(ctx, meta("t"), "123", "789", 250) // fed
	if err != nil {
		t.Fatal(err)
	}
	mustOK(s2.Transfer(ctx, meta("own-t"), "789", "123", 5)) // its own: not fed
	last, err := s1.Deposit(ctx, meta("end"), "456", 9)      // fed, marks the end
	if err != nil {
		t.Fatal(err)
	}

	want := []struct {
		kind    bank.Kind
		account string
		amount  money.Cents
	}{{bank.KindDeposit, "123", 700}, {bank.KindWithdraw, "456", 300}, {bank.KindTransfer, "123", 250}, {bank.KindDeposit, "456", 9}}
	var prev uint64
	for i, w := range want {
		e := next(t, feed)
		if e.Kind != w.kind || e.Account != w.account || e.Amount != w.amount || e.Proc != "s1" || e.Outcome != outcome.OutcomeOK {
			t.Fatalf("event %d: %+v, want %s %s %s by s1", i, e, w.kind, w.account, w.amount)
		}
		if e.TS <= prev {
			t.Fatalf("event %d: L=%d after L=%d", i, e.TS, prev)
		}
		prev = e.TS
		if w.kind == bank.KindTransfer && (e.To != "789" || e.ToBalance != tr.Event.ToBalance || e.TS != tr.Event.TS) {
			t.Fatalf("transfer fed as %+v, committed as %+v", e, tr.Event)
		}
	}
	if prev != last.Event.TS {
		t.Fatalf("last fed L=%d, want L=%d", prev, last.Event.TS)
	}
	select {
	case e := <-feed:
		t.Fatalf("unexpected event on the feed: %+v", e)
	default:
	}
	cancel()
	for range feed { // closes once ctx ends
	}
}

// TestChangesClosesWithLedger: closing the ledger closes its feed.
func TestChangesClosesWithLedger(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	feed := l.Changes(ctx)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-feed:
		if ok {
			t.Fatal("an event on the feed of a closed ledger")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the feed stayed open after Close")
	}
}

// TestReadOnlyLedger reads the log and verifies it beside a running
// ledger, writing nothing, and refuses operations.
func TestReadOnlyLedger(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	if _, err := l.Deposit(ctx, meta("d"), "123", 42); err != nil {
		t.Fatal(err)
	}
	before, err := cli.Get(ctx, "atm/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	ro := OpenReadOnly(cli, Options{Options: bank.Options{ProcessID: "s1"}})
	defer ro.Close()
	var events []bank.Event
	if err := ro.Events(context.Background(), func(e bank.Event) error { events = append(events, e); return nil }); err != nil {
		t.Fatal(err)
	}
	all, _, err := l.EventsAfter(context.Background(), "", 100_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(all) || len(events) == 0 || events[len(events)-1].TS != all[len(all)-1].TS {
		t.Fatalf("Events read %d events, EventsAfter %d", len(events), len(all))
	}
	rep, err := ro.Verify(context.Background())
	if err != nil || rep.Events != len(all) {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if _, err := ro.Deposit(ctx, meta("ro"), "123", 1); !errors.Is(err, outcome.ErrClosed) {
		t.Fatalf("deposit on a read-only ledger: %v", err)
	}
	if _, err := ro.SendTick(ctx); err == nil {
		t.Fatal("SendTick on a read-only ledger succeeded")
	}
	after, err := cli.Get(ctx, "atm/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if after.Header.Revision != before.Header.Revision {
		t.Fatalf("the read-only ledger wrote: revision %d → %d", before.Header.Revision, after.Header.Revision)
	}
}
