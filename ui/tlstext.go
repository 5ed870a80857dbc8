package ui

import (
	"errors"
	"strings"

	"atm/netproto/client"
	"atm/netproto/wire"
	"atm/ui/i18n"
)

// connectHeadline is the first line of the connect screen after a failed
// attempt: a certificate that cannot be trusted is not a bank that is not
// answering.
func connectHeadline(tr *i18n.Printer, err error) string {
	switch {
	case errors.Is(err, client.ErrCertChanged):
		return tr.T(i18n.TLSHeadChanged)
	case errors.Is(err, client.ErrCertUntrusted):
		return tr.T(i18n.TLSHeadUntrusted)
	case errors.Is(err, client.ErrNotTLS), errors.Is(err, wire.ErrTLSRequired):
		return tr.T(i18n.TLSHeadMismatch)
	case errors.Is(err, client.ErrKnownServers):
		return tr.T(i18n.TLSHeadKnown)
	case errors.Is(err, wire.ErrStarting):
		return tr.T(i18n.ConnectBankStarting)
	}
	return tr.T(i18n.ConnectNoAnswer)
}

// tlsErrorText says, for a person, why a TLS connection to addr failed,
// and what to do; ok is false for errors that are not about TLS.
func tlsErrorText(tr *i18n.Printer, addr string, err error) (text string, ok bool) {
	var changed *client.CertChangedError
	switch {
	case errors.As(err, &changed):
		return tr.T(i18n.TLSChanged, changed.Known, changed.Got, changed.Addr, tildeHome(changed.File)), true
	case errors.Is(err, client.ErrCertUntrusted):
		return tr.T(i18n.TLSUntrusted, addr), true
	case errors.Is(err, client.ErrNotTLS):
		return tr.T(i18n.TLSNotTLS, addr), true
	case errors.Is(err, wire.ErrTLSRequired):
		hostport, _ := client.SplitScheme(addr)
		return tr.T(i18n.TLSRequired, addr, client.TLSScheme, hostport), true
	case errors.Is(err, client.ErrKnownServers):
		file, ferr := client.KnownServersFile()
		if ferr != nil {
			return tr.T(i18n.TLSNoConfigDir, client.KnownServersEnv), true
		}
		return tr.T(i18n.TLSKnownFile, tildeHome(file)), true
	}
	return "", false
}

// firstUseNotice is what the login screen says after the first connection
// to a TLS server: its fingerprint, now remembered, to compare with the one
// the bank's operator announces.
func firstUseNotice(tr *i18n.Printer, info *client.TLSInfo) string {
	if info == nil || !info.FirstUse {
		return ""
	}
	return tr.T(i18n.TLSFirstUse, info.Fingerprint, tildeHome(info.File))
}

// untrusted reports whether err refuses a server's certificate.
func untrusted(err error) bool {
	return errors.Is(err, client.ErrCertChanged) || errors.Is(err, client.ErrCertUntrusted)
}

// ConnectFailure says, for a person and in tr's language, why a command
// could not connect to the bank at addr and what to do: the connect
// screen's headline and explanation in one paragraph, never the Go error.
func ConnectFailure(tr *i18n.Printer, addr string, err error) string {
	return strings.TrimPrefix(connectHeadline(tr, err), "✗ ") + " " + connectErrorText(tr, addr, err)
}
