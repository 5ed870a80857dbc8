package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdstore/etcdtest"
	"atm/bank/money"
	"atm/bank/outcome"
	"atm/netproto/server"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
)

var _ server.Ledger = (*Ledger)(nil)

// startEtcd starts a one-member etcd and returns it with a client of it.
func startEtcd(t testing.TB) (*etcdtest.Cluster, *clientv3.Client) {
	t.Helper()
	c := etcdtest.Start(t, 1)
	return c, c.Client()
}

func open(t testing.TB, cli *clientv3.Client, opts Options) *Ledger {
	t.Helper()
	opts.PINCost = bcrypt.MinCost
	l, err := Open(context.Background(), cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var ctx = context.Background()

func meta(req string) bank.Meta { return bank.Meta{ReqID: req, Client: "atm-test"} }

func balance(t *testing.T, l *Ledger, id string) money.Cents {
	t.Helper()
	r, err := l.Balance(ctx, meta(""), id)
	if err != nil {
		t.Fatalf("balance %s: %v", id, err)
	}
	return r.Event.Balance
}

func verify(t *testing.T, l *Ledger) bank.VerifyReport {
	t.Helper()
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

func TestDefaultAccountsAndOperations(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	for _, d := range bank.DefaultAccounts {
		if got := balance(t, l, d.ID); got != d.Opening {
			t.Fatalf("account %s: balance %s, want %s", d.ID, got, d.Opening)
		}
	}
	r, err := l.Deposit(ctx, meta("d1"), "123", 5_000)
	if err != nil || r.Event.Balance != 105_000 || r.Event.Kind != bank.KindDeposit || r.Event.Proc != "s1" {
		t.Fatalf("deposit: %+v %v", r, err)
	}
	if !(r.Event.ApplyTS == r.Event.TS && r.Event.ReplyTS == r.ReplyTS && r.ReplyTS > r.Event.TS) {
		t.Fatalf("deposit timestamps: %+v", r)
	}
	if r, err = l.Withdraw(ctx, meta("w1"), "123", 2_000); err != nil || r.Event.Balance != 103_000 {
		t.Fatalf("withdraw: %+v %v", r, err)
	}
	r, err = l.Transfer(ctx, meta("t1"), "123", "456", 3_000)
	if err != nil || r.Event.Balance != 100_000 || r.Event.ToBalance != 103_000 || r.Event.Detail != "Bruno Lima" {
		t.Fatalf("transfer: %+v %v", r, err)
	}
	if r, err := l.Lookup(ctx, meta(""), "789"); err != nil || r.Holder != "Carla Dias" {
		t.Fatalf("lookup: %+v %v", r, err)
	}
	for _, c := range []struct {
		name string
		err  error
		do   func() (bank.Receipt, error)
	}{
		{"insufficient", outcome.ErrInsufficientFunds, func() (bank.Receipt, error) { return l.Withdraw(ctx, meta("e1"), "123", 1_000_000) }},
		{"insufficient transfer", outcome.ErrInsufficientFunds, func() (bank.Receipt, error) { return l.Transfer(ctx, meta("e2"), "123", "456", 1_000_000) }},
		{"zero", outcome.ErrInvalidAmount, func() (bank.Receipt, error) { return l.Deposit(ctx, meta("e3"), "123", 0) }},
		{"negative", outcome.ErrInvalidAmount, func() (bank.Receipt, error) { return l.Withdraw(ctx, meta("e4"), "123", -5) }},
		{"limit", outcome.ErrLimitExceeded, func() (bank.Receipt, error) { return l.Deposit(ctx, meta("e5"), "123", 10_000_001) }},
		{"same", outcome.ErrSameAccount, func() (bank.Receipt, error) { return l.Transfer(ctx, meta("e6"), "123", "123", 10) }},
		{"no from", outcome.ErrAccountNotFound, func() (bank.Receipt, error) { return l.Deposit(ctx, meta("e7"), "999", 10) }},
		{"no to", outcome.ErrAccountNotFound, func() (bank.Receipt, error) { return l.Transfer(ctx, meta("e8"), "123", "999", 10) }},
		{"no request id", outcome.ErrInvalidRequestID, func() (bank.Receipt, error) { return l.Deposit(ctx, meta(""), "123", 10) }},
		{"balance of none", outcome.ErrAccountNotFound, func() (bank.Receipt, error) { return l.Balance(ctx, meta(""), "999") }},
	} {
		r, err := c.do()
		if !errors.Is(err, c.err) {
			t.Fatalf("%s: got %v, want %v", c.name, err, c.err)
		}
		if r.Event.Outcome != outcome.Code(c.err) || r.Event.TS == 0 {
			t.Fatalf("%s: event %+v not logged with its outcome", c.name, r.Event)
		}
	}
	if got := balance(t, l, "123"); got != 100_000 {
		t.Fatalf("refusals changed the balance: %s", got)
	}
	a, err := l.Audit(context.Background())
	if err != nil || !a.Conserved() || a.Total != 303_000 || a.Deposits != 305_000 || a.Withdrawals != 2_000 {
		t.Fatalf("audit: %+v %v", a, err)
	}
	rep := verify(t, l)
	if rep.Accounts != 3 || rep.Total != 303_000 {
		t.Fatalf("verify: %+v", rep)
	}
}

func TestOpenAccount(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1", NoDefaults: true}})
	r, err := l.OpenAccount(ctx, meta("o1"), "42", "  Dora Reis ", "4321")
	if err != nil || r.Holder != "Dora Reis" || r.Event.Kind != bank.KindOpen {
		t.Fatalf("open: %+v %v", r, err)
	}
	for _, c := range []struct {
		id, name, pin string
		err           error
	}{
		{"42", "Other", "1234", outcome.ErrAccountExists},
		{"4a", "X", "1234", outcome.ErrInvalidAccountID},
		{"43", "", "1234", outcome.ErrInvalidName},
		{"43", "A\nB", "1234", outcome.ErrInvalidName},
		{"43", "Ok", "12", outcome.ErrInvalidPIN},
	} {
		if _, err := l.OpenAccount(ctx, meta("o2"), c.id, c.name, c.pin); !errors.Is(err, c.err) {
			t.Fatalf("open %q %q: got %v, want %v", c.id, c.name, err, c.err)
		}
	}
	if _, err := l.Authenticate(ctx, meta(""), "42", "4321"); err != nil {
		t.Fatalf("login to the new account: %v", err)
	}
	if rep := verify(t, l); rep.Accounts != 1 || rep.Total != 0 {
		t.Fatalf("verify: %+v", rep)
	}
}

func TestIdempotentRequests(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l1 := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	l2 := open(t, cli, Options{Options: bank.Options{ProcessID: "s2", NoDefaults: true}})
	first, err := l1.Transfer(ctx, meta("t-1"), "123", "456", 500)
	if err != nil {
		t.Fatal(err)
	}
	// The same request again, on the other server: the first outcome.
	again, err := l2.Transfer(ctx, meta("t-1"), "123", "456", 500)
	if err != nil || !again.Duplicate || again.Event.TS != first.Event.TS || again.ReplyTS <= first.ReplyTS {
		t.Fatalf("repeat: %+v %v (first %+v)", again, err, first)
	}
	if got := balance(t, l1, "123"); got != 99_500 {
		t.Fatalf("applied twice: %s", got)
	}
	// A refused first outcome comes back refused.
	if _, err := l1.Withdraw(ctx, meta("w-big"), "789", 5_000_000); !errors.Is(err, outcome.ErrInsufficientFunds) {
		t.Fatal(err)
	}
	if r, err := l2.Withdraw(ctx, meta("w-big"), "789", 5_000_000); !errors.Is(err, outcome.ErrInsufficientFunds) || !r.Duplicate {
		t.Fatalf("repeat of a refusal: %+v %v", r, err)
	}
	// The id reused for another request is refused, nothing applied.
	r, err := l2.Transfer(ctx, meta("t-1"), "123", "456", 700)
	if !errors.Is(err, outcome.ErrRequestIDReused) || r.Event.Kind != bank.KindRetry {
		t.Fatalf("reuse: %+v %v", r, err)
	}
	if got := balance(t, l2, "123"); got != 99_500 {
		t.Fatalf("reuse applied: %s", got)
	}
	verify(t, l1)
}

func TestRememberedRequestsAreBounded(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	const n = 20
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1", RememberRequests: n}})
	const sent = 70
	for i := range sent {
		if _, err := l.Deposit(ctx, meta(fmt.Sprintf("r%d", i)), "123", 1); err != nil {
			t.Fatal(err)
		}
	}
	// Newest first, every id is a duplicate down to the oldest one kept:
	// at least the last n, and fewer than n + 32.
	kept := 0
	for i := sent - 1; i >= 0; i-- {
		r, err := l.Deposit(ctx, meta(fmt.Sprintf("r%d", i)), "123", 1)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Duplicate {
			break
		}
		kept++
	}
	if kept < n || kept >= n+32 {
		t.Fatalf("%d request ids remembered, want %d to %d", kept, n, n+31)
	}
	if kept == sent {
		t.Fatal("nothing was forgotten")
	}
	// Only the chunks of the window are kept.
	resp, err := cli.Get(ctx, "atm/reqids/123/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count > 2 {
		t.Fatalf("%d chunks of request ids kept (%v), want at most 2", resp.Count, err)
	}
	// The chunks and first events were read with the batches, not on
	// their own.
	if s := l.Stats(); s.LateReads != 0 {
		t.Fatalf("%d keys read one by one while batches were computed (stats %+v)", s.LateReads, s)
	}
	// A second server, whose cache holds nothing, sees the same window.
	l2 := open(t, cli, Options{Options: bank.Options{ProcessID: "s2", RememberRequests: n}})
	if r, err := l2.Deposit(ctx, meta(fmt.Sprintf("r%d", sent-n)), "123", 1); err != nil || !r.Duplicate {
		t.Fatalf("r%d through another server: %+v %v", sent-n, r, err)
	}
	verify(t, l)
}

func TestLockoutBySourceAndThrottle(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1", Now: clock, ThrottleAfter: 5}})
	src := func(s string) bank.Meta { return bank.Meta{Client: s, Source: s} }
	for i := range 2 {
		_, err := l.Authenticate(ctx, src("guesser"), "123", "0000")
		var w *outcome.WrongPINError
		if !errors.As(err, &w) || w.AttemptsLeft != 2-i {
			t.Fatalf("wrong PIN %d: %v", i, err)
		}
	}
	_, err := l.Authenticate(ctx, src("guesser"), "123", "0000")
	var locked *outcome.LockedError
	if !errors.As(err, &locked) || !errors.Is(err, outcome.ErrAccountLocked) {
		t.Fatalf("third wrong PIN: %v", err)
	}
	if _, err := l.Authenticate(ctx, src("guesser"), "123", "1234"); !errors.As(err, &locked) {
		t.Fatalf("locked source with the right PIN: %v", err)
	}
	r, err := l.Authenticate(ctx, src("holder"), "123", "1234")
	if err != nil || r.Holder != "Ana Souza" {
		t.Fatalf("the holder is locked out too: %+v %v", r, err)
	}
	// Account-wide: 5 wrong PINs in a row from several sources throttle it.
	for i := range 5 {
		l.Authenticate(ctx, src(fmt.Sprintf("g%d", i)), "123", "0000")
	}
	if _, err := l.Authenticate(ctx, src("holder"), "123", "1234"); !errors.As(err, &locked) || locked.Every != time.Minute {
		t.Fatalf("throttled account: %v", err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := l.Authenticate(ctx, src("holder"), "123", "1234"); err != nil {
		t.Fatalf("after the throttle: %v", err)
	}
	if _, err := l.Authenticate(ctx, src("x"), "12a", "1234"); !errors.Is(err, outcome.ErrInvalidAccountID) {
		t.Fatal(err)
	}
	if _, err := l.Authenticate(ctx, src("x"), "999", "1234"); !errors.Is(err, outcome.ErrAccountNotFound) {
		t.Fatal(err)
	}
	verify(t, l)
}

func TestStatementNewestFirstPaginated(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	for i := range 5 {
		if _, err := l.Deposit(ctx, meta(fmt.Sprintf("d%d", i)), "123", money.Cents(100*(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Withdraw(ctx, meta("refused"), "123", 10_000_000); err == nil {
		t.Fatal("expected a refusal")
	}
	if _, err := l.Transfer(ctx, meta("in"), "456", "123", 50); err != nil {
		t.Fatal(err)
	}
	var all []bank.Event
	var before uint64
	for {
		page, r, err := l.Statement(ctx, meta(""), "123", before, 3)
		if err != nil || r.Event.Kind != bank.KindStatement {
			t.Fatal(err)
		}
		all = append(all, page.Entries...)
		if page.Next == 0 {
			break
		}
		before = page.Next
	}
	// open, opening deposit, 5 deposits, the transfer in: newest first.
	if len(all) != 8 {
		t.Fatalf("%d entries: %+v", len(all), all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].TS >= all[i-1].TS {
			t.Fatalf("not newest first at %d", i)
		}
	}
	if all[0].Kind != bank.KindTransfer || all[0].ReqID != "" || all[0].Balance != 0 || all[len(all)-1].Kind != bank.KindOpen {
		t.Fatalf("entries: first %+v last %+v", all[0], all[len(all)-1])
	}
	if _, _, err := l.Statement(ctx, meta(""), "999", 0, 0); !errors.Is(err, outcome.ErrAccountNotFound) {
		t.Fatal(err)
	}
}

func TestRecordAndEventsAfter(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	var mu sync.Mutex
	var seen []bank.Event
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1", NoDefaults: true, OnEvent: func(e bank.Event) {
		mu.Lock()
		seen = append(seen, e)
		mu.Unlock()
	}}})
	if _, err := l.Record(ctx, bank.Event{Kind: bank.KindDeposit}); err == nil {
		t.Fatal("Record accepted an operation's kind")
	}
	es := make([]bank.Event, 150)
	for i := range es {
		es[i] = bank.Event{Kind: bank.KindConnect, Client: fmt.Sprint(i)}
	}
	out, err := l.RecordAll(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(out); i++ {
		if out[i].TS <= out[i-1].TS || out[i].Client != fmt.Sprint(i) {
			t.Fatalf("record %d: %+v after %+v", i, out[i], out[i-1])
		}
	}
	got, _, err := l.EventsAfter(context.Background(), bank.TSCursor(out[99].TS), 1000)
	if err != nil || len(got) != 50 || got[0].TS != out[100].TS {
		t.Fatalf("events after: %d %v", len(got), err)
	}
	mu.Lock()
	if len(seen) != 150 {
		t.Fatalf("OnEvent saw %d events", len(seen))
	}
	mu.Unlock()
	verify(t, l)
}

// TestTwoServersConcurrentTransfers runs two ledgers with their own process
// ids and clocks on one etcd, transferring between shared accounts at once.
func TestTwoServersConcurrentTransfers(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	ls := []*Ledger{open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}}), open(t, cli, Options{Options: bank.Options{ProcessID: "s2"}})}
	// The second server's clock starts far behind the first.
	for range 50 {
		ls[0].Clock().Tick()
	}
	ids := []string{"123", "456", "789"}
	var wg sync.WaitGroup
	var failures sync.Map
	for w := range 6 {
		wg.Go(func() {
			l := ls[w%2]
			for i := range 25 {
				from, to := ids[rand.IntN(3)], ids[rand.IntN(3)]
				_, err := l.Transfer(ctx, meta(fmt.Sprintf("w%d-%d", w, i)), from, to, money.Cents(rand.IntN(60_000)+1))
				if err != nil && !errors.Is(err, outcome.ErrInsufficientFunds) && !errors.Is(err, outcome.ErrSameAccount) {
					failures.Store(fmt.Sprintf("w%d-%d", w, i), err)
				}
				if i%5 == 0 {
					l.Deposit(ctx, meta(fmt.Sprintf("d%d-%d", w, i)), from, 100)
				}
			}
		})
	}
	wg.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("%s: %v", k, v)
		return true
	})
	a, err := ls[1].Audit(context.Background())
	if err != nil || !a.Conserved() {
		t.Fatalf("audit: %+v %v", a, err)
	}
	rep := verify(t, ls[0]) // includes the per-account Lamport order
	if rep.Total != a.Total {
		t.Fatalf("verify total %s, audit %s", rep.Total, a.Total)
	}
	procs := map[string]int{}
	events, _, err := ls[0].EventsAfter(context.Background(), "", 100_000)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]uint64{}
	for _, e := range events {
		if e.Kind == bank.KindTransfer {
			procs[e.Proc]++
		}
		if e.Kind.IsMoney() || e.Kind == bank.KindBalance {
			for _, id := range []string{e.Account, e.To} {
				if id == "" || (id == e.To && e.To == e.Account) {
					continue
				}
				if e.TS <= last[id] {
					t.Fatalf("account %s: event L=%d/%s after L=%d", id, e.TS, e.Proc, last[id])
				}
				last[id] = e.TS
			}
		}
	}
	if procs["s1"] == 0 || procs["s2"] == 0 {
		t.Fatalf("transfers by process: %v", procs)
	}
}

// TestClockResumesAboveLeaseAfterCrash drops a ledger without Close and
// opens its process id again: the clock resumes above every timestamp the
// first one let out.
func TestClockResumesAboveLeaseAfterCrash(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l1, err := Open(ctx, cli, Options{Options: bank.Options{ProcessID: "s1", PINCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := l1.Deposit(ctx, meta("x"), "123", 1)
	if err != nil {
		t.Fatal(err)
	}
	l1.Clock().Receive(3 * bank.LeaseAhead) // a jump beyond the lease
	sent, err := l1.SendTick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l1.halt() // a crash: the exact clock is not stored
	l2 := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	if now := l2.Clock().Now(); now < sent || now < r.ReplyTS {
		t.Fatalf("clock resumed at %d, below %d", now, sent)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	stopped := l2.Clock().Now()
	l3 := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	if l3.Clock().Now() != stopped {
		t.Fatalf("after a clean Close the clock resumed at %d, not %d", l3.Clock().Now(), stopped)
	}
	if _, err := l2.Deposit(ctx, meta("y"), "123", 1); !errors.Is(err, outcome.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	verify(t, l3)
}

// TestUnavailableEtcd stops etcd: an operation fails as unavailable within
// the commit timeout and acknowledges nothing.
func TestUnavailableEtcd(t *testing.T) {
	t.Parallel()
	c, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}, CommitTimeout: 500 * time.Millisecond})
	c.Stop(0)
	start := time.Now()
	_, err := l.Deposit(ctx, meta("u"), "123", 1)
	if !errors.Is(err, outcome.ErrClosed) || outcome.Code(err) != "unavailable" {
		t.Fatalf("deposit without etcd: %v (code %s, closed %v)", err, outcome.Code(err), errors.Is(err, outcome.ErrClosed))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
	t.Log(err)
	// Close cannot store the clock, and says so, and why nothing is lost.
	if err := l.Close(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "above its lease") {
		t.Fatalf("close without etcd: %v", err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	if _, err := l.Deposit(ctx, meta("d"), "123", 10); err != nil {
		t.Fatal(err)
	}
	verify(t, l)
	resp, err := cli.Get(ctx, "atm/accounts/123")
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(resp.Kvs[0].Value), `"balance":100010`, `"balance":900010`, 1)
	if _, err := cli.Put(ctx, "atm/accounts/123", tampered); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Verify(context.Background()); err == nil || !strings.Contains(err.Error(), "account 123") {
		t.Fatalf("verify of a tampered balance: %v", err)
	}
}

// TestOlderLayoutIsRefused: a bank kept in etcd by an older atm (one key
// per event under events/) or in an unknown layout is refused with
// ErrLayout by Open, Verify and Events, and left as it was.
func TestOlderLayoutIsRefused(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	if _, err := cli.Put(ctx, "old/events/00000000000000000001/bank", `{"ts":1}`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, cli, Options{Options: bank.Options{ProcessID: "s1", PINCost: bcrypt.MinCost}, Prefix: "old/"})
	if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "old/events/") {
		t.Fatalf("open of an older layout: %v", err)
	}
	ro := OpenReadOnly(cli, Options{Prefix: "old/"})
	if _, err := ro.Verify(context.Background()); !errors.Is(err, ErrLayout) {
		t.Fatalf("verify of an older layout: %v", err)
	}
	if err := ro.Events(context.Background(), func(bank.Event) error { return nil }); !errors.Is(err, ErrLayout) {
		t.Fatalf("events of an older layout: %v", err)
	}
	resp, err := cli.Get(ctx, "old/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the older bank was changed: %v %v", resp.Kvs, err)
	}
	if _, err := cli.Put(ctx, "new/format", "4"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, cli, Options{Options: bank.Options{ProcessID: "s1", PINCost: bcrypt.MinCost}, Prefix: "new/"}); !errors.Is(err, ErrLayout) {
		t.Fatalf("open of layout 4: %v", err)
	}
	// A new bank is marked with its layout.
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	if resp, err := cli.Get(ctx, "atm/format"); err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != layout {
		t.Fatalf("format of a new bank: %v %v", resp, err)
	}
	verify(t, l)
	if _, err := Open(ctx, cli, Options{Options: bank.Options{ProcessID: "a/b"}}); err == nil {
		t.Fatal("a process id with a slash was accepted")
	}
}

// TestStatementAcrossChunksAndServers: an account's statement, paged, is
// exactly its open and successful money events in the log, newest first,
// once it has more entries than its record holds, written by two servers.
func TestStatementAcrossChunksAndServers(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	ls := []*Ledger{open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}}), open(t, cli, Options{Options: bank.Options{ProcessID: "s2"}})}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			l := ls[w%2]
			for i := range 15 {
				req := fmt.Sprintf("w%d-%d", w, i)
				switch i % 3 {
				case 0:
					l.Deposit(ctx, meta(req), "123", 100)
				case 1:
					l.Transfer(ctx, meta(req), "456", "123", 7)
				default:
					l.Withdraw(ctx, meta(req), "123", 30)
				}
			}
		})
	}
	wg.Wait()
	var want []bank.Event // newest first
	if err := ls[0].Events(context.Background(), func(e bank.Event) error {
		if e.Outcome == outcome.OutcomeOK && (e.Account == "123" && (e.Kind == bank.KindOpen || e.Kind.IsMoney()) ||
			e.Kind == bank.KindTransfer && e.To == "123") {
			want = append([]bank.Event{e}, want...)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(want) < 50 {
		t.Fatalf("only %d entries in the log", len(want))
	}
	for _, l := range ls {
		var got []bank.Event
		var before uint64
		for {
			page, _, err := l.Statement(ctx, meta(""), "123", before, 7)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page.Entries...)
			if page.Next == 0 {
				break
			}
			before = page.Next
		}
		if len(got) != len(want) {
			t.Fatalf("statement through %s: %d entries, the log has %d", l.ProcessID(), len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.TS != w.TS || g.Proc != w.Proc || g.Kind != w.Kind || g.Amount != w.Amount {
				t.Fatalf("entry %d through %s: %+v, the log has %+v", i, l.ProcessID(), g, w)
			}
			if g.Account == "123" && (g.Balance != w.Balance || g.ReqID != w.ReqID) {
				t.Fatalf("entry %d: %+v, the log has %+v", i, g, w)
			}
		}
	}
	verify(t, ls[1])
}

// TestEventsAfterMergesServers: EventsAfter from every point of a log
// written by two servers at once is the log's (ts, proc) order from there.
func TestEventsAfterMergesServers(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	ls := []*Ledger{open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}}), open(t, cli, Options{Options: bank.Options{ProcessID: "s2"}})}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 10 {
				ls[w%2].Deposit(ctx, meta(fmt.Sprintf("w%d-%d", w, i)), "789", 1)
			}
		})
	}
	wg.Wait()
	all, _, err := ls[0].EventsAfter(context.Background(), "", 100_000)
	if err != nil {
		t.Fatal(err)
	}
	var viaEvents []bank.Event
	if err := ls[1].Events(context.Background(), func(e bank.Event) error { viaEvents = append(viaEvents, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all, viaEvents) || len(all) < 60 {
		t.Fatalf("EventsAfter(0) has %d events, Events %d", len(all), len(viaEvents))
	}
	procs := map[string]bool{}
	for i, e := range all {
		procs[e.Proc] = true
		if i > 0 && (e.TS < all[i-1].TS || e.TS == all[i-1].TS && e.Proc <= all[i-1].Proc) {
			t.Fatalf("event %d (%d, %s) after (%d, %s)", i, e.TS, e.Proc, all[i-1].TS, all[i-1].Proc)
		}
	}
	if len(procs) != 2 {
		t.Fatalf("events of %v", procs)
	}
	for i := 0; i < len(all); i += 7 {
		after := all[i].TS
		from := i
		for from < len(all) && all[from].TS <= after {
			from++
		}
		got, _, err := ls[i%2].EventsAfter(context.Background(), bank.TSCursor(after), 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := all[from:min(from+10, len(all))]; !reflect.DeepEqual(got, want) {
			t.Fatalf("EventsAfter(%d, 10): %d events, want %d", after, len(got), len(want))
		}
	}
}

// TestVerifyDetectsDamagedSegments: a segment holding another server's
// event, or events out of order, fails Verify with its key, even with
// its hash made again to match.
func TestVerifyDetectsDamagedSegments(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	resp, err := cli.Get(ctx, "atm/log/s1/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatal(err)
	}
	kv := resp.Kvs[len(resp.Kvs)-1]
	framed, err := decodeSegment(kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	var seg []bank.Event
	if err := json.Unmarshal(framed.events, &seg); err != nil {
		t.Fatal(err)
	}
	for name, damage := range map[string]func([]bank.Event){
		"other server": func(s []bank.Event) { s[0].Proc = "s2" },
		"first ts":     func(s []bank.Event) { s[0].TS++ },
	} {
		c := slices.Clone(seg)
		damage(c)
		events, _ := json.Marshal(c)
		raw, _ := encodeSegment(framed.prev, events)
		if _, err := cli.Put(ctx, string(kv.Key), string(raw)); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Verify(context.Background()); err == nil || !strings.Contains(err.Error(), string(kv.Key)) {
			t.Errorf("%s: verify: %v", name, err)
		}
	}
}

// TestStaleCacheNeverDecides: a server whose cache holds an account as it
// was before another server changed it still applies each request once,
// on the account as it is: its commit conflicts and it reads afresh.
func TestStaleCacheNeverDecides(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l1 := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	l2 := open(t, cli, Options{Options: bank.Options{ProcessID: "s2"}})
	start := balance(t, l1, "123") // now in s1's cache
	for i := range 3 {
		if _, err := l2.Deposit(ctx, meta(fmt.Sprintf("by-s2-%d", i)), "123", 100); err != nil {
			t.Fatal(err)
		}
	}
	before := l1.Stats().Conflicts
	r, err := l1.Deposit(ctx, meta("by-s1"), "123", 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Event.Balance != start+301 {
		t.Fatalf("s1 deposited on %s, want %s", r.Event.Balance-1, start+300)
	}
	if l1.Stats().Conflicts == before {
		t.Fatal("s1 did not start from its cache (no conflict): the test proves nothing")
	}
	// A request s2 applied is a repeat through s1, whose cache is stale.
	again, err := l1.Deposit(ctx, meta("by-s2-0"), "123", 100)
	if err != nil || !again.Duplicate {
		t.Fatalf("by-s2-0 through s1: %+v %v", again, err)
	}
	if got := balance(t, l2, "123"); got != start+301 {
		t.Fatalf("balance %s, want %s", got, start+301)
	}
	verify(t, l2)
}

// TestServersShareTheBanksWindow: the window of remembered requests is the
// bank's, set by the server that created it. A server opened with another
// RememberRequests works with the bank's: the two servers, taking turns on
// one account, never fail, and a request within the bank's window is a
// duplicate through either.
func TestServersShareTheBanksWindow(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	const n = 20
	a := open(t, cli, Options{Options: bank.Options{ProcessID: "s1", RememberRequests: n}})
	b := open(t, cli, Options{Options: bank.Options{ProcessID: "s2", RememberRequests: 3}})
	if got := b.RememberRequests(); got != n {
		t.Fatalf("second server remembers %d requests per account, want the bank's %d", got, n)
	}
	const sent = 90
	for i := range sent {
		l := []*Ledger{a, b}[i%2]
		if _, err := l.Deposit(ctx, meta(fmt.Sprintf("r%d", i)), "123", 1); err != nil {
			t.Fatalf("deposit %d through %s: %v", i, l.ProcessID(), err)
		}
	}
	for _, l := range []*Ledger{b, a} {
		for i := sent - n; i < sent; i++ {
			r, err := l.Deposit(ctx, meta(fmt.Sprintf("r%d", i)), "123", 1)
			if err != nil || !r.Duplicate {
				t.Fatalf("r%d again through %s: %+v %v", i, l.ProcessID(), r, err)
			}
		}
	}
	if got := balance(t, a, "123"); got != 100_000+sent {
		t.Fatalf("balance %s, want each deposit once", got)
	}
	verify(t, a)
}

// A transaction whose outcome the server did not learn (etcd went away
// while it was in flight) is settled before the next one commits: its
// segment key gets a void segment if it is still new, so it can never
// commit later, below segments committed after it. Readers skip the void
// segment, and the bank verifies.
func TestAnUnknownOutcomeIsSettledBeforeTheNextCommit(t *testing.T) {
	t.Parallel()
	c, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}, CommitTimeout: 500 * time.Millisecond})
	if _, err := l.Deposit(ctx, meta("warm"), "123", 1); err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	if _, err := l.Deposit(ctx, meta("lost"), "123", 1); !errors.Is(err, bank.ErrOutcomeUnknown) {
		t.Fatalf("deposit while etcd is down: %v, want an unknown outcome", err)
	}
	c.Restart(0)
	cli = c.Client()
	if _, err := l.Deposit(ctx, meta("after"), "123", 1); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "atm/log/s1/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	voids := 0
	for _, kv := range resp.Kvs {
		if string(kv.Value) == voidSegment {
			voids++
		}
	}
	if voids != 1 {
		t.Fatalf("%d void segments, want the lost deposit's", voids)
	}
	var kinds []string
	if err := l.Events(ctx, func(e bank.Event) error {
		if e.Kind == bank.KindDeposit && e.Client == "atm-test" {
			kinds = append(kinds, e.ReqID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(kinds, " ") != "warm after" {
		t.Fatalf("requests in the log: %v", kinds)
	}
	verify(t, l)
}
