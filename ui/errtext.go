package ui

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank/outcome"
)

// errConnClosed is why the connect screen shows after a connection that
// closed for good.
var errConnClosed = errors.New("the connection to the bank was closed")

// connectErrorText says, for a person, why the bank at addr could not be
// reached: never the Go error itself.
func connectErrorText(addr string, err error) string {
	hostport, secure := client.SplitScheme(addr)
	host, _, splitErr := net.SplitHostPort(hostport)
	if splitErr != nil {
		host = addr
	}
	if text, ok := tlsErrorText(addr, err); ok {
		return text
	}
	var dns *net.DNSError
	var pe *wire.Error
	var op *net.OpError
	switch {
	case errors.Is(err, errConnClosed):
		return "The connection to the bank was closed."
	case errors.As(err, &dns):
		if dns.IsTimeout || dns.IsTemporary {
			return fmt.Sprintf("The name %s could not be looked up just now: no answer from the name service.", host)
		}
		return fmt.Sprintf("%s is not a known host. Check the address.", host)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("Nothing is listening at %s. Is the bank's server running?", addr)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("%s cannot be reached from this computer.", addr)
	case errors.As(err, &pe):
		if pe.Message != "" {
			return fmt.Sprintf("The bank at %s turned the ATM away: %s.", addr, pe.Message)
		}
		return fmt.Sprintf("The bank at %s turned the ATM away (%s).", addr, pe.Code)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Sprintf("%s did not accept a connection in time.", addr)
	case secure:
		return fmt.Sprintf("%s did not complete a secure (TLS) connection like an atm bank.", addr)
	}
	// A connection was made, but what came back (or nothing) was not a
	// bank's greeting.
	return fmt.Sprintf("%s did not answer like an atm bank.", addr)
}

// embedErrorText says why a server could not be started inside the ATM.
func embedErrorText(addr, dbPath string, err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Sprintf("another program already uses %s.", addr)
	case errors.Is(err, outcome.ErrDatabaseBusy):
		return fmt.Sprintf("the database %s is in use by another program.", tildeHome(dbPath))
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Sprintf("this user may not use %s or %s.", addr, tildeHome(dbPath))
	}
	return fmt.Sprintf("the database %s could not be opened.", tildeHome(dbPath))
}

// seconds writes a wait in whole seconds, rounded up: "1 s", "42 s".
func seconds(d time.Duration) string {
	n := max(1, int64((d+time.Second-1)/time.Second))
	return strconv.FormatInt(n, 10) + " s"
}

// soonWait is the longest wait written in seconds; later times are written
// as a time of day.
const soonWait = 2 * time.Minute

// retryWhen says when something locked until `until` may be tried again,
// seen at now: "in 42 s" when it is soon, otherwise "at 15:04:05 -03", with
// the date when it is not today.
func retryWhen(until, now time.Time) string {
	d := until.Sub(now)
	if d <= 0 {
		return "now"
	}
	if d <= soonWait {
		return "in " + seconds(d)
	}
	u, n := until.Local(), now.Local()
	s := "at " + u.Format("15:04:05 MST")
	if uy, um, ud := u.Date(); uy != n.Year() || um != n.Month() || ud != n.Day() {
		s += " on " + u.Format("Mon 2 Jan 2006")
	}
	return s
}
