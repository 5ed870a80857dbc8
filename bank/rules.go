package bank

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"atm/bank/lamport"
	"atm/bank/money"
	"atm/bank/outcome"
)

// Rules are the bank's rules, for every store: how each operation reads
// and changes the accounts, which events it logs and how they are stamped.
// Apply validates before it changes anything, so an operation that fails
// leaves only its event behind.
type Rules struct {
	opts    Options
	clock   *lamport.Clock
	lockout Lockout
}

// NewRules returns the rules with opts (defaults filled) on clock.
func NewRules(opts Options, clock *lamport.Clock) *Rules {
	opts = opts.WithDefaults()
	return &Rules{opts: opts, clock: clock, lockout: opts.Lockout()}
}

// Options returns the options the rules run with, defaults filled.
func (r *Rules) Options() Options { return r.opts }

// Clock returns the clock the rules stamp events with.
func (r *Rules) Clock() *lamport.Clock { return r.clock }

// Apply runs o on v. Each event it logs is stamped with ticks of the clock
// in apply order: its timestamp, then its reply's. The error is a failure
// of the store (a read that failed), or a *PanicError: nothing of o is to
// be committed then, whatever it wrote to v.
func (r *Rules) Apply(v View, o *Op) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = Result{}, &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	now := r.opts.Now()
	switch k := o.Kind; {
	case k == OpCreate:
		return r.applyCreate(v, o, now)
	case k == KindLogin:
		return r.applyLogin(v, o, now)
	case k.IsMoney():
		return r.applyMoney(v, o, now)
	case k.isRead():
		return r.applyRead(v, o, now)
	case k == OpRecord:
		return r.applyRecord(v, o, now)
	case k == KindCheckpoint:
		return r.applyCheckpoint(v, o, now)
	}
	return Result{}, fmt.Errorf("apply: unknown operation %q", o.Kind)
}

func (r *Rules) newEvent(kind Kind, o *Op, now time.Time) Event {
	ts := r.clock.Tick()
	return Event{
		TS: ts, ApplyTS: ts, Proc: r.opts.ProcessID, Kind: kind,
		Account: o.ID, To: o.To, Amount: o.Amount,
		ReqID: o.Meta.ReqID, Client: o.Meta.Client, ClientTS: o.Meta.ClientTS, RecvTS: o.Meta.RecvTS,
		Wall: now, Seen: o.Meta.Seen,
	}
}

// finish stamps the outcome and reserves the reply's tick.
func (r *Rules) finish(e *Event, opErr error) {
	e.Outcome = outcome.Code(opErr)
	if opErr != nil && e.Detail == "" {
		e.Detail = opErr.Error()
	}
	e.ReplyTS = r.clock.Tick()
}

// reply is the result of an operation whose event e is logged.
func reply(e Event, opErr error) Result {
	return Result{Receipt: Receipt{Event: e, ReplyTS: e.ReplyTS}, Err: opErr}
}

// account reads account id for an operation (see read).
func account(v View, id string) (a *Record, refused, failed error) { return read(v.Account, id) }

// read reads account id with one of a View's reads: a damaged record is
// the operation's refusal (see ErrDamaged), any other error the store's.
func read(from func(string) (*Record, error), id string) (a *Record, refused, failed error) {
	a, err := from(id)
	if err != nil {
		refused, failed = refusal(err)
		return nil, refused, failed
	}
	return a, nil, nil
}

// PanicError is the error of an operation whose rules panicked: a fault of
// the bank, not of the request. Nothing of the operation is committed. It
// matches outcome.ErrInternal, and keeps the panic's value and stack for
// the server's log.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("%v (a fault of the bank: %v)", outcome.ErrInternal, e.Value)
}

// Is reports whether target is outcome.ErrInternal.
func (e *PanicError) Is(target error) bool { return target == outcome.ErrInternal }

func notFound(id string) error { return fmt.Errorf("account %s: %w", id, outcome.ErrAccountNotFound) }

func (r *Rules) applyRecord(v View, o *Op, now time.Time) (Result, error) {
	out := make([]Event, 0, len(o.Events))
	for _, e := range o.Events {
		e.TS = r.clock.Tick()
		e.Proc = r.opts.ProcessID
		if e.Outcome == "" {
			e.Outcome = outcome.OutcomeOK
		}
		if e.Wall.IsZero() {
			e.Wall = now
		}
		if e.ReqID != "" { // it answers a request: reserve the reply's tick
			e.ApplyTS = e.TS
			e.ReplyTS = r.clock.Tick()
		}
		if err := v.Append(e, false, nil, nil); err != nil {
			return Result{}, err
		}
		out = append(out, e)
	}
	return Result{Events: out}, nil
}

// applyCheckpoint records the bank's state: every balance, the totals and
// each chain's head, read before the checkpoint's tick, so the clock is
// above every account's events. The state is stored with the event, which
// records its digest; a damaged record read is the checkpoint's refusal,
// and nothing but its event is written then. A checkpoint is the bank's
// own doing, answered to no client: its event reserves no reply tick.
func (r *Rules) applyCheckpoint(v View, o *Op, now time.Time) (Result, error) {
	c := &Checkpoint{Proc: r.opts.ProcessID}
	var damaged, err error
	if c.Balances, err = v.Balances(); err == nil {
		c.Totals, err = v.Totals()
	}
	if err == nil {
		c.Heads, err = v.Heads()
	}
	if damaged, err = refusal(err); err != nil {
		return Result{}, err
	}
	e := r.newEvent(KindCheckpoint, o, now)
	c.TS = e.TS
	var total money.Cents
	if damaged == nil {
		total, damaged = c.Total()
	}
	e.Outcome = outcome.Code(damaged)
	if damaged != nil {
		e.Detail = damaged.Error()
		return reply(e, damaged), v.Append(e, false, nil, nil)
	}
	state := c.Encode()
	e.Balance = total
	e.Detail = checkpointDetail(c, total, sha256.Sum256(state))
	if err := v.PutCheckpoint(c, state); err != nil {
		return Result{}, err
	}
	res := reply(e, nil)
	res.Checkpoint = c
	return res, v.Append(e, false, nil, nil)
}

func (r *Rules) applyCreate(v View, o *Op, now time.Time) (Result, error) {
	existing, damaged, err := account(v, o.ID)
	if err != nil {
		return Result{}, err
	}
	e := r.newEvent(KindOpen, o, now)
	opErr := cmp.Or(o.Refusal, damaged)
	if opErr == nil && existing != nil {
		opErr = fmt.Errorf("account %s: %w", o.ID, outcome.ErrAccountExists)
	}
	if opErr != nil { // refused: only the event is written
		r.finish(&e, opErr)
		return reply(e, opErr), v.Append(e, false, existing, nil)
	}
	a := &Record{Account: Account{ID: o.ID, Name: o.Name, PINHash: o.PINHash, Created: now}, Whole: true, Changed: true}
	e.Detail = o.Name
	r.finish(&e, nil)
	// The open event is the first entry of the account's statement.
	res := reply(e, nil)
	res.Receipt.Holder = o.Name
	return res, v.Append(e, true, a, nil)
}

func (r *Rules) applyLogin(v View, o *Op, now time.Time) (Result, error) {
	var a *Record
	var opErr error
	if money.ValidAccountID(o.ID) {
		var err error
		if a, opErr, err = read(v.Login, o.ID); err != nil {
			return Result{}, err
		}
		if a == nil && opErr == nil {
			opErr = notFound(o.ID)
		}
	} else {
		opErr = fmt.Errorf("%q: %w", o.ID, outcome.ErrInvalidAccountID)
	}
	var holder, lockNote string
	if a != nil {
		holder, lockNote, opErr = r.checkPIN(a, LoginSource(o.Meta), o.PINOK, now)
	}
	if lockNote != "" {
		// The lock is an event of its own, before the refusal that
		// announces it, so that the log reads in causal order.
		lock := Event{TS: r.clock.Tick(), Proc: r.opts.ProcessID, Kind: KindLock, Outcome: outcome.OutcomeOK,
			Account: o.ID, Balance: a.Balance, Client: o.Meta.Client, Detail: lockNote, Wall: now}
		if err := v.Append(lock, false, nil, nil); err != nil {
			return Result{}, err
		}
	}
	e := r.newEvent(KindLogin, o, now)
	if a != nil {
		e.Balance = a.Balance
	}
	r.finish(&e, opErr)
	res := reply(e, opErr)
	res.Receipt.Holder = holder
	return res, v.Append(e, false, a, nil)
}

// checkPIN applies the lockout policy to a login on a from src: it returns
// the holder's name when it logs in, the detail of a lock it starts, and
// its refusal.
func (r *Rules) checkPIN(a *Record, src string, pinOK bool, now time.Time) (holder, lockNote string, refusal error) {
	if refusal = r.lockout.Refusal(&a.Account, src, now); refusal != nil {
		return "", "", refusal
	}
	if !pinOK {
		lockNote, refusal = r.lockout.WrongPIN(&a.Account, src, now)
		a.Changed = true
		return "", lockNote, refusal
	}
	if a.FailedPINs != 0 || !a.LockedUntil.IsZero() || a.ForgetSource(src) {
		a.FailedPINs = 0
		a.LockedUntil = time.Time{}
		a.Changed = true
	}
	return a.Name, "", nil
}

func (r *Rules) applyRead(v View, o *Op, now time.Time) (Result, error) {
	a, opErr, err := account(v, o.ID)
	if err != nil {
		return Result{}, err
	}
	e := r.newEvent(o.Kind, o, now)
	var page StatementPage
	var holder string
	switch {
	case opErr != nil:
	case a == nil:
		opErr = notFound(o.ID)
	case o.Kind == KindLookup:
		holder = a.Name
		e.Detail = a.Name
	case o.Kind == KindStatement:
		if page, err = v.Statement(a, o.Before, o.Limit); err != nil {
			return Result{}, err
		}
		fallthrough
	default:
		e.Balance = a.Balance
	}
	r.finish(&e, opErr)
	res := reply(e, opErr)
	res.Receipt.Holder = holder
	res.Page = page
	return res, v.Append(e, false, a, nil)
}

// validRequestID reports whether id can be remembered: 1 to 128 bytes,
// no NUL.
func validRequestID(id string) bool {
	return id != "" && len(id) <= 128 && !strings.Contains(id, "\x00")
}

func (r *Rules) applyMoney(v View, o *Op, now time.Time) (Result, error) {
	a, damaged, err := account(v, o.ID)
	if err != nil {
		return Result{}, err
	}
	remember := validRequestID(o.Meta.ReqID)
	if remember {
		first, ok, err := v.Remembered(o.ID, a, o.Meta.ReqID)
		if err != nil {
			return Result{}, fmt.Errorf("request %s of %s: %w", o.Meta.ReqID, o.ID, err)
		}
		if ok {
			return r.retry(v, o, a, first, now)
		}
	}
	var to *Record
	if o.Kind == KindTransfer && o.To != o.ID && damaged == nil {
		var toDamaged error
		if to, toDamaged, err = account(v, o.To); err != nil {
			return Result{}, err
		}
		damaged = toDamaged
	}
	e := r.newEvent(o.Kind, o, now)
	opErr, err := r.moveMoney(v, o, a, to, &e, damaged)
	if err != nil {
		return Result{}, err
	}
	r.finish(&e, opErr)
	if remember {
		if err := v.Remember(o.ID, a, o.Meta.ReqID, e); err != nil {
			return Result{}, err
		}
	}
	if err := v.Append(e, opErr == nil, a, to); err != nil {
		return Result{}, err
	}
	if f := fault.Load(); f != nil {
		(*f)(o)
	}
	return reply(e, opErr), nil
}

// fault, set by tests only, is called once a money operation has written
// all it changes to its view.
var fault atomic.Pointer[func(*Op)]

// retry answers a repeated request id from its first outcome, logging a
// retry event; nothing is applied again. An id sent again with another
// request is refused and the first outcome is not relabelled.
func (r *Rules) retry(v View, o *Op, a *Record, first Event, now time.Time) (Result, error) {
	e := r.newEvent(KindRetry, o, now)
	e.OrigTS = first.TS
	if first.Kind != o.Kind || first.Amount != o.Amount || first.To != o.To {
		reused := outcome.WithMessage(outcome.ErrRequestIDReused, fmt.Sprintf(
			"request id %s was already used for %s; use a new id for a new request", o.Meta.ReqID, describeRequest(first)))
		r.finish(&e, reused)
		return reply(e, reused), v.Append(e, false, a, nil)
	}
	e.Balance = first.Balance
	e.Detail = "repeated " + string(first.Kind) + ": first outcome " + first.Outcome
	r.finish(&e, nil)
	res := Result{Receipt: Receipt{Event: first, Duplicate: true, ReplyTS: e.ReplyTS}, Err: outcome.FromCode(first.Outcome)}
	return res, v.Append(e, false, a, nil)
}

// describeRequest names a money request for a person: "a deposit of
// R$ 50,00", "a transfer of R$ 10,00 to 456".
func describeRequest(e Event) string {
	switch e.Kind {
	case KindDeposit:
		return "a deposit of " + e.Amount.String()
	case KindWithdraw:
		return "a withdrawal of " + e.Amount.String()
	case KindTransfer:
		return "a transfer of " + e.Amount.String() + " to " + e.To
	}
	return "a " + string(e.Kind)
}

func (r *Rules) checkAmount(o *Op) error {
	if o.Amount <= 0 {
		return fmt.Errorf("%w: must be positive, got %d cents", outcome.ErrInvalidAmount, o.Amount)
	}
	if o.Amount > r.opts.MaxAmount && !o.Opening {
		return fmt.Errorf("%w: %s is above %s", outcome.ErrLimitExceeded, o.Amount, r.opts.MaxAmount)
	}
	return nil
}

// moveMoney validates and applies a deposit, withdrawal or transfer to the
// accounts read, filling the balances into e; damaged is a damaged
// record found reading them. The first result is the operation's refusal,
// the second a failure of the store. Nothing changes unless every check
// passes.
func (r *Rules) moveMoney(v View, o *Op, a, to *Record, e *Event, damaged error) (error, error) {
	if o.Meta.ReqID == "" || len(o.Meta.ReqID) > 128 {
		return fmt.Errorf("%w: a mutating operation needs a request id of 1 to 128 bytes", outcome.ErrInvalidRequestID), nil
	}
	if damaged != nil {
		return damaged, nil
	}
	if a == nil {
		return notFound(o.ID), nil
	}
	e.Balance = a.Balance
	if err := r.checkAmount(o); err != nil {
		return err, nil
	}
	switch o.Kind {
	case KindDeposit, KindWithdraw:
		refusal, err := r.cash(v, o, a)
		e.Balance = a.Balance
		return refusal, err
	case KindTransfer:
		if o.To == o.ID {
			return outcome.ErrSameAccount, nil
		}
		if to == nil {
			return notFound(o.To), nil
		}
		if a.Balance < o.Amount {
			return fmt.Errorf("%w: balance is %s", outcome.ErrInsufficientFunds, a.Balance), nil
		}
		nb, err := addCents(to.Balance, o.Amount)
		if err != nil {
			return err, nil
		}
		a.Balance -= o.Amount
		to.Balance = nb
		a.Changed, to.Changed = true, true
		e.Balance, e.ToBalance = a.Balance, to.Balance
		e.Detail = to.Name
	}
	return nil, nil
}

// cash applies a deposit or a withdrawal to a and to the bank's totals.
func (r *Rules) cash(v View, o *Op, a *Record) (error, error) {
	tot, err := v.Totals()
	if err != nil {
		return nil, err
	}
	balance := a.Balance
	if o.Kind == KindDeposit {
		if balance, err = addCents(balance, o.Amount); err == nil {
			tot.Deposits, err = addCents(tot.Deposits, o.Amount)
		}
	} else {
		if balance < o.Amount {
			return fmt.Errorf("%w: balance is %s", outcome.ErrInsufficientFunds, balance), nil
		}
		balance -= o.Amount
		tot.Withdrawals, err = addCents(tot.Withdrawals, o.Amount)
	}
	if err != nil {
		return err, nil
	}
	if err := v.PutTotals(tot); err != nil {
		return nil, err
	}
	a.Balance, a.Changed = balance, true
	return nil, nil
}

// addCents returns a+b, or outcome.ErrOverflow if the sum does not fit in int64.
func addCents(a, b money.Cents) (money.Cents, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, outcome.ErrOverflow
	}
	return s, nil
}
