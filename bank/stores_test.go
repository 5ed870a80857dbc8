package bank_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/bank/money"
	"atm/bank/outcome"

	"golang.org/x/crypto/bcrypt"
)

// ledger is the bank on one store, with its name.
type ledger struct {
	name string
	*bank.Ledger
}

// stores opens a new bank, with the same options, on each store: a bbolt
// file and a one-member etcd cluster.
func stores(t *testing.T, opts bank.Options) []ledger {
	t.Helper()
	opts.PINCost = bcrypt.MinCost
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c := etcdtest.Start(t, 1)
	e, err := etcdstore.Open(context.Background(), c.Client(), etcdstore.Options{Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return []ledger{{"bbolt", b.Ledger}, {"etcd", e.Ledger}}
}

// step is one operation of a script, and what it says of its outcome.
type step struct {
	what string
	run  func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error)
}

// said is what a client learns of an operation: its outcome, whether it
// was a duplicate, the balances and the holder's name it was told.
func said(r bank.Receipt, err error) string {
	return fmt.Sprintf("%s dup=%v balance=%s to=%s holder=%q kind=%s",
		outcome.Code(err), r.Duplicate, r.Event.Balance, r.Event.ToBalance, r.Holder, r.Event.Kind)
}

// The bank's rules are the same whatever keeps the bank: one script of
// operations, refusals, repeats and wrong PINs, run on a bbolt file and on
// etcd, tells every client the same outcomes, logs the same kinds of
// events with the same outcomes in the same order, leaves the same
// balances and statements, and verifies on both.
func TestTheRulesAreTheSameOnEveryStore(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ls := stores(t, bank.Options{ProcessID: "bank", MaxAmount: 50_000, LockAfter: 2, ThrottleAfter: 3,
		Now: func() time.Time { return now }})
	m := func(req string) bank.Meta { return bank.Meta{ReqID: req, Client: "atm-1", Source: "atm-1@a"} }
	other := bank.Meta{Client: "atm-2", Source: "atm-2@b"}
	dep := func(id string, req string, c money.Cents) step {
		return step{"deposit " + req, func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error) {
			return l.Deposit(ctx, m(req), id, c)
		}}
	}
	wd := func(id string, req string, c money.Cents) step {
		return step{"withdraw " + req, func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error) {
			return l.Withdraw(ctx, m(req), id, c)
		}}
	}
	tr := func(from, to, req string, c money.Cents) step {
		return step{"transfer " + req, func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error) {
			return l.Transfer(ctx, m(req), from, to, c)
		}}
	}
	login := func(src bank.Meta, id, pin string) step {
		return step{"login " + src.Source + " " + pin, func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error) {
			return l.Authenticate(ctx, src, id, pin)
		}}
	}
	script := []step{
		{"open", func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error) {
			return l.OpenAccount(ctx, m(""), "321", "  Dora Reis ", "4321")
		}},
		{"open again", func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error) {
			return l.OpenAccount(ctx, m(""), "321", "Dora", "4321")
		}},
		{"open, bad pin", func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error) {
			return l.OpenAccount(ctx, m(""), "322", "Eva", "12")
		}},
		dep("321", "d1", 10_000),
		dep("321", "d1", 10_000),        // a resend: the first outcome
		dep("321", "d1", 10_001),        // the id reused for another request
		dep("321", "d2", 50_001),        // above the limit
		dep("321", "d3", 0),             // not positive
		dep("999", "d4", 100),           // no such account
		dep("321", "", 100),             // no request id
		wd("321", "w1", 20_000),         // more than the balance
		wd("321", "w2", 2_500),          // fine
		tr("321", "321", "t1", 100),     // to itself
		tr("321", "998", "t2", 100),     // to no one
		tr("321", "123", "t3", 7_000),   // fine
		tr("321", "123", "t3", 7_000),   // resent
		tr("321", "456", "t3", 7_000),   // reused for another recipient
		tr("123", "321", "t4", 100_001), // above the limit
		{"balance", func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error) {
			return l.Balance(ctx, m(""), "321")
		}},
		{"lookup", func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error) {
			return l.Lookup(ctx, m(""), "123")
		}},
		{"lookup nobody", func(ctx context.Context, l *bank.Ledger) (bank.Receipt, error) {
			return l.Lookup(ctx, m(""), "997")
		}},
		login(m(""), "321", "0000"), // wrong PIN, one attempt left
		login(m(""), "321", "0000"), // this source locked out
		login(m(""), "321", "4321"), // still locked out, right PIN or not
		login(other, "321", "4321"), // another source logs in
		login(other, "321", "0000"),
		login(other, "321", "0000"), // locked out too
		login(bank.Meta{Client: "atm-3", Source: "atm-3@c"}, "321", "0000"),
		login(bank.Meta{Client: "atm-3", Source: "atm-3@c"}, "321", "4321"), // the account is throttled
		login(m(""), "abc", "1234"),                                         // not an account number
		login(m(""), "996", "1234"),                                         // no such account
	}
	var told [2][]string
	for i, l := range ls {
		for _, s := range script {
			told[i] = append(told[i], s.what+": "+said(s.run(t.Context(), l.Ledger)))
		}
	}
	if !slices.Equal(told[0], told[1]) {
		t.Fatalf("the stores told clients different things:\n%s:\n%s\n%s:\n%s",
			ls[0].name, strings.Join(told[0], "\n"), ls[1].name, strings.Join(told[1], "\n"))
	}
	if !strings.Contains(strings.Join(told[0], "\n"), "request_id_reused") ||
		!strings.Contains(strings.Join(told[0], "\n"), "dup=true") ||
		!strings.Contains(strings.Join(told[0], "\n"), "account_locked") {
		t.Fatalf("the script did not reach every rule:\n%s", strings.Join(told[0], "\n"))
	}

	var logged, stmts [2][]string
	for i, l := range ls {
		err := l.Events(t.Context(), func(e bank.Event) error {
			logged[i] = append(logged[i], fmt.Sprintf("%s %s %s %s→%s %s bal=%s/%s %q",
				e.Kind, e.Outcome, e.ReqID, e.Account, e.To, e.Amount, e.Balance, e.ToBalance, e.Detail))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		page, _, err := l.Statement(t.Context(), m(""), "321", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			stmts[i] = append(stmts[i], fmt.Sprintf("%s %s %s bal=%s", e.Kind, e.Account, e.Amount, e.Balance))
		}
		if _, err := l.Verify(t.Context()); err != nil {
			t.Fatalf("%s: verify: %v", l.name, err)
		}
	}
	if !slices.Equal(logged[0], logged[1]) {
		t.Fatalf("the stores logged different events:\n%s:\n%s\n%s:\n%s",
			ls[0].name, strings.Join(logged[0], "\n"), ls[1].name, strings.Join(logged[1], "\n"))
	}
	if !slices.Equal(stmts[0], stmts[1]) || len(stmts[0]) != 4 {
		t.Fatalf("statements of 321:\n%s: %v\n%s: %v", ls[0].name, stmts[0], ls[1].name, stmts[1])
	}
}

// A panic in the bank's rules, once an operation has written all it
// changes to its view (the balance, the totals, the remembered request,
// the event), fails that operation with an error matching
// outcome.ErrInternal and carrying the panic's stack, and nothing of it is
// applied, on either store: the balance does not move, its request id is
// not remembered, and the log verifies. The operations around it are
// applied as usual.
func TestAPanicInTheRulesAppliesNothing(t *testing.T) {
	t.Parallel()
	bank.SetFault(t, func(o *bank.Op) {
		if strings.HasPrefix(o.Meta.ReqID, "boom-") && o.Meta.Client == "atm-panic" {
			panic("fault injected into the rules")
		}
	})
	for _, l := range stores(t, bank.Options{}) {
		m := bank.Meta{ReqID: "boom-" + l.name, Client: "atm-panic"}
		before, err := l.Balance(t.Context(), bank.Meta{}, "123")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 8 { // batch-mates, before and after it
			wg.Go(func() {
				if _, err := l.Deposit(t.Context(), bank.Meta{ReqID: fmt.Sprint("mate-", i), Client: "atm-2"}, "456", 1); err != nil &&
					!errors.Is(err, outcome.ErrInternal) {
					t.Errorf("%s: a deposit beside the fault: %v", l.name, err)
				}
			})
		}
		_, err = l.Deposit(t.Context(), m, "123", 500)
		wg.Wait()
		p, ok := errors.AsType[*bank.PanicError](err)
		if !ok || !errors.Is(err, outcome.ErrInternal) || !strings.Contains(string(p.Stack), "TestAPanicInTheRulesAppliesNothing") {
			t.Fatalf("%s: deposit whose rules panicked: %v, want a *bank.PanicError with its stack, matching outcome.ErrInternal", l.name, err)
		}
		after, err := l.Balance(t.Context(), bank.Meta{}, "123")
		if err != nil || after.Event.Balance != before.Event.Balance {
			t.Fatalf("%s: balance after the fault: %s %v, want %s", l.name, after.Event.Balance, err, before.Event.Balance)
		}
		m.Client = "atm-1"
		r, err := l.Deposit(t.Context(), m, "123", 500)
		if err != nil || r.Duplicate || r.Event.Balance != before.Event.Balance+500 {
			t.Fatalf("%s: the deposit sent again: %+v %v, want it applied now, once", l.name, r, err)
		}
		if _, err := l.Verify(t.Context()); err != nil {
			t.Fatalf("%s: verify: %v", l.name, err)
		}
	}
}
