package bank

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"atm/bank/money"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

// Authenticate checks an account's PIN for the source m.Source. The slow
// hash comparison runs before the operation reaches the committer, at most
// GOMAXPROCS of them at a time (waiting for a turn honours ctx), and not at
// all for an attempt that will be refused anyway. The committer then counts
// failures per source and per account (see the package doc), returns a
// *outcome.LockedError for a source locked out or an account throttled and a
// *outcome.WrongPINError for a wrong PIN, and logs the attempt.
func (b *Bank) Authenticate(ctx context.Context, m Meta, id, pin string) (Receipt, error) {
	o := &op{kind: KindLogin, m: m, id: id}
	if money.ValidAccountID(id) {
		if a, err := b.lookup(id); err == nil && b.loginRefusal(&a, loginSource(m), b.opts.Now()) == nil {
			select {
			case b.pinSlots <- struct{}{}:
			case <-ctx.Done():
				return Receipt{}, fmt.Errorf("login %s: waiting for a turn to check the PIN: %w", id, ctx.Err())
			}
			o.pinOK = bcrypt.CompareHashAndPassword(a.PINHash, []byte(pin)) == nil
			<-b.pinSlots
		}
	}
	r := b.submit(ctx, o)
	return r.rec, r.err
}

// lookup reads account id, balance included, from the committed state.
func (b *Bank) lookup(id string) (Account, error) {
	var a Account
	err := b.db.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketAccounts).Get([]byte(id))
		if rec == nil {
			return fmt.Errorf("account %s: %w", id, outcome.ErrAccountNotFound)
		}
		var err error
		a, err = decodeAccount(id, rec, tx.Bucket(bucketState).Get([]byte(id)))
		return err
	})
	return a, err
}

func (b *Bank) applyLogin(v *overlayView, o *op, now time.Time) opResult {
	var opErr error
	var holder, lockNote string
	var a *Account
	var err error
	if money.ValidAccountID(o.id) {
		a, err = v.account(o.id)
	} else {
		err = fmt.Errorf("%q: %w", o.id, outcome.ErrInvalidAccountID)
	}
	src := loginSource(o.m)
	if err != nil {
		opErr = err
	} else if opErr = b.loginRefusal(a, src, now); opErr == nil {
		if o.pinOK {
			holder = a.Name
			if a.FailedPINs != 0 || !a.LockedUntil.IsZero() || a.forgetSource(src) {
				a.FailedPINs = 0
				a.LockedUntil = time.Time{}
				if err := v.putAccount(a); err != nil {
					return opResult{err: err}
				}
			}
		} else {
			lockNote, opErr = b.wrongPIN(a, src, now)
			if err := v.putAccount(a); err != nil {
				return opResult{err: err}
			}
		}
	}
	if lockNote != "" {
		// The lock is an event of its own, before the refusal that
		// announces it, so that the log reads in causal order.
		lock := Event{TS: b.clock.Tick(), Proc: b.opts.ProcessID, Kind: KindLock, Outcome: outcome.OutcomeOK,
			Account: o.id, Balance: a.Balance, Client: o.m.Client, Detail: lockNote, Wall: now}
		v.putEvent(lock, 0, 0)
	}
	e := b.newEvent(KindLogin, o, now)
	if a != nil {
		e.Balance = a.Balance
	}
	b.finish(v, &e, opErr, 0, 0)
	return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS, Holder: holder}, err: opErr}
}

// loginSource is who is trying to log in, for counting wrong PINs.
func loginSource(m Meta) string {
	if m.Source != "" {
		return m.Source
	}
	return m.Client
}

// loginRefusal returns the *outcome.LockedError that refuses a login attempt on a
// from src at now without looking at the PIN, or nil: src is locked out of
// a, or a is throttled and the next attempt is not due yet.
func (b *Bank) loginRefusal(a *Account, src string, now time.Time) error {
	if s := a.source(src); s != nil && now.Before(s.LockedUntil) {
		return &outcome.LockedError{Until: s.LockedUntil}
	}
	if now.Before(a.LockedUntil) {
		return &outcome.LockedError{Until: a.LockedUntil, Every: b.opts.ThrottleEvery}
	}
	return nil
}

// wrongPIN counts a wrong PIN from src on a: after Options.LockAfter in a
// row from src, src is locked out for Options.LockFor; after
// Options.ThrottleAfter in a row on the account from any sources, the
// account takes one attempt per Options.ThrottleEvery. It returns, when a
// lock starts, the lock event's detail, and the refusal.
func (b *Bank) wrongPIN(a *Account, src string, now time.Time) (string, error) {
	s := a.touchSource(src)
	s.FailedPINs++
	a.FailedPINs++
	var refusal error
	var notes []string
	if s.FailedPINs >= b.opts.LockAfter {
		s.FailedPINs = 0
		s.LockedUntil = now.Add(b.opts.LockFor)
		refusal = &outcome.LockedError{Until: s.LockedUntil}
		notes = append(notes, fmt.Sprintf("%s locked out until %s after %d wrong PINs in a row",
			src, s.LockedUntil.UTC().Format(time.RFC3339), b.opts.LockAfter))
	}
	if a.FailedPINs >= b.opts.ThrottleAfter {
		a.LockedUntil = now.Add(b.opts.ThrottleEvery)
		if refusal == nil {
			refusal = &outcome.LockedError{Until: a.LockedUntil, Every: b.opts.ThrottleEvery}
		}
		notes = append(notes, fmt.Sprintf("account throttled after %d wrong PINs in a row: next attempt at %s",
			a.FailedPINs, a.LockedUntil.UTC().Format(time.RFC3339)))
	}
	if refusal == nil {
		refusal = &outcome.WrongPINError{AttemptsLeft: b.opts.LockAfter - s.FailedPINs}
	}
	return strings.Join(notes, "; "), refusal
}

// source returns the failures of src on a, nil when none are remembered.
func (a *Account) source(src string) *SourceFailures {
	for i := range a.Sources {
		if a.Sources[i].Source == src {
			return &a.Sources[i]
		}
	}
	return nil
}

// touchSource returns the failures of src on a, moved to the end as the
// most recent (added if new, forgetting the oldest beyond MaxSources).
func (a *Account) touchSource(src string) *SourceFailures {
	s := SourceFailures{Source: src}
	if i := slices.IndexFunc(a.Sources, func(f SourceFailures) bool { return f.Source == src }); i >= 0 {
		s = a.Sources[i]
		a.Sources = slices.Delete(a.Sources, i, i+1)
	}
	a.Sources = append(a.Sources, s)
	if n := len(a.Sources) - MaxSources; n > 0 {
		a.Sources = slices.Delete(a.Sources, 0, n)
	}
	return &a.Sources[len(a.Sources)-1]
}

// forgetSource clears src's wrong PINs on a after it logged in; it reports
// whether there were any.
func (a *Account) forgetSource(src string) bool {
	n := len(a.Sources)
	a.Sources = slices.DeleteFunc(a.Sources, func(f SourceFailures) bool { return f.Source == src })
	if len(a.Sources) == 0 {
		a.Sources = nil
	}
	return len(a.Sources) != n
}

// Locked reports whether a is throttled now after too many wrong PINs from
// several sources. A source locked out of a does not make it Locked: others
// can still log in.
func (b *Bank) Locked(a Account) bool { return b.opts.Now().Before(a.LockedUntil) }
