package ui

import (
	"errors"
	"net"
	"syscall"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank/outcome"
	"atm/ui/i18n"
)

// errConnClosed is why the connect screen shows after a connection that
// closed for good.
var errConnClosed = errors.New("the connection to the bank was closed")

// connectErrorText says, for a person, why the bank at addr could not be
// reached: never the Go error itself.
func connectErrorText(tr *i18n.Printer, addr string, err error) string {
	hostport, secure := client.SplitScheme(addr)
	host, _, splitErr := net.SplitHostPort(hostport)
	if splitErr != nil {
		host = addr
	}
	if text, ok := tlsErrorText(tr, addr, err); ok {
		return text
	}
	var dns *net.DNSError
	var pe *wire.Error
	var op *net.OpError
	switch {
	case errors.Is(err, errConnClosed):
		return tr.T(i18n.ErrConnClosed)
	case errors.Is(err, wire.ErrStarting):
		return tr.T(i18n.ErrStarting, addr)
	case errors.As(err, &dns):
		if dns.IsTimeout || dns.IsTemporary {
			return tr.T(i18n.ErrDNSTemporary, host)
		}
		return tr.T(i18n.ErrDNSUnknown, host)
	case errors.Is(err, syscall.ECONNREFUSED):
		return tr.T(i18n.ErrRefused, addr)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return tr.T(i18n.ErrUnreachable, addr)
	case errors.As(err, &pe):
		// The bank's own sentence is English: other languages say its
		// code, which never changes.
		if pe.Message != "" && tr.Lang() == i18n.English {
			return tr.T(i18n.ErrTurnedAway, addr, pe.Message)
		}
		return tr.T(i18n.ErrTurnedAwayCode, addr, pe.Code)
	case errors.As(err, &op) && op.Op == "dial":
		return tr.T(i18n.ErrDialTimeout, addr)
	case secure:
		return tr.T(i18n.TLSNotABank, addr)
	}
	// A connection was made, but what came back (or nothing) was not a
	// bank's greeting.
	return tr.T(i18n.ErrNotABank, addr)
}

// embedErrorText says why a server could not be started inside the ATM.
func embedErrorText(tr *i18n.Printer, addr, dbPath string, err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return tr.T(i18n.ErrEmbedAddrInUse, addr)
	case errors.Is(err, outcome.ErrDatabaseBusy):
		return tr.T(i18n.ErrEmbedDBBusy, tildeHome(dbPath))
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return tr.T(i18n.ErrEmbedDenied, addr, tildeHome(dbPath))
	}
	return tr.T(i18n.ErrEmbedDBOpen, tildeHome(dbPath))
}

// seconds writes a wait in whole seconds, rounded up: "1 s", "42 s".
func seconds(tr *i18n.Printer, d time.Duration) string {
	n := max(1, int64((d+time.Second-1)/time.Second))
	return tr.T(i18n.WaitSeconds, n)
}

// soonWait is the longest wait written in seconds; later times are written
// as a time of day.
const soonWait = 2 * time.Minute

// retryWhen says when something locked until `until` may be tried again,
// seen at now: "in 42 s" when it is soon, otherwise "at 15:04:05 -03", with
// the date when it is not today (in tr's language).
func retryWhen(tr *i18n.Printer, until, now time.Time) string {
	d := until.Sub(now)
	if d <= 0 {
		return tr.T(i18n.RetryNow)
	}
	if d <= soonWait {
		return tr.T(i18n.RetryIn, seconds(tr, d))
	}
	u, n := until.Local(), now.Local()
	if uy, um, ud := u.Date(); uy != n.Year() || um != n.Month() || ud != n.Day() {
		return tr.T(i18n.RetryAtOn, tr.Time(u), tr.Day(u))
	}
	return tr.T(i18n.RetryAt, tr.Time(u))
}
