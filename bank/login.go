package bank

import (
	"context"
	"fmt"
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
		if a, err := b.lookup(id); err == nil && b.opts.lockout().Refusal(&a, LoginSource(m), b.opts.Now()) == nil {
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
	src := LoginSource(o.m)
	if err != nil {
		opErr = err
	} else if opErr = b.opts.lockout().Refusal(a, src, now); opErr == nil {
		if o.pinOK {
			holder = a.Name
			if a.FailedPINs != 0 || !a.LockedUntil.IsZero() || a.ForgetSource(src) {
				a.FailedPINs = 0
				a.LockedUntil = time.Time{}
				if err := v.putAccount(a); err != nil {
					return opResult{err: err}
				}
			}
		} else {
			lockNote, opErr = b.opts.lockout().WrongPIN(a, src, now)
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

// Locked reports whether a is throttled now after too many wrong PINs from
// several sources. A source locked out of a does not make it Locked: others
// can still log in.
func (b *Bank) Locked(a Account) bool { return b.opts.Now().Before(a.LockedUntil) }
