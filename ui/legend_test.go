package ui

import (
	"strings"
	"testing"

	"atm/netproto/client"

	tea "charm.land/bubbletea/v2"
)

// boxLines blanks the lines of boxes.
var boxLines = strings.NewReplacer("│", " ", "╭", " ", "╰", " ", "─", " ", "╮", " ", "╯", " ")

// flat is the rendered screen as one line of words, without boxes.
func flat(t *testing.T, m *Model) string {
	t.Helper()
	return strings.Join(strings.Fields(boxLines.Replace(screen(t, m))), " ")
}

func TestClockLegend(t *testing.T) {
	eachLayout(t, func(t *testing.T, m *Model) {
		connected(m)
		send(m, clockEventsMsg{{Dir: "recv", Type: "hello", Before: 0, After: 15, Remote: 14, Peer: "bank"}})
		mustContain(t, screen(t, m), "? clock legend")
		typeText(m, "?")
		if m.login.account.Value() != "" || m.login.err != "" {
			t.Errorf("? reached the login form: field %q, error %q", m.login.account.Value(), m.login.err)
		}
		out := flat(t, m)
		mustContain(t, out, "The Lamport clock panel",
			"L this ATM's clock (atm-test)", "T the timestamp a message from the bank carries",
			"↑ a message this ATM sent: L goes to L+1", "↓ a message received from the bank: L goes to max(L,T)+1",
			"✓ the bank's answer: done", "✗ the bank's answer: refused", "▶ the newest event",
			"Why a new bank greets at T=14", "opened its default accounts, made their opening deposits and started its server",
			"already carries T=14", "This ATM's first greeting from the bank carried T=14.",
			"esc/? close the legend")
		mustNotContain(t, out, "LAMPORT CLOCK", "Please log in")
		press(m, tea.KeyEscape)
		out = screen(t, m)
		mustContain(t, out, "LAMPORT CLOCK", "Please log in")
		mustNotContain(t, out, "The Lamport clock panel")
		typeText(m, "?")
		mustContain(t, screen(t, m), "The Lamport clock panel")
		typeText(m, "?")
		mustNotContain(t, screen(t, m), "The Lamport clock panel")
	})
}

// The legend's key is in the help bar of every screen, even at 80 columns.
func TestLegendKeyOnEveryScreen(t *testing.T) {
	m := newTestModel(t, 80, 24, true)
	helpBar := func() string {
		lines := strings.Split(screen(t, m), "\n")
		return lines[len(lines)-1]
	}
	check := func(where string) {
		t.Helper()
		if h := helpBar(); !strings.Contains(h, "? clock legend") {
			t.Errorf("%s: help bar %q lacks the legend key", where, h)
		}
	}
	check("connecting")
	connected(m)
	check("login")
	loggedIn(m)
	check("menu")
	typeText(m, "2")
	check("deposit")
	press(m, tea.KeyEscape)
	typeText(m, "4")
	send(m, lookupResultMsg{account: "456", reply: client.Reply{Account: "456", Holder: "Bruno Lima"}})
	typeText(m, "50")
	press(m, tea.KeyEnter)
	check("transfer confirmation")
	typeText(m, "n")
	press(m, tea.KeyEscape)
	send(m, opResultMsg{op: "balance", reply: client.Reply{Balance: 100}})
	check("receipt")
	press(m, tea.KeyEnter)
	typeText(m, "5")
	send(m, statementResultMsg{reply: client.Reply{}})
	check("statement")
}
