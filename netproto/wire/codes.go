package wire

import (
	"errors"
	"fmt"
	"time"

	"atm/bank/outcome"
)

// Protocol-level error codes. Codes that describe a bank outcome
// (insufficient_funds, wrong_pin, ...) come from outcome.Code and are not
// repeated here.
const (
	CodeMalformed       = "malformed"         // the line is not a JSON object
	CodeBadRequest      = "bad_request"       // a field is missing or has the wrong shape
	CodeUnknownType     = "unknown_type"      // the message type is not part of this protocol version
	CodeLineTooLong     = "line_too_long"     // the line exceeds the maximum; the server closes the connection
	CodeNotLoggedIn     = "not_logged_in"     // the operation needs a session bound to an account
	CodeAlreadyLoggedIn = "already_logged_in" // login on a session that is already bound
	CodeTooManyAttempts = "too_many_attempts" // login attempted before the per-connection delay elapsed
	CodeForbidden       = "forbidden"         // operator operation without the right token, or a foreign account id
	CodeServerBusy      = "server_busy"       // too many connections; the server closes the connection
	CodeShuttingDown    = "shutting_down"     // the server is stopping; the connection closes
	CodeIdleTimeout     = "idle_timeout"      // no request for too long; the connection closes
	CodeInternal        = "internal"          // an unexpected server failure; nothing was applied
	CodeTLSRequired     = "tls_required"      // a plain client at a TLS port; sent in clear, then the connection closes
	// CodeStarting: the server is still opening its bank; it says so
	// instead of the greeting, then closes the connection. The line carries
	// neither ts nor proc: the server has no clock yet (the clock is
	// restored from the store being opened), so it is not a Lamport event.
	CodeStarting = "starting"
	// CodeInvalidTimestamp: "ts" is outside 0..MaxTS, or further above the
	// server's clock than the connection may jump it; it is not observed.
	CodeInvalidTimestamp = "invalid_timestamp"
)

// Errors for the protocol-level codes. An *Error received from the server
// matches the one for its code with errors.Is, exactly like bank errors match
// the bank's sentinels.
var (
	ErrMalformed       = errors.New("malformed message")
	ErrBadRequest      = errors.New("bad request")
	ErrUnknownType     = errors.New("unknown message type")
	ErrLineTooLong     = errors.New("line too long")
	ErrNotLoggedIn     = errors.New("not logged in")
	ErrAlreadyLoggedIn = errors.New("already logged in")
	ErrTooManyAttempts = errors.New("too many login attempts")
	ErrForbidden       = errors.New("forbidden")
	ErrServerBusy      = errors.New("server busy")
	ErrShuttingDown    = errors.New("server shutting down")
	ErrIdleTimeout     = errors.New("idle timeout")
	ErrTLSRequired     = errors.New("the server requires TLS")
	// ErrStarting matches a starting error: the server is up but its bank
	// is not open yet. Nothing was sent to the bank; try again shortly, as
	// with a server that is not there yet.
	ErrStarting = errors.New("the bank is starting")
	// ErrInternal is the bank's: an internal failure is the same error
	// whether the ledger or the server met it.
	ErrInternal = outcome.ErrInternal
	// ErrInvalidTimestamp matches an invalid_timestamp error.
	ErrInvalidTimestamp = errors.New("invalid timestamp")
)

// protoCodes is the one table between protocol-level codes and their errors.
// Bank outcomes are mapped by outcome.Code and outcome.FromCode only.
var protoCodes = []struct {
	code string
	err  error
}{
	{CodeMalformed, ErrMalformed},
	{CodeBadRequest, ErrBadRequest},
	{CodeUnknownType, ErrUnknownType},
	{CodeLineTooLong, ErrLineTooLong},
	{CodeNotLoggedIn, ErrNotLoggedIn},
	{CodeAlreadyLoggedIn, ErrAlreadyLoggedIn},
	{CodeTooManyAttempts, ErrTooManyAttempts},
	{CodeForbidden, ErrForbidden},
	{CodeServerBusy, ErrServerBusy},
	{CodeShuttingDown, ErrShuttingDown},
	{CodeIdleTimeout, ErrIdleTimeout},
	{CodeTLSRequired, ErrTLSRequired},
	{CodeStarting, ErrStarting},
	{CodeInvalidTimestamp, ErrInvalidTimestamp},
}

// ErrorForCode returns the sentinel for a code: the protocol's when it is a
// protocol-level code, the bank's otherwise (outcome.FromCode: an unknown code
// gives an error matching ErrInternal), nil for "ok".
func ErrorForCode(code string) error {
	for _, c := range protoCodes {
		if c.code == code {
			return c.err
		}
	}
	return outcome.FromCode(code)
}

// Error is an error reply from the server. It matches the sentinel of its
// code with errors.Is: errors.Is(err, outcome.ErrInsufficientFunds) holds for an
// Error whose Code is "insufficient_funds", and errors.Is(err,
// ErrNotLoggedIn) for one whose Code is "not_logged_in".
type Error struct {
	Code    string // stable snake_case code
	Message string // a sentence for a person
	// Until is set for account_locked (when the lock ends) and
	// too_many_attempts (when the next login may be tried).
	Until time.Time
	// AttemptsLeft is set for wrong_pin: attempts before the account locks.
	AttemptsLeft int
	// TS is the server's timestamp on the error message.
	TS uint64
	// RecvTS and ApplyTS are the server's receive and apply events of a
	// request the bank ran and refused (0 for errors of the server's own).
	RecvTS, ApplyTS uint64
	// ID and Op echo the request that failed (empty for a line the server
	// could not parse).
	ID, Op string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// Is reports whether target is the sentinel error of e's code, or an *Error
// with the same code.
func (e *Error) Is(target error) bool {
	if t, ok := target.(*Error); ok {
		return t.Code == e.Code
	}
	s := ErrorForCode(e.Code)
	return s != nil && errors.Is(s, target)
}

// ErrorFrom builds an *Error from an error or bye message.
func ErrorFrom(m *Message) *Error {
	e := &Error{Code: m.Code, Message: m.Message, Until: m.Until, TS: m.TS, ID: m.ID, Op: m.Op,
		RecvTS: m.RecvTS, ApplyTS: m.ApplyTS}
	if m.AttemptsLeft != nil {
		e.AttemptsLeft = *m.AttemptsLeft
	}
	if e.Code == "" {
		e.Code = CodeInternal
	}
	return e
}
