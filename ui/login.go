package ui

import (
	"errors"
	"strings"
	"time"

	"atm/netproto/wire"

	"atm/bank/money"
	"atm/bank/outcome"
	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
)

// loginPage asks for the account number and the PIN (masked).
type loginPage struct {
	base
	account textinput.Model
	pin     textinput.Model
	focus   int    // 0 account, 1 PIN
	err     string // shown under the fields
	notice  string // neutral message (logged out, reconnected...)
}

type loginSubmitMsg struct{ account, pin string }

func newLoginPage(c *common) *loginPage {
	p := &loginPage{base: newBase(c)}
	p.account = newInput(c, c.tr.T(i18n.LoginAccountPlaceholder), 20)
	p.pin = newInput(c, c.tr.T(i18n.LoginPINPlaceholder), 12)
	p.pin.EchoMode = textinput.EchoPassword
	p.pin.EchoCharacter = '•'
	p.reset()
	return p
}

func (p *loginPage) SetSize(width, height int) {
	p.base.SetSize(width, height)
	p.account.SetWidth(width - 4)
	p.pin.SetWidth(width - 4)
}

// reset clears both fields and focuses the account number.
func (p *loginPage) reset() tea.Cmd {
	p.account.Reset()
	p.pin.Reset()
	return p.focusField(0)
}

func (p *loginPage) focusField(i int) tea.Cmd {
	p.focus = i
	if i == 0 {
		p.pin.Blur()
		return p.account.Focus()
	}
	p.account.Blur()
	return p.pin.Focus()
}

func (p *loginPage) applyStyles() {
	p.account.SetStyles(p.c.styles.Input)
	p.pin.SetStyles(p.c.styles.Input)
}

func (p *loginPage) Typing() bool { return true }

func (p *loginPage) Help() []key.Binding {
	k := p.c.keys
	return []key.Binding{k.Submit, k.NextField, k.QuitTyping}
}

// loginError turns a failed login into the message for the person and
// decides which field to clear.
func (p *loginPage) loginError(account string, err error) tea.Cmd {
	p.notice = "" // replaced by the error for good
	tr := p.c.tr
	var pe *wire.Error
	errors.As(err, &pe)
	locked := pe != nil && !pe.Until.IsZero()
	switch {
	case errors.Is(err, outcome.ErrAccountNotFound):
		p.err = tr.T(i18n.LoginNoAccount, account)
		return p.reset()
	case errors.Is(err, outcome.ErrWrongPIN):
		p.err = tr.T(i18n.LoginWrongPIN)
		if pe != nil && pe.AttemptsLeft > 0 {
			p.err = tr.T(i18n.LoginWrongPINLeft, pe.AttemptsLeft)
		}
		p.pin.Reset()
		return p.focusField(1)
	case errors.Is(err, outcome.ErrAccountLocked):
		p.err = tr.T(i18n.LoginLocked, account)
		if locked {
			p.err = tr.T(i18n.LoginLockedUntil, account, retryWhen(tr, pe.Until, time.Now()))
		}
		return p.reset()
	case errors.Is(err, wire.ErrTooManyAttempts):
		p.err = tr.T(i18n.LoginTooMany)
		if locked {
			p.err = tr.T(i18n.LoginTooManyUntil, retryWhen(tr, pe.Until, time.Now()))
		}
		p.pin.Reset()
		return p.focusField(1)
	case errors.Is(err, outcome.ErrInvalidAccountID):
		p.err = tr.T(i18n.LoginAccountDigits)
		return p.reset()
	case errors.Is(err, outcome.ErrInvalidPIN):
		p.err = tr.T(i18n.LoginPINDigits)
		p.pin.Reset()
		return p.focusField(1)
	}
	p.err = tr.T(i18n.LoginFailed, failureText(tr, wire.OpLogin, err, 0, ""))
	p.pin.Reset()
	return p.focusField(1)
}

func (p *loginPage) Update(msg tea.Msg) (intent, tea.Cmd) {
	in, cmd := p.update(msg)
	if p.err != "" {
		// An error replaces the notice for good: clearing the error shows
		// the hint, never a notice from before (such as "Logged out").
		p.notice = ""
	}
	return in, cmd
}

func (p *loginPage) update(msg tea.Msg) (intent, tea.Cmd) {
	k, isKey := msg.(tea.KeyPressMsg)
	if isKey {
		keys := p.c.keys
		switch {
		case key.Matches(k, keys.Submit):
			return p.submit()
		case key.Matches(k, keys.NextField), key.Matches(k, keys.PrevField):
			return nil, p.focusField(1 - p.focus)
		}
		if onlyDigits(msg) {
			p.err = p.c.tr.T(i18n.OnlyDigits)
			return nil, nil
		}
	}
	var cmd tea.Cmd
	if p.focus == 0 {
		p.account, cmd = p.account.Update(msg)
	} else {
		p.pin, cmd = p.pin.Update(msg)
	}
	if isKey && k.Text != "" {
		p.err = ""
	}
	return nil, cmd
}

// submit validates the fields locally and asks the root to log in.
func (p *loginPage) submit() (intent, tea.Cmd) {
	acc := strings.TrimSpace(p.account.Value())
	pin := p.pin.Value()
	if p.focus == 0 {
		if !money.ValidAccountID(acc) {
			p.err = p.c.tr.T(i18n.LoginTypeAccount)
			return nil, nil
		}
		p.err = ""
		return nil, p.focusField(1)
	}
	if !money.ValidAccountID(acc) {
		p.err = p.c.tr.T(i18n.LoginTypeAccount)
		return nil, p.focusField(0)
	}
	if len(pin) < 4 {
		p.err = p.c.tr.T(i18n.LoginPINLength)
		return nil, nil
	}
	p.err = ""
	p.notice = ""
	return loginSubmitMsg{account: acc, pin: pin}, nil
}

func (p *loginPage) View() string {
	s, tr := p.c.styles, p.c.tr
	var b strings.Builder
	b.WriteString(s.PageTitle.Render(tr.T(i18n.LoginTitle)) + "\n\n")
	b.WriteString(s.Field.Render(tr.T(i18n.LoginAccount)) + "\n")
	b.WriteString(p.account.View() + "\n\n")
	b.WriteString(s.Field.Render(tr.T(i18n.LoginPIN)) + "\n")
	b.WriteString(p.pin.View() + "\n\n")
	if p.err != "" {
		b.WriteString(p.wrapMarked(s.Error, "✗ ", p.err) + "\n")
	} else if p.notice != "" {
		b.WriteString(p.wrap(s.Warning, p.notice) + "\n")
	} else {
		b.WriteString(p.wrap(s.Hint, tr.T(i18n.LoginHint)) + "\n")
	}
	return b.String()
}
