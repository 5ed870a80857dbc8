package wire

import (
	"time"

	"atm/bank/money"
)

// Entry is one event of the bank's log as the protocol carries it: in a
// statement (the account's own entries) and in the operator's log read
// (every event). See PROTOCOL.md §4.
type Entry struct {
	TS      uint64 `json:"ts"`      // the event's timestamp (for an operation, its apply event)
	Proc    string `json:"proc"`    // the server that recorded it
	Kind    string `json:"kind"`    // what happened: one of the Kind constants, or another event of the log
	Outcome string `json:"outcome"` // "ok" or an error code

	Account   string      `json:"account,omitempty"`
	To        string      `json:"to,omitempty"`
	Amount    money.Cents `json:"amount,omitempty"`
	Balance   money.Cents `json:"balance"`
	ToBalance money.Cents `json:"to_balance,omitempty"`

	ReqID    string `json:"req_id,omitempty"`
	Client   string `json:"client,omitempty"`
	ClientTS uint64 `json:"client_ts,omitempty"`
	RecvTS   uint64 `json:"recv_ts,omitempty"`
	ApplyTS  uint64 `json:"apply_ts,omitempty"`
	ReplyTS  uint64 `json:"reply_ts,omitempty"`
	OrigTS   uint64 `json:"orig_ts,omitempty"`
	// Origin, on a push of a change another server committed, is that
	// server's process id; OrigTS is the change's timestamp and RecvTS
	// this server's receive of it (PROTOCOL.md §4, log).
	Origin string `json:"origin,omitempty"`

	Detail string    `json:"detail,omitempty"`
	Wall   time.Time `json:"wall"`

	// Seen are the receive events the request's client reported with it
	// (see Seen): how it received earlier messages of this server.
	Seen []Seen `json:"seen,omitempty"`
}

// Seen is a receive event a client reports: it received the message this
// server sent with timestamp TS when its own clock became At (max(its
// clock, TS)+1). A client sends them with its next request, so that the
// server's log holds the receives of every process, not only its own.
type Seen struct {
	TS uint64 `json:"ts"` // the message's timestamp: the server's send event
	At uint64 `json:"at"` // the client's clock after the receive
}

// MaxSeen is the most receive reports one request may carry.
const MaxSeen = 64

// Kinds of entry. A statement lists the first four; the operator's log
// read carries every kind.
const (
	KindOpen     = "open"     // account opened
	KindDeposit  = "deposit"  // money in
	KindWithdraw = "withdraw" // money out
	KindTransfer = "transfer" // money from one account to another

	KindServerStart = "server_start"
	KindServerStop  = "server_stop"
	KindConnect     = "connect"
	KindDisconnect  = "disconnect"
	KindLogin       = "login"
	KindLock        = "lock"
	KindLogout      = "logout"
	KindBalance     = "balance"
	KindStatement   = "statement"
	KindLookup      = "lookup"
	KindPush        = "push"
	KindRetry       = "retry"
	KindAudit       = "audit"
)

// Limits on the fields a client sends.
const (
	MaxProcBytes      = 64
	MaxRequestIDBytes = 128
)

// ValidProc reports whether p is a process id a client may announce: 1 to
// 64 bytes of ASCII letters, digits and . _ : @ -.
func ValidProc(p string) bool {
	if p == "" || len(p) > MaxProcBytes {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidRequestID reports whether id is a request id: 1 to 128 bytes of
// printable ASCII without spaces.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
