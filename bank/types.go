package bank

import (
	"time"

	"atm/bank/money"
)

// Account is one holder's account as stored.
type Account struct {
	ID      string      `json:"id"`
	Name    string      `json:"name"`
	PINHash []byte      `json:"pin_hash"`
	Balance money.Cents `json:"balance"`
	// FailedPINs counts the wrong PINs in a row on the account, from any
	// source, since its last successful login.
	FailedPINs int `json:"failed_pins,omitempty"`
	// LockedUntil is the account-wide throttle: once FailedPINs reaches
	// Options.ThrottleAfter, no login attempt is accepted before it.
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// Sources are the wrong-PIN counts and lockouts of the sources that
	// failed recently, the most recent last, at most MaxSources.
	Sources []SourceFailures `json:"sources,omitempty"`
	Created time.Time        `json:"created"`
}

// MaxSources bounds Account.Sources; the oldest source is forgotten first.
const MaxSources = 32

// SourceFailures are the wrong PINs of one source (Meta.Source) on an
// account: the count in a row, and until when the source is locked out.
type SourceFailures struct {
	Source      string    `json:"source"`
	FailedPINs  int       `json:"failed_pins,omitempty"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// Event kinds recorded in the log.
const (
	KindServerStart = "server_start"
	KindServerStop  = "server_stop"
	KindOpen        = "open" // account created (balance 0)
	KindConnect     = "connect"
	KindDisconnect  = "disconnect"
	KindLogin       = "login"
	KindLock        = "lock" // a source locked out of an account, or the account throttled, after wrong PINs
	KindLogout      = "logout"
	KindBalance     = "balance"
	KindDeposit     = "deposit"
	KindWithdraw    = "withdraw"
	KindTransfer    = "transfer"
	KindStatement   = "statement"
	KindLookup      = "lookup"
	KindPush        = "push"
	KindRetry       = "retry" // a repeated request id answered from the first outcome
	KindAudit       = "audit" // the operator's audit of every account
)

// Event is one record of the event log. TS is the server's Lamport timestamp
// of the event (for an operation, its apply event) and the log's key: events
// are stored and listed in TS order, which is the order the ledger applied
// them. Total order across processes is (TS, Proc).
type Event struct {
	TS      uint64 `json:"ts"`
	Proc    string `json:"proc"`
	Kind    string `json:"kind"`
	Outcome string `json:"outcome"` // "ok" or an error code (see outcome.Code)

	Account   string      `json:"account,omitempty"`
	To        string      `json:"to,omitempty"` // transfer recipient, push sender
	Amount    money.Cents `json:"amount,omitempty"`
	Balance   money.Cents `json:"balance"`              // Account's balance after the event
	ToBalance money.Cents `json:"to_balance,omitempty"` // To's balance after a transfer

	ReqID    string `json:"req_id,omitempty"`
	Client   string `json:"client,omitempty"`    // the peer's process id
	ClientTS uint64 `json:"client_ts,omitempty"` // timestamp the request carried
	RecvTS   uint64 `json:"recv_ts,omitempty"`   // server's receive event
	ApplyTS  uint64 `json:"apply_ts,omitempty"`  // server's apply event (= TS)
	ReplyTS  uint64 `json:"reply_ts,omitempty"`  // server's reply (send) event
	OrigTS   uint64 `json:"orig_ts,omitempty"`   // for a retry: TS of the first outcome

	Detail string    `json:"detail,omitempty"`
	Wall   time.Time `json:"wall"`
}

// Meta is what the server knows of a request when it hands it to the bank.
type Meta struct {
	ReqID    string // client-chosen request id (required for mutations)
	Client   string // client process id
	ClientTS uint64 // Lamport timestamp carried by the request
	RecvTS   uint64 // server timestamp of the receive event
	// Source is who is trying, for counting wrong PINs: the server sets it
	// to the client's process id and address, e.g. "atm-7f3a@127.0.0.1".
	// When empty, Client stands for it.
	Source string
}

// Receipt is the outcome of an operation. Event is the record exactly as it
// was committed (for a repeated request id, the first one's record), and
// Duplicate says the request id had been seen and nothing was applied again.
type Receipt struct {
	Event     Event
	Duplicate bool
	// ReplyTS is the timestamp the reply must carry. For a first execution
	// it equals Event.ReplyTS; for a duplicate it is the retry's own.
	ReplyTS uint64
	// Holder is the holder's name, for login and lookup.
	Holder string
}

// StatementPage is one page of an account's entries, newest first. Next is
// the cursor for the following page (pass it as before), 0 when there is none.
type StatementPage struct {
	Entries []Event
	Next    uint64
}

// Audit is a consistent read of every account, taken in one transaction.
type Audit struct {
	TS          uint64 // clock value when the audit was taken
	Accounts    []Account
	Total       money.Cents // sum of balances
	Deposits    money.Cents // sum of successful deposits ever
	Withdrawals money.Cents // sum of successful withdrawals ever
	Negative    []string
}

// Conserved reports whether money is conserved and no balance is negative.
func (a Audit) Conserved() bool {
	return a.Total == a.Deposits-a.Withdrawals && len(a.Negative) == 0
}
