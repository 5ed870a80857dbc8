package ui

import (
	"strings"
	"time"

	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// connectPage is shown until the ATM has a connection: which server, a
// spinner, and when nobody answers the reason and the next retry.
type connectPage struct {
	base
	addr     string
	dbPath   string // the embedded server's database
	attempt  int
	err      error         // last failure
	retryIn  time.Duration // wait before the next attempt (0: trying now)
	starting bool          // starting a server inside this ATM
	embedErr error         // why the embedded server could not start
}

type retryNowMsg struct{}

func (p *connectPage) Typing() bool { return false }
func (p *connectPage) applyStyles() {}
func (p *connectPage) Help() []key.Binding {
	k := p.c.keys
	return []key.Binding{k.Retry, k.Quit}
}

func (p *connectPage) Update(msg tea.Msg) (intent, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, p.c.keys.Retry) && p.err != nil {
		return retryNowMsg{}, nil
	}
	return nil, nil
}

func (p *connectPage) View() string {
	s, tr := p.c.styles, p.c.tr
	var b strings.Builder
	b.WriteString(s.PageTitle.Render(tr.T(i18n.ConnectTitle)) + "\n\n")
	switch {
	case p.starting:
		b.WriteString(p.c.spinner + " " + s.Text.Render(tr.T(i18n.ConnectStarting)) + "\n")
	case p.err == nil || p.retryIn == 0:
		b.WriteString(p.c.spinner + " " + s.Value.Render(p.addr) + "\n")
	default:
		b.WriteString(s.Dim.Render("· ") + s.Value.Render(p.addr) + "\n")
	}
	if p.err != nil {
		b.WriteString("\n" + p.wrap(s.Error, connectHeadline(tr, p.err)) + "\n")
		b.WriteString(p.wrap(s.Text, connectErrorText(tr, p.addr, p.err)) + "\n")
		if p.embedErr != nil {
			b.WriteString(p.wrap(s.Warning, tr.T(i18n.ConnectEmbedFailed, embedErrorText(tr, p.addr, p.dbPath, p.embedErr))) + "\n")
		}
		if p.retryIn > 0 {
			b.WriteString("\n" + p.wrap(s.Dim, tr.T(i18n.ConnectRetryIn, seconds(tr, p.retryIn), p.attempt+1)) + "\n")
		}
	}
	return b.String()
}
