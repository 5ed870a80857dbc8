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

// Kind is the kind of an event of the log.
type Kind string

// Event kinds recorded in the log.
const (
	KindServerStart Kind = "server_start"
	KindServerStop  Kind = "server_stop"
	KindOpen        Kind = "open" // account created (balance 0)
	KindConnect     Kind = "connect"
	KindDisconnect  Kind = "disconnect"
	KindLogin       Kind = "login"
	KindLock        Kind = "lock" // a source locked out of an account, or the account throttled, after wrong PINs
	KindLogout      Kind = "logout"
	KindBalance     Kind = "balance"
	KindDeposit     Kind = "deposit"
	KindWithdraw    Kind = "withdraw"
	KindTransfer    Kind = "transfer"
	KindStatement   Kind = "statement"
	KindLookup      Kind = "lookup"
	KindPush        Kind = "push"
	KindRetry       Kind = "retry" // a repeated request id answered from the first outcome
	KindAudit       Kind = "audit" // the operator's audit of every account
	// KindCheckpoint is a checkpoint: the bank's state at its point,
	// stored beside the log (see Checkpoint). It is also the operation
	// that writes it (Ledger.Checkpoint).
	KindCheckpoint Kind = "checkpoint"
)

// IsMoney reports whether k is a money operation: a deposit, a withdrawal
// or a transfer. Their request ids are remembered (see
// Options.RememberRequests), and the successful ones are statement entries.
func (k Kind) IsMoney() bool {
	switch k {
	case KindDeposit, KindWithdraw, KindTransfer:
		return true
	}
	return false
}

// IsOperation reports whether k is the kind of an operation's own event:
// opening an account, a login, a money operation, one of the reads that
// are logged (balance, lookup, statement) or a checkpoint. Only the
// operation's method writes such an event: Record and RecordAll refuse it.
func (k Kind) IsOperation() bool {
	return k == KindOpen || k == OpCreate || k == KindLogin || k.IsMoney() || k.isRead() || k == KindCheckpoint
}

// isRead reports whether k is one of the reads that are logged.
func (k Kind) isRead() bool {
	switch k {
	case KindBalance, KindLookup, KindStatement:
		return true
	}
	return false
}

// Event is one record of the event log. TS is the server's Lamport timestamp
// of the event (for an operation, its apply event) and the log's key: events
// are stored and listed in TS order, which is the order the ledger applied
// them. Total order across processes is (TS, Proc).
type Event struct {
	TS      uint64 `json:"ts"`
	Proc    string `json:"proc"`
	Kind    Kind   `json:"kind"`
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
	OrigTS   uint64 `json:"orig_ts,omitempty"`   // for a retry: TS of the first outcome; for a push of Origin's change: its TS
	// Origin, for a push of a change another server committed (a bank
	// kept in etcd), is that server's process id: RecvTS is this
	// server's receive of the change, OrigTS the change's timestamp.
	Origin string `json:"origin,omitempty"`

	Detail string    `json:"detail,omitempty"`
	Wall   time.Time `json:"wall"`

	// Seen are the receive events the request's client reported with it:
	// how it received earlier messages of this server.
	Seen []Seen `json:"seen,omitempty"`
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
	// Seen are the receive events the client reported with the request;
	// they are kept in the request's record.
	Seen []Seen
}

// Seen is a receive event a client reported: it received this server's
// message with timestamp TS when its own clock became At.
type Seen struct {
	TS uint64 `json:"ts"`
	At uint64 `json:"at"`
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
// Archived says the page ends where the bank's online history does: older
// entries were archived (see package archive), and the operator has them.
type StatementPage struct {
	Entries  []Event
	Next     uint64
	Archived bool
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

// Add adds e, an entry of account id's statement, to a page of at most
// limit entries, newest first. Money received shows neither the payer's
// balance nor their request. Once the page is full, Add sets Next to the
// cursor of the page that starts at e and reports false.
func (p *StatementPage) Add(e Event, id string, limit int) bool {
	if len(p.Entries) == limit {
		p.Next = e.TS + 1
		return false
	}
	if e.Account != id {
		e.Balance, e.Client, e.ReqID, e.ClientTS, e.RecvTS, e.ReplyTS, e.Seen = 0, "", "", 0, 0, 0, nil
	}
	p.Entries = append(p.Entries, e)
	return true
}
