package ui

import (
	"errors"
	"fmt"

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
		return "✗ WARNING: the bank's certificate has changed. The ATM did not connect."
	case errors.Is(err, client.ErrCertUntrusted):
		return "✗ The bank's certificate is not trusted. The ATM did not connect."
	case errors.Is(err, client.ErrNotTLS), errors.Is(err, wire.ErrTLSRequired):
		return "✗ The bank and this ATM disagree about TLS."
	case errors.Is(err, client.ErrKnownServers):
		return "✗ The ATM could not check the bank's certificate."
	}
	return tr.T(i18n.ConnectNoAnswer)
}

// tlsErrorText says, for a person, why a TLS connection to addr failed,
// and what to do; ok is false for errors that are not about TLS.
func tlsErrorText(addr string, err error) (text string, ok bool) {
	var changed *client.CertChangedError
	switch {
	case errors.As(err, &changed):
		return fmt.Sprintf("Someone may be intercepting the connection, or the bank has a new certificate. Nothing was sent. "+
			"Remembered %s, now %s. Only if the bank's operator confirms the new one, delete the line for %s in %s.",
			changed.Known, changed.Got, changed.Addr, tildeHome(changed.File)), true
	case errors.Is(err, client.ErrCertUntrusted):
		return fmt.Sprintf("The certificate of %s is not signed for that address by the authority given with --ca. "+
			"Check the address and the --ca file.", addr), true
	case errors.Is(err, client.ErrNotTLS):
		return fmt.Sprintf("%s answers without TLS. Connect without tls:// (your PIN then crosses the network in clear), "+
			"or ask the bank's operator to start the server with --tls.", addr), true
	case errors.Is(err, wire.ErrTLSRequired):
		hostport, _ := client.SplitScheme(addr)
		return fmt.Sprintf("The bank at %s speaks TLS only. Connect with --server %s%s.", addr, client.TLSScheme, hostport), true
	case errors.Is(err, client.ErrKnownServers):
		file, ferr := client.KnownServersFile()
		if ferr != nil {
			return fmt.Sprintf("This computer has no config directory to remember bank certificates in. Set %s to a file, or use --known-servers FILE.", client.KnownServersEnv), true
		}
		return fmt.Sprintf("The list of known bank certificates, %s, could not be read or written. Check its permissions, or use --known-servers FILE.", tildeHome(file)), true
	}
	return "", false
}

// firstUseNotice is what the login screen says after the first connection
// to a TLS server: its fingerprint, now remembered, to compare with the one
// the bank's operator announces.
func firstUseNotice(info *client.TLSInfo) string {
	if info == nil || !info.FirstUse {
		return ""
	}
	return fmt.Sprintf("First connection to this bank: its certificate %s is now remembered in %s. "+
		"Compare it with the one the bank's operator announced; another will be refused.",
		info.Fingerprint, tildeHome(info.File))
}

// untrusted reports whether err refuses a server's certificate.
func untrusted(err error) bool {
	return errors.Is(err, client.ErrCertChanged) || errors.Is(err, client.ErrCertUntrusted)
}
