// Package wire is the atm protocol as it stands on the connection: every
// message type and field, the line framing and its limits, the error codes
// and the statement and log entries, as PROTOCOL.md (beside this file)
// describes them. The client and the server both speak it; it knows nothing
// of either, nor of the ledger.
package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"time"

	"atm/bank/lamport"

	"atm/bank/money"
	"atm/bank/outcome"
)

// Version is the protocol version this package speaks. The server announces
// it in its greeting.
const Version = 1

// MaxTS is the largest timestamp a message may carry (2^53 − 1, exact in
// every JSON reader). A server never sends a larger one.
const MaxTS = lamport.MaxTS

// DefaultMaxLineBytes is the default maximum length of one line, without its
// newline.
const DefaultMaxLineBytes = 64 << 10

// DefaultAddr is the address the server listens on and the ATM dials by
// default.
const DefaultAddr = "127.0.0.1:7667"

// Message types. Requests use the operation name as their type.
const (
	TypeHello = "hello"
	TypeReply = "reply"
	TypeError = "error"
	TypePush  = "push"
	TypeBye   = "bye"
	// TypeLog is a page of the log a subscription sends as it commits
	// (a log request with Follow); TypeLogBehind ends a subscription
	// whose connection did not take its pages as fast as they came.
	TypeLog       = "log"
	TypeLogBehind = "log_behind"

	OpLogin       = "login"
	OpLogout      = "logout"
	OpBalance     = "balance"
	OpDeposit     = "deposit"
	OpWithdraw    = "withdraw"
	OpTransfer    = "transfer"
	OpStatement   = "statement"
	OpLookup      = "lookup"
	OpAudit       = "audit"        // operator only
	OpOpenAccount = "open_account" // operator only
	OpLog         = "log"          // operator only
)

// Push kinds: what changed the balance of the session's account. A push
// without "kind" is a PushTransferIn.
const (
	PushTransferIn  = "transfer_in"  // money arrived from another account
	PushDeposit     = "deposit"      // a deposit by another session on the account
	PushWithdraw    = "withdraw"     // a withdrawal by another session on the account
	PushTransferOut = "transfer_out" // a transfer out by another session on the account
)

// Statement and log page sizes.
const (
	DefaultStatementLimit = 20
	MaxStatementLimit     = 50
	DefaultLogLimit       = 100
	MaxLogLimit           = 1000
)

// Message is every message of the protocol, in both directions: one flat
// struct, fields omitted when they do not apply. See PROTOCOL.md.
type Message struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Op   string `json:"op,omitempty"`
	Proc string `json:"proc"`
	TS   uint64 `json:"ts"`

	// hello, bye
	Version   int    `json:"version,omitempty"`
	MaxLine   int    `json:"max_line,omitempty"`
	MaxAmount int64  `json:"max_amount,omitempty"`
	Message   string `json:"message,omitempty"`

	// requests
	PIN    string `json:"pin,omitempty"`
	Amount Amount `json:"amount,omitempty"`
	Before uint64 `json:"before,omitempty"`
	After  Cursor `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	Follow bool   `json:"follow,omitempty"` // log: keep sending the entries as they commit (and, in the reply, the subscription is on)
	Token  string `json:"token,omitempty"`
	Name   string `json:"name,omitempty"`
	Seen   []Seen `json:"seen,omitempty"` // receive reports (see Seen)

	// requests and replies
	Account string `json:"account,omitempty"`
	To      string `json:"to,omitempty"`

	// replies
	RecvTS    uint64       `json:"recv_ts,omitempty"`
	ApplyTS   uint64       `json:"apply_ts,omitempty"`
	Holder    string       `json:"holder,omitempty"`
	ToHolder  string       `json:"to_holder,omitempty"`
	Balance   *money.Cents `json:"balance,omitempty"`
	Entries   []Entry      `json:"entries,omitempty"`
	Next      Cursor       `json:"next,omitempty"`
	Duplicate bool         `json:"duplicate,omitempty"`
	Archived  bool         `json:"archived,omitempty"` // statement: older entries are archived

	// audit replies
	Accounts    []AccountInfo `json:"accounts,omitempty"`
	Total       *money.Cents  `json:"total,omitempty"`
	Deposits    *money.Cents  `json:"deposits,omitempty"`
	Withdrawals *money.Cents  `json:"withdrawals,omitempty"`
	Conserved   *bool         `json:"conserved,omitempty"`
	Negative    []string      `json:"negative,omitempty"`

	// errors
	Code         string    `json:"code,omitempty"`
	Until        time.Time `json:"until,omitzero"`
	AttemptsLeft *int      `json:"attempts_left,omitempty"`

	// pushes
	Kind       string `json:"kind,omitempty"`
	From       string `json:"from,omitempty"`
	FromHolder string `json:"from_holder,omitempty"`
}

// AccountInfo is one account in an audit reply.
type AccountInfo struct {
	ID      string      `json:"id"`
	Name    string      `json:"name"`
	Balance money.Cents `json:"balance"`
}

// CentsPtr returns a pointer to c, for the optional amount fields.
func CentsPtr(c money.Cents) *money.Cents { return &c }

// Amount is an amount as it stands on the wire: a JSON number, kept as
// its text until Cents reads it. Anything but a number (text such as
// "100" included) is refused when the message is decoded.
type Amount string

var amountType = reflect.TypeFor[Amount]()

// UnmarshalJSON accepts a JSON number token, or null for no amount.
func (a *Amount) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*a = ""
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*a = Amount(b)
	default:
		return &json.UnmarshalTypeError{Value: JSONKind(b), Type: amountType}
	}
	return nil
}

// MarshalJSON writes the amount as the number it holds.
func (a Amount) MarshalJSON() ([]byte, error) { return []byte(a), nil }

// JSONKind names the kind of a JSON value from its first byte.
func JSONKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// AmountOf is c as a wire amount.
func AmountOf(c money.Cents) Amount {
	return Amount(strconv.FormatInt(int64(c), 10))
}

// errAmount is returned by Cents; it wraps outcome.ErrInvalidAmount.
var errAmount = fmt.Errorf("%w: the amount must be a whole, positive number of cents", outcome.ErrInvalidAmount)

// Cents reads the amount in integer cents. A fraction, an exponent or a
// value outside int64 is invalid. Zero and negative values are passed on so
// that the bank records and refuses them.
func (n Amount) Cents() (money.Cents, error) {
	if n == "" {
		return 0, fmt.Errorf("%w: the amount is missing", outcome.ErrInvalidAmount)
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, errAmount
	}
	return money.Cents(v), nil
}

// ReadLine returns the next line without its "\n" (and a "\r" before it),
// refusing lines longer than max bytes. The returned slice is valid until the
// next call. A last line without a newline is returned with a nil error; the
// following call returns io.EOF.
func ReadLine(r *bufio.Reader, max int, scratch *[]byte) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		buf := append((*scratch)[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(buf) > max+1 {
				*scratch = buf[:0]
				return nil, ErrLineTooLong
			}
			line, err = r.ReadSlice('\n')
			buf = append(buf, line...)
		}
		*scratch = buf
		line = buf
	}
	if err != nil && (err != io.EOF || len(line) == 0) {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > max {
		return nil, ErrLineTooLong
	}
	return line, nil
}

// WrongFieldText says which field of a request has the wrong kind of value.
func WrongFieldText(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return "a field has the wrong kind of value"
	}
	want := "a string"
	switch {
	case te.Type == amountType:
		want = "a whole number of cents"
	case te.Type == nil:
	default:
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint, reflect.Int32, reflect.Uint32:
			want = "a whole number"
		case reflect.Bool:
			want = "true or false"
		case reflect.Slice:
			want = "a list"
		case reflect.Struct, reflect.Map:
			want = "an object"
		}
	}
	return fmt.Sprintf("field %q must be %s, not %s", te.Field, want, articled(te.Value))
}

func articled(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "":
		return "that value"
	}
	return "a " + kind
}
