package bank

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"atm/bank/money"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

// op kinds that are not event kinds.
const (
	opCreate Kind = "create" // OpenAccount; its event is a KindOpen
	opRecord Kind = "record" // Record and RecordAll; the event keeps its own kind
)

type op struct {
	kind   Kind
	m      Meta
	id, to string
	amount money.Cents
	pinOK  bool
	// opening marks the bank's own opening deposit, exempt from MaxAmount.
	opening bool
	before  uint64
	limit   int
	acct    *Account // for create
	err     error    // for create: refused before reaching the ledger
	ev      Event    // for Record

	res opResult
	out chan struct{}
}

type opResult struct {
	rec  Receipt
	page StatementPage
	err  error
}

// ErrOutcomeUnknown is returned by an operation whose context ended while it
// was with the committer: it may or may not be applied. The request id makes
// a retry safe: a repeated id gets the first outcome back.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// submit hands o to the committer and waits for its outcome. If ctx ends
// first, it returns an error wrapping ErrOutcomeUnknown and ctx's error: o
// may not have been applied, or may be applied and committed later.
func (b *Bank) submit(ctx context.Context, o *op) opResult {
	o.out = make(chan struct{})
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return opResult{err: outcome.ErrClosed}
	}
	select {
	case b.queue <- o:
	case <-ctx.Done():
		b.mu.RUnlock()
		return opResult{err: ctx.Err()} // never queued: nothing applied
	}
	b.mu.RUnlock()
	select {
	case <-o.out:
		return o.res
	case <-ctx.Done():
		return opResult{err: fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())}
	}
}

// Balance returns the account's balance in Receipt.Event.Balance.
func (b *Bank) Balance(ctx context.Context, m Meta, id string) (Receipt, error) {
	r := b.submit(ctx, &op{kind: KindBalance, m: m, id: id})
	return r.rec, r.err
}

// Deposit adds amount to the account.
func (b *Bank) Deposit(ctx context.Context, m Meta, id string, amount money.Cents) (Receipt, error) {
	r := b.submit(ctx, &op{kind: KindDeposit, m: m, id: id, amount: amount})
	return r.rec, r.err
}

// Withdraw takes amount from the account; it never leaves it negative.
func (b *Bank) Withdraw(ctx context.Context, m Meta, id string, amount money.Cents) (Receipt, error) {
	r := b.submit(ctx, &op{kind: KindWithdraw, m: m, id: id, amount: amount})
	return r.rec, r.err
}

// Transfer moves amount from one account to another in one step. The
// receipt's Event.Balance is the sender's new balance and Event.ToBalance the
// recipient's; Event.Detail holds the recipient's name.
func (b *Bank) Transfer(ctx context.Context, m Meta, from, to string, amount money.Cents) (Receipt, error) {
	r := b.submit(ctx, &op{kind: KindTransfer, m: m, id: from, to: to, amount: amount})
	return r.rec, r.err
}

// Lookup returns the holder's name of an account in Receipt.Holder, so an ATM
// can confirm a transfer's recipient.
func (b *Bank) Lookup(ctx context.Context, m Meta, id string) (Receipt, error) {
	r := b.submit(ctx, &op{kind: KindLookup, m: m, id: id})
	return r.rec, r.err
}

// Statement returns the account's money entries, newest first: at most limit
// (default 20, at most 100) with timestamps below before (0: from the newest).
func (b *Bank) Statement(ctx context.Context, m Meta, id string, before uint64, limit int) (StatementPage, Receipt, error) {
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	r := b.submit(ctx, &op{kind: KindStatement, m: m, id: id, before: before, limit: limit})
	return r.page, r.rec, r.err
}

// CreateAccount opens a new account with balance zero, on the bank's own
// behalf (the command line, the default accounts).
func (b *Bank) CreateAccount(ctx context.Context, id, name, pin string) (Account, error) {
	r, err := b.OpenAccount(ctx, Meta{Client: b.opts.ProcessID}, id, name, pin)
	if err != nil {
		return Account{}, err
	}
	return Account{ID: id, Name: r.Holder, Created: r.Event.Wall}, nil
}

// OpenAccount opens a new account with balance zero for a request. The
// attempt is logged whatever its outcome; Receipt.Holder is the name as
// stored (trimmed).
func (b *Bank) OpenAccount(ctx context.Context, m Meta, id, name, pin string) (Receipt, error) {
	name = strings.TrimSpace(name)
	o := &op{kind: opCreate, m: m, id: id, acct: &Account{ID: id, Name: name}}
	switch {
	case !money.ValidAccountID(id):
		o.err = fmt.Errorf("%q: %w", id, outcome.ErrInvalidAccountID)
	case name == "":
		o.err = fmt.Errorf("%w: it is empty; use 1 to 80 characters on one line", outcome.ErrInvalidName)
	case !utf8.ValidString(name) || strings.ContainsAny(name, "\n\r\t"):
		o.err = fmt.Errorf("%w: it is not one line of text; use 1 to 80 characters on one line", outcome.ErrInvalidName)
	case utf8.RuneCountInString(name) > 80:
		// The name itself is not repeated: it would fill the log.
		o.err = fmt.Errorf("%w: holder name of %d characters: use 1 to 80 characters on one line",
			outcome.ErrInvalidName, utf8.RuneCountInString(name))
	case !validPIN(pin):
		o.err = outcome.ErrInvalidPIN
	default:
		hash, err := bcrypt.GenerateFromPassword([]byte(pin), b.opts.PINCost)
		if err != nil {
			return Receipt{}, fmt.Errorf("hash PIN: %w", err)
		}
		o.acct.PINHash = hash
	}
	r := b.submit(ctx, o)
	return r.rec, r.err
}

// Accounts lists every account, ordered by id bytes.
func (b *Bank) Accounts() ([]Account, error) {
	var out []Account
	err := b.db.View(func(tx *bolt.Tx) error {
		return eachAccount(tx, func(a Account) error {
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// Audit reads every account and the running totals in one read transaction,
// so the figures are consistent with each other.
func (b *Bank) Audit() (Audit, error) {
	var a Audit
	err := b.db.View(func(tx *bolt.Tx) error {
		a.TS = b.clock.Now()
		meta := tx.Bucket(bucketMeta)
		d, err := readU64(meta, keyDeposits)
		if err != nil {
			return err
		}
		wd, err := readU64(meta, keyWithdrawals)
		if err != nil {
			return err
		}
		a.Deposits, a.Withdrawals = money.Cents(d), money.Cents(wd)
		return eachAccount(tx, func(acct Account) error {
			acct.PINHash = nil
			a.Accounts = append(a.Accounts, acct)
			a.Total += acct.Balance
			if acct.Balance < 0 {
				a.Negative = append(a.Negative, acct.ID)
			}
			return nil
		})
	})
	return a, err
}

func validPIN(pin string) bool { return money.Digits(pin, 4, 12) }
