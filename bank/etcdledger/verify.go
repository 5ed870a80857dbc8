package etcdledger

import (
	"context"
	"fmt"

	"atm/bank"
	"atm/bank/money"
	"atm/bank/outcome"
)

// touches returns the accounts whose record the event's transaction read
// and moved (those that existed): an operation's account, a transfer's
// recipient, a retry's or a lock's account.
func touches(e bank.Event) []string {
	if !(e.Kind.IsOperation() || e.Kind == bank.KindRetry || e.Kind == bank.KindLock) || e.Account == "" {
		return nil
	}
	if e.Kind == bank.KindTransfer && e.To != "" && e.To != e.Account {
		return []string{e.Account, e.To}
	}
	return []string{e.Account}
}

// Verify replays the event log from the start, in (ts, proc) order, at one
// etcd revision, and checks:
//   - each segment of the log holds events of the server its key names,
//     the first at the key's timestamp, and each server's events have
//     strictly rising timestamps; every operation's apply timestamp is its
//     timestamp, with receive < apply < reply;
//   - each account's events (operations, retries, locks) have strictly
//     rising timestamps, whichever server applied them (Lamport order);
//   - every successful money event leaves the balance the event recorded
//     and never a negative one;
//   - the replayed balances equal the stored ones, account by account;
//   - the stored totals equal the replayed ones, and the sum of the
//     balances equals deposits minus withdrawals.
//
// The error names the first mismatch.
func (l *Ledger) Verify() (bank.VerifyReport, error) {
	var rep bank.VerifyReport
	ctx, cancel := context.WithTimeout(context.Background(), 10*l.opts.CommitTimeout)
	defer cancel()
	accts, tot, rev, err := l.snapshot(ctx)
	if err != nil {
		return rep, err
	}
	if err := l.checkLayout(ctx, false); err != nil {
		return rep, err
	}
	bal := map[string]money.Cents{}
	lastOf := map[string]uint64{}
	r, err := l.newLogReaderAt(ctx, rev, 0)
	if err != nil {
		return rep, err
	}
	for {
		e, ok, err := r.next()
		if err != nil {
			return rep, err
		}
		if !ok {
			break
		}
		if err := replay(e, bal, lastOf, &rep); err != nil {
			return rep, err
		}
	}
	return rep, compareStored(accts, tot, bal, &rep)
}

// replay applies one event of the log to the replayed balances.
func replay(e bank.Event, bal map[string]money.Cents, lastOf map[string]uint64, rep *bank.VerifyReport) error {
	rep.Events++
	rep.LastTS = max(rep.LastTS, e.TS)
	where := fmt.Sprintf("event L=%d/%s %s", e.TS, e.Proc, e.Kind)
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
		if _, opened := bal[id]; !opened {
			continue
		}
		if e.TS <= lastOf[id] {
			return fmt.Errorf("%s: account %s had an event at L=%d already (not in Lamport order)", where, id, lastOf[id])
		}
		lastOf[id] = e.TS
	}
	if e.Outcome != outcome.OutcomeOK {
		return nil
	}
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
	case bank.KindOpen:
		if _, ok := bal[e.Account]; ok {
			return fmt.Errorf("%s: account %s opened twice", where, e.Account)
		}
		bal[e.Account] = 0
		lastOf[e.Account] = e.TS
	case bank.KindDeposit:
		if _, ok := bal[e.Account]; ok {
			bal[e.Account] += e.Amount
			rep.Deposits += e.Amount
		}
		return check(e.Account, e.Balance)
	case bank.KindWithdraw:
		if _, ok := bal[e.Account]; ok {
			bal[e.Account] -= e.Amount
			rep.Withdrawals += e.Amount
		}
		return check(e.Account, e.Balance)
	case bank.KindTransfer:
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

// compareStored checks the stored accounts and totals against the replay.
func compareStored(accts []record, tot totals, bal map[string]money.Cents, rep *bank.VerifyReport) error {
	stored := map[string]money.Cents{}
	for _, a := range accts {
		stored[a.ID] = a.Balance
	}
	return bank.CompareReplay(stored, bal, tot.Deposits, tot.Withdrawals, rep)
}
