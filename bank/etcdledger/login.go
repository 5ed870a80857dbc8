package etcdledger

import (
	"context"
	"fmt"
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
	src := bank.LoginSource(m)
	pinOK := false
	if money.ValidAccountID(id) {
		if l.isClosed() {
			return bank.Receipt{}, fmt.Errorf("login: %w", outcome.ErrClosed)
		}
		a, err := newTx(l, ctx).account(id)
		if err != nil {
			return bank.Receipt{}, err
		}
		if a != nil && l.opts.lockout().Refusal(&a.Account, src, l.opts.Now()) == nil {
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
			if opErr = l.opts.lockout().Refusal(&a.Account, src, now); opErr == nil {
				if pinOK {
					holder = a.Name
					a.FailedPINs = 0
					a.LockedUntil = time.Time{}
					a.ForgetSource(src)
				} else {
					lockNote, opErr = l.opts.lockout().WrongPIN(&a.Account, src, now)
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
		if err := t.putEventOn(e, a); err != nil {
			return err
		}
		rec = bank.Receipt{Event: e, ReplyTS: e.ReplyTS, Holder: holder}
		return nil
	})
	if err != nil {
		return bank.Receipt{}, err
	}
	return rec, opErr
}
