package ui

import (
	"strings"

	"atm/bank/money"
	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// common is what every screen shares: styles, keys, the language, the
// session and the spinner's frame. Each screen has its own size (base).
type common struct {
	styles *Styles
	keys   *KeyMap
	tr     *i18n.Printer // every text on screen comes from it
	sess   *session
	// maxAmount is the bank's per-operation limit from its greeting (0:
	// unknown, the bank alone checks).
	maxAmount money.Cents
	// spinner is the root's spinner frame, for the screens that show one.
	spinner string
}

// session is the account this ATM is logged in to.
type session struct {
	account    string
	holder     string
	balance    money.Cents
	hasBalance bool
}

func (s *session) loggedIn() bool { return s.account != "" }

// intent is what a screen asks the root model to do for the person (log
// in, deposit, go back...). A screen returns it from Update; the root
// handles it at once, in the same update, so keys typed right after land on
// the screen it leads to.
type intent interface{ isIntent() }

func (retryNowMsg) isIntent()       {}
func (loginSubmitMsg) isIntent()    {}
func (menuChoiceMsg) isIntent()     {}
func (amountSubmitMsg) isIntent()   {}
func (lookupSubmitMsg) isIntent()   {}
func (transferSubmitMsg) isIntent() {}
func (statementMoreMsg) isIntent()  {}
func (backMsg) isIntent()           {}

// component is a part of the screen with a size of its own: its parent
// sets it, and sets it again on every resize, so that the component never
// reads its parent's size; it passes a size on to its own parts.
type component interface {
	SetSize(width, height int)
}

// base is what every screen embeds: what the screens share and the
// screen's own size, with the helpers that draw across its width.
type base struct {
	c             *common
	width, height int
}

func newBase(c *common) base { return base{c: c} }

// SetSize sets the screen's size, as its parent gives it.
func (b *base) SetSize(width, height int) { b.width, b.height = width, height }

// page is one screen of the ATM.
type page interface {
	component
	// Update handles msg and returns what the person asked for, if
	// anything, with the screen's own command.
	Update(tea.Msg) (intent, tea.Cmd)
	View() string
	// Help lists the keys of the screen for the help bar.
	Help() []key.Binding
	// Typing says the screen has a focused text field, so letters are input
	// and only ctrl+c quits.
	Typing() bool
	applyStyles()
}

// newInput returns a text field styled for the app; the screen that has it
// sets its width with its own size.
func newInput(c *common, placeholder string, limit int) textinput.Model {
	in := textinput.New()
	in.Prompt = "› "
	in.Placeholder = placeholder
	in.CharLimit = limit
	in.SetStyles(c.styles.Input)
	return in
}

// onlyDigits drops key presses that would put a non-digit in an account or
// PIN field, and reports whether it did.
func onlyDigits(msg tea.Msg) bool {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || k.Text == "" {
		return false
	}
	for _, r := range k.Text {
		if r < '0' || r > '9' {
			return true
		}
	}
	return false
}

// wrap wraps text to the screen's width.
func (b *base) wrap(st lipgloss.Style, text string) string {
	return st.Width(b.width).Render(text)
}

// wrapMarked wraps text that follows a mark such as "✗ " to the screen's
// width, with the lines after the first indented under the text, not at
// column 0.
func (b *base) wrapMarked(st lipgloss.Style, mark, text string) string {
	w := ansi.StringWidth(mark)
	lines := strings.Split(st.Width(max(1, b.width-w)).Render(text), "\n")
	pad := strings.Repeat(" ", w)
	for i := range lines {
		if i == 0 {
			lines[i] = st.Render(mark) + lines[i]
		} else {
			lines[i] = pad + lines[i]
		}
	}
	return strings.Join(lines, "\n")
}

// kv renders "label ..... value" across the screen's width.
func (b *base) kv(label, value string) string {
	s := b.c.styles
	l := s.Label.Render(label)
	v := s.Value.Render(value)
	gap := max(1, b.width-lipgloss.Width(l)-lipgloss.Width(v))
	return l + strings.Repeat(" ", gap) + v
}

// fitLines cuts or pads a block to exactly h lines of at most w cells.
func fitLines(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "…")
		}
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}
