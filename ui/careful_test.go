package ui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"atm/netproto"
)

// panelText is the ATM panel's part of a frame line, inside its border.
func panelText(line string) (string, bool) {
	_, rest, ok := strings.Cut(line, "│ ")
	if !ok {
		return "", false
	}
	text, _, _ := strings.Cut(rest, "│")
	return text, true
}

// panelFlat is the text of the ATM panel with its lines joined and spaces
// collapsed, to find sentences however they wrap.
func panelFlat(out string) string {
	var parts []string
	for _, l := range strings.Split(out, "\n") {
		if text, ok := panelText(l); ok {
			parts = append(parts, text)
		}
	}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

func TestAmountHintAndErrors(t *testing.T) {
	eachLayout(t, func(t *testing.T, m *Model) {
		loggedIn(m)
		typeText(m, "2")
		mustContain(t, screen(t, m), "Examples: 50 · 50,5 · 1.234,56")
		typeText(m, "0,001")
		mustContain(t, screen(t, m), "✗ at most 2 decimal places")
		for range 5 {
			press(m, tea.KeyBackspace)
		}
		typeText(m, "12a")
		lines := strings.Split(screen(t, m), "\n")
		mark := -1
		for i, l := range lines {
			if strings.Contains(l, "✗ use only digits") {
				mark = i
				break
			}
		}
		if mark < 0 || mark+1 >= len(lines) {
			t.Fatalf("no error line:\n%s", strings.Join(lines, "\n"))
		}
		first, _ := panelText(lines[mark])
		next, ok := panelText(lines[mark+1])
		col := ansi.StringWidth(first[:strings.Index(first, "use only")])
		if !ok || strings.TrimSpace(next) == "" || !strings.HasPrefix(next, strings.Repeat(" ", col)) || next[col] == ' ' {
			t.Errorf("the error does not go on under its text (column %d):\n%s\n%s", col, lines[mark], lines[mark+1])
		}
		mustContain(t, panelFlat(strings.Join(lines, "\n")), "thousands dots, e.g. 1.234,56")
	})
}

// A message once replaced does not come back: after logging out, an empty
// Enter shows an error, and typing clears it to the hint, not to the
// goodbye.
func TestLoginNoticeDoesNotComeBack(t *testing.T) {
	eachLayout(t, func(t *testing.T, m *Model) {
		loggedIn(m)
		typeText(m, "6")
		mustContain(t, screen(t, m), "Logged out. Goodbye, Ana!")
		press(m, tea.KeyEnter)
		out := screen(t, m)
		mustContain(t, out, "Type your account number")
		mustNotContain(t, out, "Goodbye")
		typeText(m, "1")
		out = screen(t, m)
		mustNotContain(t, out, "Goodbye", "Type your account number")
		mustContain(t, out, "Enter moves to the PIN")

		// The same after the bank refuses the login.
		send(m, loginResultMsg{account: "1", err: &netproto.Error{Code: "account_not_found"}})
		mustContain(t, screen(t, m), "There is no account 1")
		m.login.notice = "The connection came back."
		m.goLogin()
		mustContain(t, screen(t, m), "The connection came back.")
		press(m, tea.KeyEnter)
		typeText(m, "4")
		mustNotContain(t, screen(t, m), "The connection came back.")
	})
}
