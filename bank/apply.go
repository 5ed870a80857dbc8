package bank

import (
	"fmt"
	"time"

	"atm/bank/money"
	"atm/bank/outcome"
)

// apply runs one operation inside the committer's transaction. It validates
// before it changes anything, so an operation that fails leaves only its
// event behind, and its batch-mates are unaffected.
func (b *Bank) apply(v *overlayView, o *op) opResult {
	now := b.opts.Now()
	switch k := o.kind; {
	case k == opCreate:
		return b.applyCreate(v, o, now)
	case k == KindLogin:
		return b.applyLogin(v, o, now)
	case k.IsMoney():
		return b.applyMoney(v, o, now)
	case k.isRead():
		return b.applyRead(v, o, now)
	default: // Record
		e := o.ev
		e.TS = b.clock.Tick()
		e.Proc = b.opts.ProcessID
		if e.Outcome == "" {
			e.Outcome = outcome.OutcomeOK
		}
		if e.Wall.IsZero() {
			e.Wall = now
		}
		if e.ReqID != "" { // it answers a request: reserve the reply's tick
			e.ApplyTS = e.TS
			e.ReplyTS = b.clock.Tick()
		}
		v.putEvent(e, 0, 0)
		return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS}}
	}
}

func (b *Bank) newEvent(kind Kind, o *op, now time.Time) Event {
	ts := b.clock.Tick()
	return Event{
		TS: ts, ApplyTS: ts, Proc: b.opts.ProcessID, Kind: kind,
		Account: o.id, To: o.to, Amount: o.amount,
		ReqID: o.m.ReqID, Client: o.m.Client, ClientTS: o.m.ClientTS, RecvTS: o.m.RecvTS,
		Wall: now, Seen: o.m.Seen,
	}
}

// finish stamps the reply timestamp and the outcome, and stores the event
// with its statement links.
func (b *Bank) finish(v *overlayView, e *Event, opErr error, prevA, prevB uint64) {
	e.Outcome = outcome.Code(opErr)
	if opErr != nil && e.Detail == "" {
		e.Detail = opErr.Error()
	}
	e.ReplyTS = b.clock.Tick()
	v.putEvent(*e, prevA, prevB)
}

func (b *Bank) applyCreate(v *overlayView, o *op, now time.Time) opResult {
	a := o.acct
	e := b.newEvent(KindOpen, o, now)
	e.Detail = a.Name
	opErr := o.err
	if opErr == nil && v.get(bAccounts, []byte(a.ID)) != nil {
		opErr = fmt.Errorf("account %s: %w", a.ID, outcome.ErrAccountExists)
	}
	if opErr != nil { // refused: only the event is written
		e.Detail = ""
		b.finish(v, &e, opErr, 0, 0)
		return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS}, err: opErr}
	}
	a.Created = now
	if err := v.putAccount(a); err != nil {
		return opResult{err: err}
	}
	// The open event is the first entry of the account's statement.
	v.putState(a.ID, acctState{Balance: a.Balance, Last: e.TS, Name: a.Name})
	b.finish(v, &e, nil, 0, 0)
	return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS, Holder: a.Name}}
}

func (b *Bank) checkAmount(a money.Cents) error {
	if a <= 0 {
		return fmt.Errorf("%w: must be positive, got %d cents", outcome.ErrInvalidAmount, a)
	}
	if a > b.opts.MaxAmount {
		return fmt.Errorf("%w: %s is above %s", outcome.ErrLimitExceeded, a, b.opts.MaxAmount)
	}
	return nil
}

func (b *Bank) applyMoney(v *overlayView, o *op, now time.Time) opResult {
	if o.m.ReqID != "" {
		first, ok, err := v.remembered(o.id, o.m.ReqID)
		if err != nil {
			return opResult{err: err}
		}
		if ok {
			e := b.newEvent(KindRetry, o, now)
			e.OrigTS = first.TS
			if first.Kind != o.kind || first.Amount != o.amount || first.To != o.to {
				// Not a resend: another request under the same id. Nothing
				// is applied and the first outcome is not relabelled.
				reused := outcome.WithMessage(outcome.ErrRequestIDReused, fmt.Sprintf(
					"request id %s was already used for %s; use a new id for a new request", o.m.ReqID, describeRequest(first)))
				b.finish(v, &e, reused, 0, 0)
				return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS}, err: reused}
			}
			e.Balance = first.Balance
			e.Detail = "repeated " + string(first.Kind) + ": first outcome " + first.Outcome
			b.finish(v, &e, nil, 0, 0)
			return opResult{rec: Receipt{Event: first, Duplicate: true, ReplyTS: e.ReplyTS}, err: outcome.FromCode(first.Outcome)}
		}
	}
	e := b.newEvent(o.kind, o, now)
	prevA, prevB, opErr := b.moveMoney(v, o, &e)
	b.finish(v, &e, opErr, prevA, prevB)
	if o.m.ReqID != "" {
		b.reqs.add(o.id, o.m.ReqID, e.TS)
	}
	return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS}, err: opErr}
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

// moveMoney validates and applies a deposit, withdrawal or transfer, filling
// the resulting balances into e. Nothing is written unless all checks pass.
// On success the event becomes the newest entry of the statement of each
// account it moved; prevA and prevB are the entries it links back to.
func (b *Bank) moveMoney(v *overlayView, o *op, e *Event) (prevA, prevB uint64, err error) {
	if o.m.ReqID == "" || len(o.m.ReqID) > 128 {
		return 0, 0, fmt.Errorf("%w: a mutating operation needs a request id of 1 to 128 bytes", outcome.ErrInvalidRequestID)
	}
	a, err := v.state(o.id)
	if err != nil {
		return 0, 0, err
	}
	e.Balance = a.Balance
	if o.amount <= 0 || !o.opening {
		if err := b.checkAmount(o.amount); err != nil {
			return 0, 0, err
		}
	}
	switch o.kind {
	case KindDeposit:
		nb, err := addCents(a.Balance, o.amount)
		if err != nil {
			return 0, 0, err
		}
		total, err := addCents(v.deposits, o.amount)
		if err != nil {
			return 0, 0, err
		}
		a.Balance, v.deposits, v.dirtyTotals = nb, total, true
	case KindWithdraw:
		if a.Balance < o.amount {
			return 0, 0, fmt.Errorf("%w: balance is %s", outcome.ErrInsufficientFunds, a.Balance)
		}
		total, err := addCents(v.withdrawals, o.amount)
		if err != nil {
			return 0, 0, err
		}
		a.Balance -= o.amount
		v.withdrawals, v.dirtyTotals = total, true
	case KindTransfer:
		if o.to == o.id {
			return 0, 0, outcome.ErrSameAccount
		}
		to, err := v.state(o.to)
		if err != nil {
			return 0, 0, err
		}
		if a.Balance < o.amount {
			return 0, 0, fmt.Errorf("%w: balance is %s", outcome.ErrInsufficientFunds, a.Balance)
		}
		nb, err := addCents(to.Balance, o.amount)
		if err != nil {
			return 0, 0, err
		}
		a.Balance -= o.amount
		to.Balance = nb
		e.ToBalance = to.Balance
		e.Detail = to.Name
		prevB, to.Last = to.Last, e.TS
		v.putState(o.to, to)
	}
	e.Balance = a.Balance
	prevA, a.Last = a.Last, e.TS
	v.putState(o.id, a)
	return prevA, prevB, nil
}

func (b *Bank) applyRead(v *overlayView, o *op, now time.Time) opResult {
	e := b.newEvent(o.kind, o, now)
	var res opResult
	a, opErr := v.state(o.id)
	if opErr == nil {
		switch o.kind {
		case KindBalance:
			e.Balance = a.Balance
		case KindLookup:
			res.rec.Holder = a.Name
			e.Detail = a.Name
		case KindStatement:
			e.Balance = a.Balance
			res.page, opErr = statement(v.event, o.id, a.Last, o.before, o.limit)
		}
	}
	b.finish(v, &e, opErr, 0, 0)
	res.rec.Event = e
	res.rec.ReplyTS = e.ReplyTS
	res.err = opErr
	return res
}

// addCents returns a+b, or outcome.ErrOverflow if the sum does not fit in int64.
func addCents(a, b money.Cents) (money.Cents, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, outcome.ErrOverflow
	}
	return s, nil
}
