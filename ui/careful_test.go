package ui

import (
	"strings"
	"testing"

	"atm/netproto/client"
	"atm/netproto/wire"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// gateShown is the confirmation gate of the screen shown, if any.
func gateShown(m *Model) *confirmGate {
	switch {
	case m.page == pageAmount && m.amount.confirm:
		return &m.amount.gate
	case m.page == pageTransfer && m.transfer.step == stepConfirm:
		return &m.transfer.gate
	}
	return nil
}

// readyConfirm delivers the message the confirmation's timer sends once it
// has been on screen long enough.
func readyConfirm(m *Model) {
	if g := gateShown(m); g != nil {
		send(m, confirmReadyMsg{gate: g, id: g.id})
	}
}

// confirmNow lets the confirmation on screen become ready and answers y.
func confirmNow(m *Model) {
	readyConfirm(m)
	typeText(m, "y")
}

// Money moves only on y, once the confirmation has been on screen: a second
// Enter or a y typed before it appeared does nothing, Enter on it does not
// send, n goes back with the amount kept.
func TestConfirmMovesMoneyOnlyOnY(t *testing.T) {
	t.Parallel()
	flows := []struct {
		name    string
		start   func(m *Model)
		title   string
		details []string
		sending string
	}{
		{"deposit", func(m *Model) { typeText(m, "2") }, "Confirm the deposit",
			[]string{"123 · Ana Souza", "R$ 50,00", "Deposit R$ 50,00 into your account?"}, "Sending the deposit…"},
		{"withdrawal", func(m *Model) { typeText(m, "3") }, "Confirm the withdrawal",
			[]string{"123 · Ana Souza", "R$ 50,00", "Withdraw R$ 50,00 from your account?"}, "Sending the withdrawal…"},
		{"transfer", func(m *Model) {
			typeText(m, "4")
			typeText(m, "456")
			press(m, tea.KeyEnter)
			send(m, lookupResultMsg{account: "456", reply: client.Reply{Account: "456", Holder: "Bruno Lima"}})
		}, "Confirm the transfer", []string{"456 · Bruno Lima", "R$ 50,00", "Send R$ 50,00 to Bruno Lima?"}, "Sending the transfer…"},
	}
	for _, f := range flows {
		t.Run(f.name, func(t *testing.T) {
			eachLayout(t, func(t *testing.T, m *Model) {
				loggedIn(m)
				f.start(m)
				typeText(m, "50")
				press(m, tea.KeyEnter)
				// Keys already typed when the confirmation appears.
				press(m, tea.KeyEnter)
				typeText(m, "y")
				if m.busy != "" {
					t.Fatal("keys typed before the confirmation was ready sent the money")
				}
				out := screen(t, m)
				mustContain(t, out, f.title)
				mustContain(t, out, f.details...)
				mustContain(t, out, "y confirm • n back")
				mustContain(t, panelFlat(out), "Read the details; y works in a moment.", "2 keys typed before this appeared were ignored.")
				mustNotContain(t, out, "Press y")

				readyConfirm(m)
				out = panelFlat(screen(t, m))
				mustContain(t, out, "Press y to confirm, or n to change the amount.")
				mustContain(t, out, "were ignored") // until the next key
				mustNotContain(t, out, "in a moment")
				press(m, tea.KeyEnter)
				if m.busy != "" {
					t.Fatal("enter on the confirmation sent the money")
				}
				out = panelFlat(screen(t, m))
				mustContain(t, out, "Enter does not confirm: press y to go ahead, or n to go back.")
				mustNotContain(t, out, "were ignored")

				typeText(m, "n")
				out = screen(t, m)
				mustNotContain(t, out, f.title)
				mustContain(t, out, "R$ › 50", "= R$ 50,00")

				// A new confirmation is not made ready by the old timer.
				press(m, tea.KeyEnter)
				old := *gateShown(m)
				send(m, confirmReadyMsg{gate: gateShown(m), id: old.id - 1})
				typeText(m, "y")
				if m.busy != "" {
					t.Fatal("the timer of an earlier confirmation made this one ready")
				}
				press(m, tea.KeyEscape)
				press(m, tea.KeyEnter)
				confirmNow(m)
				if m.busy == "" {
					t.Fatal("y on the ready confirmation did not send")
				}
				out = screen(t, m)
				mustContain(t, out, f.sending, f.title)
				mustNotContain(t, out, "Press y")
			})
		})
	}
}

// Keys typed while the bank looks up the recipient are applied to the
// amount once it is there: "1 Enter" gives the confirmation of R$ 1,00.
func TestKeysTypedDuringLookupAreKept(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		loggedIn(m)
		typeText(m, "4")
		typeText(m, "456")
		press(m, tea.KeyEnter)
		out := screen(t, m)
		mustContain(t, out, "Looking up account 456…", "typing kept for the next screen", "ctrl+c quit")
		mustNotContain(t, out, "enter continue")
		typeText(m, "1")
		press(m, tea.KeyEnter)
		mustContain(t, screen(t, m), "kept for the next screen (2 so far)")
		send(m, lookupResultMsg{account: "456", reply: client.Reply{Account: "456", Holder: "Bruno Lima"}})
		out = screen(t, m)
		mustContain(t, out, "Confirm the transfer", "R$ 1,00", "Send R$ 1,00 to Bruno Lima?", "y confirm")
		if m.busy != "" {
			t.Fatal("typed-ahead keys sent the money")
		}
	})
}

// Keys typed ahead meant the screen after a success: after a refusal, and
// on a receipt, they are not used, and the screen says so.
func TestKeysTypedAheadNotUsedAfterRefusalOrOnReceipt(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		loggedIn(m)
		typeText(m, "4")
		typeText(m, "999")
		press(m, tea.KeyEnter)
		typeText(m, "25")
		send(m, lookupResultMsg{account: "999", err: &wire.Error{Code: "account_not_found"}})
		out := screen(t, m)
		mustContain(t, out, "There is no account 999", "› 999")
		mustContain(t, panelFlat(out), "2 keys typed while waiting were not used.")
		mustNotContain(t, out, "99925")
		typeText(m, "0")
		mustNotContain(t, screen(t, m), "were not used")

		press(m, tea.KeyEscape)
		typeText(m, "2")
		typeText(m, "10")
		press(m, tea.KeyEnter)
		confirmNow(m)
		press(m, tea.KeyEnter)
		send(m, opResultMsg{op: opDeposit, amount: 1000, reply: client.Reply{Balance: 101000}})
		if m.page != pageReceipt {
			t.Fatalf("enter typed during the deposit left the receipt (page %v)", m.page)
		}
		mustContain(t, panelFlat(screen(t, m)), "Deposit done", "1 key typed while waiting was not used.")
	})
}

// The statement shows what it waits for, with a spinner.
func TestStatementLoadingShowsWait(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		loggedIn(m)
		typeText(m, "5")
		out := screen(t, m)
		mustContain(t, out, "Loading your statement…")
		if !strings.Contains(out, ansi.Strip(m.spinnerView())+" Loading") {
			t.Errorf("no spinner while loading:\n%s", out)
		}
		send(m, statementResultMsg{reply: client.Reply{}})
		mustNotContain(t, screen(t, m), "Loading your statement…")
	})
}

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
	t.Parallel()
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
	t.Parallel()
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
		send(m, loginResultMsg{account: "1", err: &wire.Error{Code: "account_not_found"}})
		mustContain(t, screen(t, m), "There is no account 1")
		m.login.notice = "The connection came back."
		m.goLogin()
		mustContain(t, screen(t, m), "The connection came back.")
		press(m, tea.KeyEnter)
		typeText(m, "4")
		mustNotContain(t, screen(t, m), "The connection came back.")
	})
}

// On a real server: keys typed in the same breath as the amount do not
// confirm, keys typed during the recipient lookup reach the amount, and the
// money moves once, on y.
func TestEndToEndCarefulCustomer(t *testing.T) {
	t.Parallel()
	addr, stop := startServer(t)
	a := startATM(t, "atm-care1", addr)
	a.waitFor("Please log in")
	a.typeKeys("123\r1234\r")
	a.waitFor("What would you like to do?", "Ana Souza", "R$ 1.000,00")

	a.typeKeys("2")
	a.waitFor("Amount to deposit")
	a.typeKeys("50\r\ry")
	s := a.waitFor("Confirm the deposit", "keys typed before this appeared were ignored", "Press y to confirm")
	mustNotContain(t, s, "Deposit done", "R$ 1.050,00")
	a.typeKeys("y")
	a.waitFor("✓ Deposit done", "R$ 1.050,00")

	a.typeKeys("\r")
	a.waitFor("What would you like to do?")
	a.typeKeys("4")
	a.waitFor("Recipient's account")
	a.typeKeys("456\r25\r")
	a.waitFor("Confirm the transfer", "Send R$ 25,00 to Bruno Lima?", "Press y to confirm")
	a.typeKeys("y")
	a.waitFor("✓ Transfer done", "R$ 1.025,00")
	a.quit()
	stop()
}
