package bank

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"atm/bank/lamport"
	"atm/bank/money"
	"atm/bank/outcome"

	"golang.org/x/crypto/bcrypt"
)

// ErrOutcomeUnknown is returned by an operation whose context ended while
// its store had it: it may or may not be applied. The request id makes a
// retry safe: a repeated id gets the first outcome back.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// Ledger is the bank on one store: every operation, written once, with
// the store underneath. All its methods are safe for concurrent use.
type Ledger struct {
	rules    *Rules
	store    Store
	lease    *Lease
	pinSlots chan struct{} // one per PIN comparison running

	sinceCheckpoint atomic.Int64 // events logged since the last checkpoint started
	checkpointing   atomic.Bool  // a checkpoint of Options.CheckpointEvery is running
}

// NewLedger serves the bank with rules on store, whose clock lease is
// lease (nil for a ledger that only reads).
func NewLedger(rules *Rules, store Store, lease *Lease) *Ledger {
	return &Ledger{rules: rules, store: store, lease: lease, pinSlots: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// Clock returns the server's Lamport clock.
func (l *Ledger) Clock() *lamport.Clock { return l.rules.clock }

// ProcessID returns the process id the ledger stamps on its events.
func (l *Ledger) ProcessID() string { return l.rules.opts.ProcessID }

// MaxAmount returns the per-operation limit.
func (l *Ledger) MaxAmount() money.Cents { return l.rules.opts.MaxAmount }

// Close closes the store (see Store.Close).
func (l *Ledger) Close() error { return l.store.Close() }

func (l *Ledger) do(ctx context.Context, o Op) (Result, error) {
	res, err := l.store.Do(ctx, o)
	if err != nil {
		return Result{}, err
	}
	l.counted(&o, &res)
	return res, res.Err
}

func (l *Ledger) receipt(ctx context.Context, o Op) (Receipt, error) {
	res, err := l.do(ctx, o)
	return res.Receipt, err
}

// Balance returns the account's balance in Receipt.Event.Balance.
func (l *Ledger) Balance(ctx context.Context, m Meta, id string) (Receipt, error) {
	return l.receipt(ctx, Op{Kind: KindBalance, Meta: m, ID: id})
}

// Lookup returns the holder's name of an account in Receipt.Holder, so an
// ATM can confirm a transfer's recipient.
func (l *Ledger) Lookup(ctx context.Context, m Meta, id string) (Receipt, error) {
	return l.receipt(ctx, Op{Kind: KindLookup, Meta: m, ID: id})
}

// Statement returns the account's entries (its open event and its
// successful money events), newest first: at most limit (default 20, at
// most 100) with timestamps below before (0: from the newest).
func (l *Ledger) Statement(ctx context.Context, m Meta, id string, before uint64, limit int) (StatementPage, Receipt, error) {
	if limit <= 0 {
		limit = 20
	}
	res, err := l.do(ctx, Op{Kind: KindStatement, Meta: m, ID: id, Before: before, Limit: min(limit, 100)})
	return res.Page, res.Receipt, err
}

// Deposit adds amount to the account.
func (l *Ledger) Deposit(ctx context.Context, m Meta, id string, amount money.Cents) (Receipt, error) {
	return l.receipt(ctx, Op{Kind: KindDeposit, Meta: m, ID: id, Amount: amount})
}

// Withdraw takes amount from the account; it never leaves it negative.
func (l *Ledger) Withdraw(ctx context.Context, m Meta, id string, amount money.Cents) (Receipt, error) {
	return l.receipt(ctx, Op{Kind: KindWithdraw, Meta: m, ID: id, Amount: amount})
}

// Transfer moves amount from one account to another in one step. The
// receipt's Event.Balance is the sender's new balance and Event.ToBalance
// the recipient's; Event.Detail holds the recipient's name.
func (l *Ledger) Transfer(ctx context.Context, m Meta, from, to string, amount money.Cents) (Receipt, error) {
	return l.receipt(ctx, Op{Kind: KindTransfer, Meta: m, ID: from, To: to, Amount: amount})
}

// Authenticate checks an account's PIN for the source m.Source (m.Client
// when empty). The slow hash comparison runs before the operation reaches
// the store, at most GOMAXPROCS at a time (waiting for a turn honours
// ctx), and not at all for an attempt that will be refused anyway. The
// rules then count failures per source and per account (see Lockout),
// return a *outcome.LockedError for a source locked out or an account
// throttled and a *outcome.WrongPINError for a wrong PIN, and log the
// attempt, with a lock event when a lock starts.
func (l *Ledger) Authenticate(ctx context.Context, m Meta, id, pin string) (Receipt, error) {
	o := Op{Kind: KindLogin, Meta: m, ID: id}
	if money.ValidAccountID(id) {
		a, err := l.store.Committed(ctx, id)
		if err != nil {
			return Receipt{}, err
		}
		if a != nil && l.rules.lockout.Refusal(a, LoginSource(m), l.rules.opts.Now()) == nil {
			select {
			case l.pinSlots <- struct{}{}:
			case <-ctx.Done():
				return Receipt{}, fmt.Errorf("login %s: waiting for a turn to check the PIN: %w", id, ctx.Err())
			}
			o.PINOK = bcrypt.CompareHashAndPassword(a.PINHash, []byte(pin)) == nil
			<-l.pinSlots
		}
	}
	return l.receipt(ctx, o)
}

// Locked reports whether a is throttled now after too many wrong PINs from
// several sources. A source locked out of a does not make it Locked:
// others can still log in.
func (l *Ledger) Locked(a Account) bool { return l.rules.opts.Now().Before(a.LockedUntil) }

// CreateAccount opens a new account with balance zero, on the bank's own
// behalf (the command line, the default accounts).
func (l *Ledger) CreateAccount(ctx context.Context, id, name, pin string) (Account, error) {
	r, err := l.OpenAccount(ctx, Meta{Client: l.ProcessID()}, id, name, pin)
	if err != nil {
		return Account{}, err
	}
	return Account{ID: id, Name: r.Holder, Created: r.Event.Wall}, nil
}

// OpenAccount opens a new account with balance zero for a request. The
// attempt is logged whatever its outcome; Receipt.Holder is the name as
// stored (trimmed).
func (l *Ledger) OpenAccount(ctx context.Context, m Meta, id, name, pin string) (Receipt, error) {
	name = strings.TrimSpace(name)
	o := Op{Kind: OpCreate, Meta: m, ID: id, Name: name, Refusal: newAccountRefusal(id, name, pin)}
	if o.Refusal == nil {
		hash, err := bcrypt.GenerateFromPassword([]byte(pin), l.rules.opts.PINCost)
		if err != nil {
			return Receipt{}, fmt.Errorf("hash PIN: %w", err)
		}
		o.PINHash = hash
	}
	return l.receipt(ctx, o)
}

// newAccountRefusal returns why an account cannot be opened with id, name
// and pin, or nil.
func newAccountRefusal(id, name, pin string) error {
	switch {
	case !money.ValidAccountID(id):
		return fmt.Errorf("%q: %w", id, outcome.ErrInvalidAccountID)
	case name == "":
		return fmt.Errorf("%w: it is empty; use 1 to 80 characters on one line", outcome.ErrInvalidName)
	case !utf8.ValidString(name) || strings.ContainsAny(name, "\n\r\t"):
		return fmt.Errorf("%w: it is not one line of text; use 1 to 80 characters on one line", outcome.ErrInvalidName)
	case utf8.RuneCountInString(name) > 80:
		// The name itself is not repeated: it would fill the log.
		return fmt.Errorf("%w: holder name of %d characters: use 1 to 80 characters on one line",
			outcome.ErrInvalidName, utf8.RuneCountInString(name))
	case !money.Digits(pin, 4, 12):
		return outcome.ErrInvalidPIN
	}
	return nil
}

// Seed creates DefaultAccounts with their opening deposits, which are the
// bank's own: the per-operation limit, which is for ATMs, does not apply.
// Several servers may seed one store at once: an account that exists is
// left as it is, and the deposit's request id makes it happen once.
func (l *Ledger) Seed(ctx context.Context) error {
	for _, d := range DefaultAccounts {
		if _, err := l.CreateAccount(ctx, d.ID, d.Name, d.PIN); err != nil && !errors.Is(err, outcome.ErrAccountExists) {
			return err
		}
		m := Meta{ReqID: "open-" + d.ID, Client: l.ProcessID()}
		if _, err := l.do(ctx, Op{Kind: KindDeposit, Meta: m, ID: d.ID, Amount: d.Opening, Opening: true}); err != nil {
			return err
		}
	}
	return nil
}

// maxRecordBatch bounds the events recorded in one operation.
const maxRecordBatch = 100

// Record appends a non-operation event (server start and stop, connect,
// logout, push, disconnect...) to the log. Its timestamp comes from a tick
// of the clock when it is applied; it is durable when Record returns.
func (l *Ledger) Record(ctx context.Context, e Event) (Event, error) {
	out, err := l.RecordAll(ctx, []Event{e})
	return out[0], err
}

// RecordAll appends non-operation events to the log in the order given,
// like Record, with timestamps rising in that order, up to 100 in one
// operation. It returns the events as recorded; an event that could not be
// recorded is returned with TS 0, and the first error is returned too.
func (l *Ledger) RecordAll(ctx context.Context, es []Event) ([]Event, error) {
	out := make([]Event, len(es))
	for _, e := range es {
		if e.Kind.IsOperation() {
			return out, fmt.Errorf("record %s: use the operation's own method", e.Kind)
		}
	}
	for start := 0; start < len(es); start += maxRecordBatch {
		res, err := l.do(ctx, Op{Kind: OpRecord, Events: es[start:min(start+maxRecordBatch, len(es))]})
		if err != nil {
			return out, err
		}
		copy(out[start:], res.Events)
	}
	return out, nil
}

// SendTick ticks the clock for a message that leaves the process without
// an operation of its own (an error the server answers by itself, a
// greeting refused for lack of room) and returns its timestamp once the
// clock stored by the store covers it: after a crash at any point, the
// clock resumes above it. It fails if ctx ends or the ledger closes first,
// or if the store fails; the message must not be sent then.
func (l *Ledger) SendTick(ctx context.Context) (uint64, error) {
	ts := l.rules.clock.Tick()
	if l.lease == nil {
		return ts, fmt.Errorf("store the clock: %w", outcome.ErrClosed)
	}
	return ts, l.lease.Wait(ctx, ts)
}

// EventsAfter returns at most limit events of the log committed after the
// cursor, in (ts, proc) order, read at one point, and the cursor past
// them: reading on from it walks the whole log, each event once, and then
// follows it as it grows. It is how a running server hands its log to an
// operator.
func (l *Ledger) EventsAfter(ctx context.Context, after Cursor, limit int) ([]Event, Cursor, error) {
	var out []Event
	if limit <= 0 {
		return out, after, nil
	}
	next, err := l.store.Log(ctx, after, func(e Event) error {
		if len(out) == limit {
			return errPageFull
		}
		out = append(out, e)
		return nil
	})
	if err == errPageFull {
		err = nil
	}
	return out, next, err
}

// errPageFull ends a read of the log once a page is full.
var errPageFull = errors.New("page full")

// Appended returns a channel closed once events are committed after the
// call, by this server or, on a store several servers share, by any of
// them; it is also closed when the ledger closes. A follower of the log
// waits on it, then reads on with EventsAfter from its cursor.
func (l *Ledger) Appended() <-chan struct{} { return l.store.Appended() }

// Events calls fn for every event of the log in (ts, proc) order, read at
// one point, stopping at the first error fn returns.
func (l *Ledger) Events(ctx context.Context, fn func(Event) error) error {
	_, err := l.store.Log(ctx, "", fn)
	return err
}

// Accounts lists every account, ordered by id bytes.
func (l *Ledger) Accounts(ctx context.Context) ([]Account, error) {
	return l.store.Accounts(ctx)
}

// Audit reads every account and the running totals at one point, so the
// figures are consistent with each other.
func (l *Ledger) Audit(ctx context.Context) (Audit, error) {
	a := Audit{TS: l.rules.clock.Now()}
	accts, tot, err := l.store.Snapshot(ctx)
	if err != nil {
		return a, err
	}
	a.Deposits, a.Withdrawals = tot.Deposits, tot.Withdrawals
	for _, acct := range accts {
		acct.PINHash = nil
		a.Accounts = append(a.Accounts, acct)
		a.Total += acct.Balance
		if acct.Balance < 0 {
			a.Negative = append(a.Negative, acct.ID)
		}
	}
	return a, nil
}

// Verify checks the event log from the newest checkpoint, all read at one
// point: the chain of hashes from the heads the checkpoint recorded, and
// the replay from its balances and totals, in (ts, proc) order, to the
// stored state (see Replay). It reads no event before the checkpoint, so
// its cost is the log's since then. Without a checkpoint, it checks the
// whole log, as VerifyFull does. The error names the first mismatch: the
// record, its event's timestamp and process id.
func (l *Ledger) Verify(ctx context.Context) (VerifyReport, error) { return l.verify(ctx, false) }

// VerifyFull checks the whole event log, from its first event, as Verify
// does from a checkpoint: every record's hash, every event replayed, and
// every checkpoint met checked against its stored state.
func (l *Ledger) VerifyFull(ctx context.Context) (VerifyReport, error) { return l.verify(ctx, true) }

// VerifyArchived checks the whole history of a bank whose oldest records
// were archived: archived feeds the replay the archived records, oldest
// first (Replay.Link for each, then Replay.Event for its events); the live
// log follows from its first record, chained to the last archived one, and
// is checked as VerifyFull checks it.
func (l *Ledger) VerifyArchived(ctx context.Context, archived func(*Replay) error) (VerifyReport, error) {
	return l.verifyWith(ctx, true, archived)
}

func (l *Ledger) verify(ctx context.Context, full bool) (VerifyReport, error) {
	return l.verifyWith(ctx, full, nil)
}

func (l *Ledger) verifyWith(ctx context.Context, full bool, archived func(*Replay) error) (VerifyReport, error) {
	r := NewReplay()
	r.State = func(ts uint64, proc string) ([]byte, error) { return l.store.CheckpointState(ctx, ts, proc) }
	if archived != nil {
		if err := archived(r); err != nil {
			return r.Report, err
		}
	}
	if !full {
		c, err := l.store.LastCheckpoint(ctx)
		if err != nil {
			return r.Report, err
		}
		if c != nil {
			if err := r.StartFrom(c); err != nil {
				return r.Report, err
			}
		}
	}
	accts, tot, err := l.store.Replay(ctx, r)
	if err == nil {
		err = r.Finish()
	}
	if err == nil {
		err = r.Compare(accts, tot)
	}
	return r.Report, err
}

// Checkpoint writes a checkpoint: an event of the log that records the
// bank's state at its point (the totals, every balance, the clock and
// the chain's hashes), stored in full beside the log in the same
// transaction (see Checkpoint). It returns the state and its event.
func (l *Ledger) Checkpoint(ctx context.Context) (Checkpoint, Event, error) {
	res, err := l.do(ctx, Op{Kind: KindCheckpoint, Meta: Meta{Client: l.ProcessID()}})
	if err != nil || res.Checkpoint == nil {
		return Checkpoint{}, res.Receipt.Event, err
	}
	return *res.Checkpoint, res.Receipt.Event, nil
}

// counted counts the events an operation logged toward the next
// checkpoint (Options.CheckpointEvery), and starts one, in the background,
// once there are enough and none is running.
func (l *Ledger) counted(o *Op, res *Result) {
	every := l.rules.opts.CheckpointEvery
	if every <= 0 || o.Kind == KindCheckpoint {
		return
	}
	n := int64(1)
	if o.Kind == OpRecord {
		n = int64(len(res.Events))
	}
	if l.sinceCheckpoint.Add(n) < int64(every) || !l.checkpointing.CompareAndSwap(false, true) {
		return
	}
	l.sinceCheckpoint.Store(0)
	go func() {
		defer l.checkpointing.Store(false)
		_, _, _ = l.Checkpoint(context.Background())
	}()
}
