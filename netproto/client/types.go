package client

import (
	"fmt"
	"time"

	"atm/netproto/wire"

	"atm/bank/money"
)

// Hello is the server's greeting, the first line of every connection.
type Hello struct {
	Server  string // the server's process id
	Addr    string // the address this connection was dialled at
	Version int    // protocol version
	TS      uint64 // the server's timestamp on the greeting (its send tick)
	MaxLine int    // the longest line the server accepts, in bytes
	// MaxAmount is the bank's per-operation limit, so that an ATM can refuse
	// a larger amount before sending it (0 if the server did not say).
	MaxAmount money.Cents
	Message   string // "connection established"
	// TLS describes the connection's TLS: nil over plain TCP.
	TLS *TLSInfo
}

// Reply is a successful answer to a request. Fields that do not apply to the
// operation are zero.
type Reply struct {
	ID, Op string
	// TS is the server's timestamp on the reply (its send event).
	TS uint64
	// SentTS is this client's clock value carried by the request (the last
	// send, when the request was resent after a reconnect).
	SentTS uint64
	// RecvTS is this client's clock after observing the reply.
	RecvTS uint64
	// ServerRecv and ServerApply are the server's receive and apply
	// timestamps of the request.
	ServerRecv, ServerApply uint64

	Account, Holder string
	Balance, Amount money.Cents
	To, ToHolder    string
	Entries         []wire.Entry // statement, newest first
	Next            uint64       // statement cursor for the next page, 0 at the end
	// Archived says a statement ends where the bank's online history
	// does: older entries were archived.
	Archived bool
	// Duplicate says the request id had already been applied: the reply
	// repeats the first outcome and nothing was applied again.
	Duplicate bool

	raw *wire.Message // the wire message, for fields a Reply does not carry
}

// Push is a notification the server sends without being asked: the balance
// of the account this session is logged in to changed. Kind says how:
// wire.PushTransferIn, money arrived from another account (From, FromHolder);
// or a change another session on the same account made: wire.PushDeposit,
// wire.PushWithdraw, wire.PushTransferOut (to To, ToHolder). A session is never
// pushed its own changes: their replies tell them.
type Push struct {
	Kind       string      // wire.PushTransferIn (also when the server did not say), wire.PushDeposit, wire.PushWithdraw, wire.PushTransferOut
	Account    string      // the account whose balance changed (this session's)
	From       string      // wire.PushTransferIn: the paying account
	FromHolder string      // its holder's name
	To         string      // wire.PushTransferOut: the recipient's account
	ToHolder   string      // its holder's name
	Amount     money.Cents // the amount of the change (positive)
	// Balance is the account's balance after the change, when HasBalance:
	// the server leaves it out when it already sent this connection a newer
	// one.
	Balance    money.Cents
	HasBalance bool
	TS         uint64 // the server's timestamp on the push (its send tick)
	ApplyTS    uint64 // the server's apply timestamp of the change
	RecvTS     uint64 // this client's clock after observing the push
}

// ClockEvent describes one change of the client's Lamport clock: a message
// sent or received.
type ClockEvent struct {
	Dir           string // "send" or "recv"
	Type          string // message type on the wire: "hello", "login", "deposit", "reply", "error", "push", ...
	Op            string // for replies: the op answered
	ReqID         string
	Before, After uint64 // this process's clock before/after
	Remote        uint64 // recv: timestamp the message carried (After = max(Before, Remote)+1)
	Peer          string // the other process id
	// Reason is "" for a message the application asked for. The client's
	// own messages say why they were sent or received: ReasonReconnect,
	// ReasonRestore, ReasonResend, ReasonResume; and an application can
	// label its requests with WithReason.
	Reason string
}

// Reasons of the client's own messages (ClockEvent.Reason).
const (
	// ReasonReconnect: the greeting of a connection the client opened by
	// itself after the previous one broke.
	ReasonReconnect = "reconnect"
	// ReasonRestore: the login the client sent by itself after a reconnect
	// to restore the session, and its answer.
	ReasonRestore = "restore"
	// ReasonResend: a pending request sent again, with its id, after a
	// reconnect.
	ReasonResend = "resend"
	// ReasonResume: a log subscription (FollowLog) the client sent again
	// by itself from its cursor, after the server said the connection fell
	// behind or after a reconnect, and its answer.
	ReasonResume = "resume"
)

// ConnState is the state reported by a ConnStatus.
type ConnState int

// Connection states, in the order a reconnecting client goes through them.
const (
	// StateLost: the connection broke (Err says why). With Reconnect on,
	// StateReconnecting follows; otherwise StateClosed.
	StateLost ConnState = iota + 1
	// StateReconnecting: attempt number Attempt starts after Delay.
	StateReconnecting
	// StateReconnected: the connection is back, the session logged in again
	// if it was, and pending requests were resent. Err is set when the
	// login could not be restored (the session is then logged out).
	StateReconnected
	// StateClosed: the client is closed for good; the channel closes next.
	StateClosed
)

func (s ConnState) String() string {
	switch s {
	case StateLost:
		return "lost"
	case StateReconnecting:
		return "reconnecting"
	case StateReconnected:
		return "reconnected"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// ConnStatus is one change of the connection, delivered on Client.Status.
type ConnStatus struct {
	State   ConnState
	Attempt int           // StateReconnecting: 1, 2, ...
	Delay   time.Duration // StateReconnecting: wait before this attempt
	// Err is why the connection was lost or closed, why re-login failed,
	// or, StateReconnecting, why the previous attempt failed (the last
	// server's error; nil before the first attempt).
	Err error
	// Addr is the server's address: StateLost, the one whose connection
	// broke; StateReconnecting, the first the attempt tries; StateReconnected,
	// the one connected to now (another server of the bank after a failover).
	Addr string
}

// String is a short sentence for a status banner.
func (s ConnStatus) String() string {
	switch s.State {
	case StateLost:
		if s.Err != nil {
			return "connection to the bank lost: " + s.Err.Error()
		}
		return "connection to the bank lost"
	case StateReconnecting:
		return fmt.Sprintf("reconnecting to the bank (attempt %d, in %s)…", s.Attempt, s.Delay.Round(time.Millisecond))
	case StateReconnected:
		if s.Err != nil {
			return "reconnected, but the session could not be restored: " + s.Err.Error()
		}
		return "reconnected to the bank"
	case StateClosed:
		if s.Err != nil {
			return "disconnected from the bank: " + s.Err.Error()
		}
		return "disconnected from the bank"
	}
	return s.State.String()
}

// AuditReport is the reply to the operator's audit: a consistent read of
// every account.
type AuditReport struct {
	TS          uint64 // server clock when the audit was taken
	Accounts    []wire.AccountInfo
	Total       money.Cents
	Deposits    money.Cents
	Withdrawals money.Cents
	Conserved   bool
	Negative    []string
}
