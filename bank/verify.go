package bank

import (
	"fmt"
	"sort"

	"atm/bank/money"
	"atm/bank/outcome"
)

// VerifyReport summarises a successful Verify.
type VerifyReport struct {
	Events      int
	Accounts    int
	Total       money.Cents
	Deposits    money.Cents
	Withdrawals money.Cents
	LastTS      uint64
}

// Replay replays a log, event by event in (ts, proc) order, and checks:
//   - the events are in strictly rising (ts, proc) order; every
//     operation's apply timestamp is its timestamp, with receive < apply <
//     reply;
//   - each account's events (operations, retries, locks) have strictly
//     rising timestamps, whichever server applied them (Lamport order);
//   - every successful money event leaves the balance the event recorded
//     and never a negative one;
//
// and then, with Compare, that the replayed balances equal the stored ones
// and the stored totals the replayed ones, with money conserved.
type Replay struct {
	Report VerifyReport

	bal      map[string]money.Cents
	lastOf   map[string]uint64
	lastTS   uint64
	lastProc string
}

// NewReplay starts a replay from the empty bank.
func NewReplay() *Replay {
	return &Replay{bal: map[string]money.Cents{}, lastOf: map[string]uint64{}}
}

// touches returns the accounts whose record the event's operation read and
// moved: an operation's account, a transfer's recipient, a retry's or a
// lock's account.
func touches(e Event) []string {
	if !(e.Kind.IsOperation() || e.Kind == KindRetry || e.Kind == KindLock) || e.Account == "" {
		return nil
	}
	if e.Kind == KindTransfer && e.To != "" && e.To != e.Account {
		return []string{e.Account, e.To}
	}
	return []string{e.Account}
}

// Event replays the next event of the log.
func (r *Replay) Event(e Event) error {
	where := fmt.Sprintf("event L=%d/%s %s", e.TS, e.Proc, e.Kind)
	if r.Report.Events > 0 && (e.TS < r.lastTS || (e.TS == r.lastTS && e.Proc <= r.lastProc)) {
		return fmt.Errorf("%s: not above the previous event (L=%d/%s) in (timestamp, process) order", where, r.lastTS, r.lastProc)
	}
	r.Report.Events++
	r.lastTS, r.lastProc = e.TS, e.Proc
	r.Report.LastTS = max(r.Report.LastTS, e.TS)
	if err := r.stamps(where, e); err != nil {
		return err
	}
	if e.Outcome != outcome.OutcomeOK {
		return nil
	}
	return r.money(where, e)
}

// stamps checks an event's own timestamps and its place in the order of
// each account it is on.
func (r *Replay) stamps(where string, e Event) error {
	if e.ApplyTS != 0 && e.ApplyTS != e.TS {
		return fmt.Errorf("%s: apply timestamp %d differs from its timestamp", where, e.ApplyTS)
	}
	if e.RecvTS != 0 && e.RecvTS >= e.TS {
		return fmt.Errorf("%s: receive timestamp %d is not before apply", where, e.RecvTS)
	}
	if e.ReplyTS != 0 && e.ReplyTS <= e.TS {
		return fmt.Errorf("%s: reply timestamp %d is not after apply", where, e.ReplyTS)
	}
	for _, id := range touches(e) {
		if _, opened := r.bal[id]; !opened {
			continue
		}
		if e.TS <= r.lastOf[id] {
			return fmt.Errorf("%s: account %s had an event at L=%d already (not in Lamport order)", where, id, r.lastOf[id])
		}
		r.lastOf[id] = e.TS
	}
	return nil
}

// money replays a successful event's change to the balances.
func (r *Replay) money(where string, e Event) error {
	bal := r.bal
	check := func(id string, want money.Cents) error {
		got, ok := bal[id]
		if !ok {
			return fmt.Errorf("%s: account %s was never opened", where, id)
		}
		if got < 0 {
			return fmt.Errorf("%s: account %s goes negative (%s)", where, id, got)
		}
		if got != want {
			return fmt.Errorf("%s: account %s replays to %s but the event recorded %s", where, id, got, want)
		}
		return nil
	}
	switch e.Kind {
	case KindOpen:
		if _, ok := bal[e.Account]; ok {
			return fmt.Errorf("%s: account %s opened twice", where, e.Account)
		}
		bal[e.Account] = 0
		r.lastOf[e.Account] = e.TS
	case KindDeposit:
		if _, ok := bal[e.Account]; ok {
			bal[e.Account] += e.Amount
			r.Report.Deposits += e.Amount
		}
		return check(e.Account, e.Balance)
	case KindWithdraw:
		if _, ok := bal[e.Account]; ok {
			bal[e.Account] -= e.Amount
			r.Report.Withdrawals += e.Amount
		}
		return check(e.Account, e.Balance)
	case KindTransfer:
		_, okFrom := bal[e.Account]
		_, okTo := bal[e.To]
		if okFrom && okTo {
			bal[e.Account] -= e.Amount
			bal[e.To] += e.Amount
		}
		if err := check(e.Account, e.Balance); err != nil {
			return err
		}
		return check(e.To, e.ToBalance)
	}
	return nil
}

// Compare checks the stored accounts and totals against the replay: every
// stored balance equal to the replayed one, no account on one side only,
// none negative, the stored deposit and withdrawal totals equal to the
// replay's, and money conserved. It sets Report.Total and Report.Accounts;
// the first mismatch, in account order, is the error.
func (r *Replay) Compare(accts []Account, tot Totals) error {
	stored := make(map[string]money.Cents, len(accts))
	for _, a := range accts {
		stored[a.ID] = a.Balance
	}
	ids := make([]string, 0, len(stored)+len(r.bal))
	for id := range stored {
		ids = append(ids, id)
	}
	for id := range r.bal {
		if _, ok := stored[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	rep := &r.Report
	rep.Total = 0
	for _, id := range ids {
		s, okS := stored[id]
		b, okR := r.bal[id]
		switch {
		case !okR:
			return fmt.Errorf("account %s: stored with %s but never opened in the log", id, s)
		case !okS:
			return fmt.Errorf("account %s: opened in the log but missing from the accounts", id)
		case s != b:
			return fmt.Errorf("account %s: stored balance %s but the log replays to %s", id, s, b)
		}
		if s < 0 {
			return fmt.Errorf("account %s: negative balance %s", id, s)
		}
		rep.Total += s
	}
	rep.Accounts = len(stored)
	if tot.Deposits != rep.Deposits {
		return fmt.Errorf("deposits total: stored %s but the log sums to %s", tot.Deposits, rep.Deposits)
	}
	if tot.Withdrawals != rep.Withdrawals {
		return fmt.Errorf("withdrawals total: stored %s but the log sums to %s", tot.Withdrawals, rep.Withdrawals)
	}
	if rep.Total != rep.Deposits-rep.Withdrawals {
		return fmt.Errorf("conservation: balances sum to %s but deposits − withdrawals = %s", rep.Total, rep.Deposits-rep.Withdrawals)
	}
	return nil
}
