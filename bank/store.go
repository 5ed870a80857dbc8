package bank

import (
	"context"
	"errors"

	"atm/bank/money"
)

// A Store keeps a ledger: it runs each operation through Rules.Apply on a
// View of its state and commits what the rules wrote. It holds no rule of
// the bank; Ledger is written on it once for every store.
type Store interface {
	// Do applies o to a view of the store (Rules.Apply) and commits it: the
	// result is durable when Do returns it. If ctx ends before o reaches
	// the store, nothing is applied; if it ends later, the error matches
	// ErrOutcomeUnknown. Result.Err is the operation's own refusal; the
	// error is a failure of the store.
	Do(ctx context.Context, o Op) (Result, error)
	// Committed reads account id whole, as last committed; nil when it does
	// not exist.
	Committed(ctx context.Context, id string) (*Account, error)
	// Accounts reads every account, ordered by id.
	Accounts(ctx context.Context) ([]Account, error)
	// Snapshot reads every account, ordered by id, and the totals, at one
	// point of the store's history.
	Snapshot(ctx context.Context) ([]Account, Totals, error)
	// Log calls fn for every event committed after the cursor (see
	// Cursor), read at one point, in (ts, proc) order, until fn returns
	// an error, which Log returns. It returns the cursor past the last
	// event for which fn returned nil: after itself when there was none.
	// A cursor this store does not give is an error matching
	// ErrBadCursor.
	Log(ctx context.Context, after Cursor, fn func(Event) error) (Cursor, error)
	// Appended returns a channel closed once events are committed after
	// the call: by this server, or by any server of a store several
	// share (it is also closed when the store closes). A reader of the
	// log waits on it, then reads on from its cursor.
	Appended() <-chan struct{}
	// Replay reads the log for Verify, from where r starts (r.From: each
	// chain after its head; a chain it does not name, or all of them when
	// it names none, from its first record): it calls r.Link for every
	// record, in its chain's order and before the record's events, and
	// r.Event for every event in (ts, proc) order. A store that keeps
	// where its chain ends tells r.End. It then returns the accounts and
	// totals as stored, all read at one point.
	Replay(ctx context.Context, r *Replay) ([]Account, Totals, error)
	// LastCheckpoint returns the newest checkpoint, nil when there is
	// none: its state as stored, and its event as the log holds it (an
	// error names the checkpoint when it is missing or cannot be read).
	LastCheckpoint(ctx context.Context) (*StoredCheckpoint, error)
	// CheckpointState returns the state stored by the checkpoint whose
	// event is at (ts, proc), or nil when there is none.
	CheckpointState(ctx context.Context, ts uint64, proc string) ([]byte, error)
	// Close ends the store: operations already handed to it are finished,
	// later ones fail with outcome.ErrClosed, and the clock is stored.
	Close() error
}

// A View is one operation's access to a store's state: it reads through
// the store's transaction (the state after every operation applied before
// this one) and collects the writes the store commits with it. The rules
// read first, then write; Append comes last.
type View interface {
	// Account reads account id for a money operation or a read: its id,
	// name and balance at least. It returns nil when there is none.
	Account(id string) (*Record, error)
	// Login reads account id whole, for a login: nil when there is none.
	Login(id string) (*Record, error)
	// Totals reads the sums of successful deposits and withdrawals.
	Totals() (Totals, error)
	// PutTotals writes them.
	PutTotals(Totals) error
	// Remembered returns the first event of money request req on account
	// id (a is the account as read, nil when it does not exist).
	Remembered(id string, a *Record, req string) (Event, bool, error)
	// Remember remembers e as the first event of request req on id.
	Remember(id string, a *Record, req string, e Event) error
	// Statement reads a page of a's statement entries, newest first: at
	// most limit with timestamps below before (0: from the newest).
	Statement(a *Record, before uint64, limit int) (StatementPage, error)
	// Append adds e to the log. a and to are the accounts the operation
	// read (nil when none): the store writes those Changed, and e is an
	// entry of their statements when entry is set.
	Append(e Event, entry bool, a, to *Record) error

	// Balances reads every account's balance, for a checkpoint; the
	// clock receives what the accounts record, as Account does. A store
	// that reads them at one point of its history returns the totals and
	// the heads of that point from Totals and Heads after it.
	Balances() ([]Balance, error)
	// Heads returns where each chain of the log stands before the
	// operation's events, for a checkpoint: the one chain of a store that
	// keeps one is named "". The checkpoint's event must be the first
	// record of its chain after these heads (a store that hashes records
	// of several events starts a record with it).
	Heads() ([]ChainHead, error)
	// PutCheckpoint stores a checkpoint's state (c encoded) with the
	// operation.
	PutCheckpoint(c *Checkpoint, state []byte) error
}

// StoredCheckpoint is a checkpoint as a store keeps it: its state
// (Checkpoint.Encode's bytes) and its event, read from the log.
type StoredCheckpoint struct {
	State []byte
	Event Event
}

// Record is an account as one operation reads and changes it.
type Record struct {
	Account
	// Whole is set when the record holds the whole account (read by
	// View.Login, or new), its PIN hash and wrong-PIN counts too.
	Whole bool
	// Changed is set by the rules when the operation changed the account:
	// its balance, or, Whole, its wrong-PIN counts.
	Changed bool
	// Store is the store's own bookkeeping of the account, from its read.
	Store any
}

// Totals are the sums of the successful deposits and withdrawals ever.
type Totals struct {
	Deposits    money.Cents `json:"deposits"`
	Withdrawals money.Cents `json:"withdrawals"`
}

// Op kinds that are not event kinds.
const (
	OpCreate Kind = "create" // an account opened; its event is a KindOpen
	OpRecord Kind = "record" // events recorded; each keeps its own kind
)

// Op is one operation handed to a store.
type Op struct {
	Kind   Kind
	Meta   Meta
	ID, To string
	Amount money.Cents
	// Opening marks the bank's own opening deposit, exempt from MaxAmount.
	Opening bool
	// PINOK: the PIN of a login matched (compared before the store).
	PINOK  bool
	Before uint64 // statement cursor
	Limit  int    // statement page size
	// Name and PINHash are a new account's; Refusal, when set, refuses it.
	Name    string
	PINHash []byte
	Refusal error
	Events  []Event // OpRecord's events
}

// Result is the outcome of an applied operation.
type Result struct {
	Receipt Receipt
	Page    StatementPage
	Events  []Event // OpRecord's events as recorded
	// Checkpoint is the state a checkpoint recorded.
	Checkpoint *Checkpoint
	Err        error // the operation's refusal, an outcome
}

// ErrDamaged is matched by the error of a View read that found a record
// it cannot decode. The rules log it as the operation's outcome
// ("internal"), so the attempt is in the log and a repeat of its request
// id gets it back; any other read error fails the operation with nothing
// written.
var ErrDamaged = errors.New("damaged record")

// Damaged marks err, a store's words for a record it cannot decode, as
// matching ErrDamaged; its message stays err's.
func Damaged(err error) error { return damagedError{err} }

type damagedError struct{ error }

func (d damagedError) Unwrap() error        { return d.error }
func (d damagedError) Is(target error) bool { return target == ErrDamaged }

// refusal sorts a read's error: a damaged record is the operation's
// refusal, anything else a failure of the store.
func refusal(err error) (refused, failed error) {
	if errors.Is(err, ErrDamaged) {
		return err, nil
	}
	return nil, err
}
