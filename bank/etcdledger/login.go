package etcdledger

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"atm/bank"
	"atm/bank/money"
	"atm/bank/outcome"

	"golang.org/x/crypto/bcrypt"
)

// Authenticate checks an account's PIN for the source m.Source (m.Client
// when empty), with bank's lockout policy: the hash is compared before the
// transaction, at most GOMAXPROCS at a time and not at all for an attempt
// that will be refused; the transaction counts failures per source and per
// account, returns a *outcome.LockedError or a *outcome.WrongPINError, and
// logs the attempt (and a lock event when a lock starts).
func (l *Ledger) Authenticate(ctx context.Context, m bank.Meta, id, pin string) (bank.Receipt, error) {
	src := m.Source
	if src == "" {
		src = m.Client
	}
	pinOK := false
	if money.ValidAccountID(id) {
		if l.isClosed() {
			return bank.Receipt{}, fmt.Errorf("login: %w", outcome.ErrClosed)
		}
		a, err := newTx(l, ctx).account(id)
		if err != nil {
			return bank.Receipt{}, err
		}
		if a != nil && l.loginRefusal(&a.Account, src, l.opts.Now()) == nil {
			select {
			case l.pinSlots <- struct{}{}:
			case <-ctx.Done():
				return bank.Receipt{}, fmt.Errorf("login %s: waiting for a turn to check the PIN: %w", id, ctx.Err())
			}
			pinOK = bcrypt.CompareHashAndPassword(a.PINHash, []byte(pin)) == nil
			<-l.pinSlots
		}
	}
	var rec bank.Receipt
	var opErr error
	err := l.run(ctx, "login", l.idKeys(id), func(t *tx) error {
		rec, opErr = bank.Receipt{}, nil
		now := l.opts.Now()
		var holder, lockNote string
		var a *record
		if money.ValidAccountID(id) {
			var err error
			if a, err = t.account(id); err != nil {
				return err
			}
			if a == nil {
				opErr = notFound(id)
			}
		} else {
			opErr = fmt.Errorf("%q: %w", id, outcome.ErrInvalidAccountID)
		}
		l.receive(a)
		if a != nil {
			if opErr = l.loginRefusal(&a.Account, src, now); opErr == nil {
				if pinOK {
					holder = a.Name
					a.FailedPINs = 0
					a.LockedUntil = time.Time{}
					forgetSource(&a.Account, src)
				} else {
					lockNote, opErr = l.wrongPIN(&a.Account, src, now)
				}
			}
		}
		if lockNote != "" {
			lock := bank.Event{TS: l.clock.Tick(), Proc: l.opts.ProcessID, Kind: bank.KindLock, Outcome: outcome.OutcomeOK,
				Account: id, Balance: a.Balance, Client: m.Client, Detail: lockNote, Wall: now}
			if err := t.putEvent(lock); err != nil {
				return err
			}
		}
		e := l.newEvent(bank.KindLogin, m, id, "", 0, now)
		if a != nil {
			e.Balance = a.Balance
		}
		l.finish(&e, opErr)
		if err := t.putEvent(e); err != nil {
			return err
		}
		if a != nil {
			a.Last = e.TS
			if err := t.putAccount(a); err != nil {
				return err
			}
		}
		rec = bank.Receipt{Event: e, ReplyTS: e.ReplyTS, Holder: holder}
		return nil
	})
	if err != nil {
		return bank.Receipt{}, err
	}
	return rec, opErr
}

// loginRefusal returns the *outcome.LockedError that refuses an attempt
// from src on a at now without looking at the PIN, or nil.
func (l *Ledger) loginRefusal(a *bank.Account, src string, now time.Time) error {
	if i := slices.IndexFunc(a.Sources, func(f bank.SourceFailures) bool { return f.Source == src }); i >= 0 &&
		now.Before(a.Sources[i].LockedUntil) {
		return &outcome.LockedError{Until: a.Sources[i].LockedUntil}
	}
	if now.Before(a.LockedUntil) {
		return &outcome.LockedError{Until: a.LockedUntil, Every: l.opts.ThrottleEvery}
	}
	return nil
}

// wrongPIN counts a wrong PIN from src on a, like bank: it returns the lock
// event's detail when a lock starts, and the refusal.
func (l *Ledger) wrongPIN(a *bank.Account, src string, now time.Time) (string, error) {
	s := touchSource(a, src)
	s.FailedPINs++
	a.FailedPINs++
	var refusal error
	var notes []string
	if s.FailedPINs >= l.opts.LockAfter {
		s.FailedPINs = 0
		s.LockedUntil = now.Add(l.opts.LockFor)
		refusal = &outcome.LockedError{Until: s.LockedUntil}
		notes = append(notes, fmt.Sprintf("%s locked out until %s after %d wrong PINs in a row",
			src, s.LockedUntil.UTC().Format(time.RFC3339), l.opts.LockAfter))
	}
	if a.FailedPINs >= l.opts.ThrottleAfter {
		a.LockedUntil = now.Add(l.opts.ThrottleEvery)
		if refusal == nil {
			refusal = &outcome.LockedError{Until: a.LockedUntil, Every: l.opts.ThrottleEvery}
		}
		notes = append(notes, fmt.Sprintf("account throttled after %d wrong PINs in a row: next attempt at %s",
			a.FailedPINs, a.LockedUntil.UTC().Format(time.RFC3339)))
	}
	if refusal == nil {
		refusal = &outcome.WrongPINError{AttemptsLeft: l.opts.LockAfter - s.FailedPINs}
	}
	return strings.Join(notes, "; "), refusal
}

// touchSource returns src's failures on a, moved to the end as the most
// recent, forgetting the oldest beyond bank.MaxSources.
func touchSource(a *bank.Account, src string) *bank.SourceFailures {
	s := bank.SourceFailures{Source: src}
	if i := slices.IndexFunc(a.Sources, func(f bank.SourceFailures) bool { return f.Source == src }); i >= 0 {
		s = a.Sources[i]
		a.Sources = slices.Delete(a.Sources, i, i+1)
	}
	a.Sources = append(a.Sources, s)
	if n := len(a.Sources) - bank.MaxSources; n > 0 {
		a.Sources = slices.Delete(a.Sources, 0, n)
	}
	return &a.Sources[len(a.Sources)-1]
}

func forgetSource(a *bank.Account, src string) {
	a.Sources = slices.DeleteFunc(a.Sources, func(f bank.SourceFailures) bool { return f.Source == src })
	if len(a.Sources) == 0 {
		a.Sources = nil
	}
}
