package bank

import (
	"fmt"
	"sort"

	"atm/bank/money"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
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

// Verify replays the event log from zero, in timestamp order, and checks,
// in one read transaction:
//   - timestamps strictly increase and every operation's apply timestamp is
//     its key, with receive < apply < reply;
//   - every successful money event leaves the balance the event recorded and
//     never a negative one;
//   - the replayed balances equal the stored ones, account by account;
//   - the stored running totals equal the replayed ones, and the sum of the
//     balances equals deposits minus withdrawals.
//
// The error names the first mismatch.
func (b *Bank) Verify() (VerifyReport, error) {
	var rep VerifyReport
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		rep, err = verify(tx)
		return err
	})
	return rep, err
}

func verify(tx *bolt.Tx) (VerifyReport, error) {
	var rep VerifyReport
	bal := map[string]money.Cents{}
	var last uint64
	err := eachEvent(tx, func(e Event) error {
		rep.Events++
		if e.TS <= last {
			return fmt.Errorf("event L=%d: timestamp not above the previous one (L=%d)", e.TS, last)
		}
		last = e.TS
		if e.ApplyTS != 0 && e.ApplyTS != e.TS {
			return fmt.Errorf("event L=%d %s: apply timestamp %d differs from its key", e.TS, e.Kind, e.ApplyTS)
		}
		if e.RecvTS != 0 && e.RecvTS >= e.TS {
			return fmt.Errorf("event L=%d %s: receive timestamp %d is not before apply", e.TS, e.Kind, e.RecvTS)
		}
		if e.ReplyTS != 0 && e.ReplyTS <= e.TS {
			return fmt.Errorf("event L=%d %s: reply timestamp %d is not after apply", e.TS, e.Kind, e.ReplyTS)
		}
		if e.Outcome != outcome.OutcomeOK {
			return nil
		}
		check := func(id string, want money.Cents) error {
			got, ok := bal[id]
			if !ok {
				return fmt.Errorf("event L=%d %s: account %s was never opened", e.TS, e.Kind, id)
			}
			if got < 0 {
				return fmt.Errorf("event L=%d %s: account %s goes negative (%s)", e.TS, e.Kind, id, got)
			}
			if got != want {
				return fmt.Errorf("event L=%d %s: account %s replays to %s but the event recorded %s", e.TS, e.Kind, id, got, want)
			}
			return nil
		}
		switch e.Kind {
		case KindOpen:
			if _, ok := bal[e.Account]; ok {
				return fmt.Errorf("event L=%d open: account %s opened twice", e.TS, e.Account)
			}
			bal[e.Account] = 0
		case KindDeposit:
			if _, ok := bal[e.Account]; !ok {
				return check(e.Account, e.Balance)
			}
			bal[e.Account] += e.Amount
			rep.Deposits += e.Amount
			return check(e.Account, e.Balance)
		case KindWithdraw:
			if _, ok := bal[e.Account]; !ok {
				return check(e.Account, e.Balance)
			}
			bal[e.Account] -= e.Amount
			rep.Withdrawals += e.Amount
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
	})
	if err != nil {
		return rep, err
	}
	rep.LastTS = last
	stored := map[string]money.Cents{}
	err = eachAccount(tx, func(a Account) error {
		stored[a.ID] = a.Balance
		return nil
	})
	if err != nil {
		return rep, err
	}
	meta := tx.Bucket(bucketMeta)
	du, err := readU64(meta, keyDeposits)
	if err != nil {
		return rep, err
	}
	wu, err := readU64(meta, keyWithdrawals)
	if err != nil {
		return rep, err
	}
	return rep, CompareReplay(stored, bal, money.Cents(du), money.Cents(wu), &rep)
}

// CompareReplay checks a ledger's stored state against the replay of its
// log: every stored balance (stored) equal to the replayed one (replayed),
// no account on one side only, none negative, the stored deposit and
// withdrawal totals equal to the replay's (rep.Deposits, rep.Withdrawals),
// and money conserved. It sets rep.Total and rep.Accounts; the first
// mismatch, in account order, is the error.
func CompareReplay(stored, replayed map[string]money.Cents, deposits, withdrawals money.Cents, rep *VerifyReport) error {
	ids := make([]string, 0, len(stored)+len(replayed))
	for id := range stored {
		ids = append(ids, id)
	}
	for id := range replayed {
		if _, ok := stored[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	rep.Total = 0
	for _, id := range ids {
		s, okS := stored[id]
		r, okR := replayed[id]
		switch {
		case !okR:
			return fmt.Errorf("account %s: stored with %s but never opened in the log", id, s)
		case !okS:
			return fmt.Errorf("account %s: opened in the log but missing from the accounts", id)
		case s != r:
			return fmt.Errorf("account %s: stored balance %s but the log replays to %s", id, s, r)
		}
		if s < 0 {
			return fmt.Errorf("account %s: negative balance %s", id, s)
		}
		rep.Total += s
	}
	rep.Accounts = len(stored)
	if deposits != rep.Deposits {
		return fmt.Errorf("deposits total: stored %s but the log sums to %s", deposits, rep.Deposits)
	}
	if withdrawals != rep.Withdrawals {
		return fmt.Errorf("withdrawals total: stored %s but the log sums to %s", withdrawals, rep.Withdrawals)
	}
	if rep.Total != rep.Deposits-rep.Withdrawals {
		return fmt.Errorf("conservation: balances sum to %s but deposits − withdrawals = %s", rep.Total, rep.Deposits-rep.Withdrawals)
	}
	return nil
}
