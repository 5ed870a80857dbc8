// Package outcome is the vocabulary of what happens to a request: the
// sentinel errors of the bank (test them with errors.Is), their stable
// snake_case codes, stored in the event log and sent on the wire, and the
// one table between the two. It imports nothing of the system's own, so the
// client library and the ATM match the bank's refusals without the ledger.
package outcome

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors returned by the bank. Test them with errors.Is; the
// protocol maps each one to a stable code through Code and FromCode, and that
// table is the only place where the mapping lives.
var (
	ErrAccountNotFound   = errors.New("account not found")
	ErrWrongPIN          = errors.New("wrong PIN")
	ErrAccountLocked     = errors.New("account locked")
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrInvalidAmount     = errors.New("invalid amount")
	ErrSameAccount       = errors.New("cannot transfer to the same account")
	ErrLimitExceeded     = errors.New("amount exceeds the per-operation limit")
	ErrInvalidAccountID  = errors.New("invalid account id: use 1 to 20 digits")
	ErrInvalidPIN        = errors.New("invalid PIN: use 4 to 12 digits")
	ErrInvalidName       = errors.New("invalid holder name")
	ErrAccountExists     = errors.New("account already exists")
	ErrOverflow          = errors.New("balance would overflow")
	ErrDatabaseBusy      = errors.New("database is in use by another process (is a server running on it?)")
	ErrClosed            = errors.New("bank is closed")
	ErrInvalidRequestID  = errors.New("invalid request id")
	ErrInternal          = errors.New("internal error: the bank could not process the request")
	ErrRequestIDReused   = errors.New("request id already used for a different request")
	ErrReadOnly          = errors.New("the database is open read-only")
)

// codes is the single table between sentinel errors and their stable,
// snake_case codes. The event log stores these codes as outcomes and the
// protocol sends them on the wire.
var codes = []struct {
	err  error
	code string
}{
	{ErrAccountNotFound, "account_not_found"},
	{ErrWrongPIN, "wrong_pin"},
	{ErrAccountLocked, "account_locked"},
	{ErrInsufficientFunds, "insufficient_funds"},
	{ErrInvalidAmount, "invalid_amount"},
	{ErrSameAccount, "same_account"},
	{ErrLimitExceeded, "limit_exceeded"},
	{ErrInvalidAccountID, "invalid_account_id"},
	{ErrInvalidPIN, "invalid_pin"},
	{ErrInvalidName, "invalid_name"},
	{ErrAccountExists, "account_exists"},
	{ErrOverflow, "overflow"},
	{ErrDatabaseBusy, "database_busy"},
	{ErrClosed, "unavailable"},
	{ErrInvalidRequestID, "invalid_request_id"},
	{ErrInternal, codeInternal},
	{ErrRequestIDReused, "request_id_reused"},
	{ErrReadOnly, "read_only"},
}

// codeInternal is the code of an error that wraps no sentinel: an
// unexpected failure (a damaged record, a failed transaction).
const codeInternal = "internal"

// OutcomeOK is the outcome code of an event that succeeded.
const OutcomeOK = "ok"

// Code returns the stable code of err: "ok" for nil, the sentinel's code when
// err wraps one, and "internal" otherwise.
func Code(err error) string {
	if err == nil {
		return OutcomeOK
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return codeInternal
}

// FromCode returns the sentinel error for a code: nil for "ok" only. A code
// this table does not know (from a newer version, or a damaged record)
// gives an error that matches ErrInternal and names the code.
func FromCode(code string) error {
	if code == OutcomeOK {
		return nil
	}
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return &unknownCodeError{code: code}
}

// WithMessage returns err (a sentinel) with a message of its own, for a
// person: its text replaces the sentinel's, and errors.Is still finds the
// sentinel.
func WithMessage(err error, msg string) error { return &messageError{err: err, msg: msg} }

// messageError is a sentinel with a message of its own.
type messageError struct {
	err error
	msg string
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.err }

// unknownCodeError is FromCode's answer to a code it does not know.
type unknownCodeError struct{ code string }

func (e *unknownCodeError) Error() string {
	return fmt.Sprintf("internal error: unknown outcome code %q", e.code)
}

// Is reports whether target is ErrInternal.
func (e *unknownCodeError) Is(target error) bool { return target == ErrInternal }

// LockedError is returned for a login refused after too many wrong PINs:
// either this source (ATM) is locked out of the account until Until, or,
// when Every is set, the account is throttled to one attempt per Every and
// the next is allowed at Until. It matches ErrAccountLocked with errors.Is.
type LockedError struct {
	Until time.Time
	Every time.Duration // set for the account-wide throttle
}

func (e *LockedError) Error() string {
	at := e.Until.Local().Format("15:04:05")
	if e.Every > 0 {
		per := "a minute"
		if e.Every != time.Minute {
			per = "every " + e.Every.String()
		}
		return fmt.Sprintf("too many wrong PINs on this account from several ATMs; the bank accepts one attempt %s: try again at %s", per, at)
	}
	return fmt.Sprintf("too many wrong PINs from this ATM: it is locked out of this account until %s; other ATMs are not affected", at)
}

// Is reports whether target is ErrAccountLocked.
func (e *LockedError) Is(target error) bool { return target == ErrAccountLocked }

// WrongPINError is returned for a wrong PIN. It matches ErrWrongPIN with
// errors.Is and says how many attempts this source has left before it is
// locked out of the account.
type WrongPINError struct {
	AttemptsLeft int
}

func (e *WrongPINError) Error() string {
	if e.AttemptsLeft == 1 {
		return "wrong PIN: 1 attempt left before this ATM is locked out of the account"
	}
	return fmt.Sprintf("wrong PIN: %d attempts left before this ATM is locked out of the account", e.AttemptsLeft)
}

// Is reports whether target is ErrWrongPIN.
func (e *WrongPINError) Is(target error) bool { return target == ErrWrongPIN }
