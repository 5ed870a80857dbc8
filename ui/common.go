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

// common is what every screen shares: styles, keys, the language, the size
// of the page area, the session and the spinner's frame.
type common struct {
	styles *Styles
	keys   *KeyMap
	tr     *i18n.Printer // every text on screen comes from it
	width  int           // page area inside the ATM panel
	height int
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

// page is one screen of the ATM panel.
type page interface {
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

// newInput returns a text field styled for the app.
func newInput(c *common, placeholder string, limit int) textinput.Model {
	in := textinput.New()
	in.Prompt = "› "
	in.Placeholder = placeholder
	in.CharLimit = limit
	in.SetStyles(c.styles.Input)
	in.SetWidth(max(10, c.width-4))
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

// wrap wraps text to the page width.
func wrap(c *common, st lipgloss.Style, text string) string {
	return st.Width(c.width).Render(text)
}

// wrapMarked wraps text that follows a mark such as "✗ " to the page width,
// with the lines after the first indented under the text, not at column 0.
func wrapMarked(c *common, st lipgloss.Style, mark, text string) string {
	w := ansi.StringWidth(mark)
	lines := strings.Split(st.Width(max(1, c.width-w)).Render(text), "\n")
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

// kv renders "label ..... value" across width.
func kv(c *common, label, value string) string {
	s := c.styles
	l := s.Label.Render(label)
	v := s.Value.Render(value)
	gap := max(1, c.width-lipgloss.Width(l)-lipgloss.Width(v))
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
