package ui

import (
	"context"
	"fmt"
	"testing"

	"atm/netproto/client"
	"atm/netproto/wire"

	tea "charm.land/bubbletea/v2"
)

// withdrawUnknown logs in, withdraws R$ 25,00 and gets no answer in time.
func withdrawUnknown(t *testing.T, m *Model) {
	t.Helper()
	loggedIn(m)
	typeText(m, "3")
	typeText(m, "25")
	press(m, tea.KeyEnter)
	confirmNow(m)
	if m.busy == "" {
		t.Fatal("the withdrawal was not sent")
	}
	_, cmd := m.Update(opResultMsg{op: opWithdraw, amount: 2500,
		err: &client.OutcomeUnknownError{Op: "withdraw", ID: "atm-test-1", Err: context.DeadlineExceeded}})
	if cmd == nil {
		t.Fatal("no command asks the bank for the outcome")
	}
}

// An unknown outcome is not a refusal: the receipt says the ATM is checking,
// the balance stays as it was, and no other money operation can start.
func TestOutcomeUnknownScreen(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		withdrawUnknown(t, m)
		out := screen(t, m)
		if testing.Verbose() && m.width == 80 {
			t.Log("\n" + out)
		}
		mustContain(t, out, "R$ 1.000,00")
		mustContain(t, out, w.pick("Outcome unknown — checking with the bank", "Resultado incerto — consultando o banco", "not a refusal", "não é uma recusa",
			"withdrawal of R$ 25,00", "saque de R$ 25,00", "Please wait here", "Aguarde aqui", "asking the bank", "consultando o banco")...)
		mustNotContain(t, out, "✗")
		mustNotContain(t, out, w.pick("refused", "recusad", "Withdrawal done", "Saque realizado")...)
		if m.sess.balance != 100000 || m.pending == nil || m.pending.id != "atm-test-1" {
			t.Fatalf("balance %d, pending %+v: want the old balance and the request pending", m.sess.balance, m.pending)
		}

		press(m, tea.KeyEnter)
		if m.page != pageMenu {
			t.Fatal("enter did not go back to the menu")
		}
		mustContain(t, screen(t, m), w.one("Outcome unknown: asking the bank", "Resultado incerto: consultando o banco"))
		for _, k := range []string{"2", "3", "4", "6"} { // deposit, withdraw, transfer, log out
			typeText(m, k)
			if m.page != pageMenu || !m.sess.loggedIn() || m.busy != "" {
				t.Fatalf("key %s started something while an outcome is unknown (page %v)", k, m.page)
			}
			mustContain(t, atmPanelWords(t, m), w.pick("is not known yet", "ainda não é conhecido", "Wait until it is", "Aguarde o resultado")...)
		}
		typeText(m, "1") // a balance is still possible
		if m.busy == "" {
			t.Fatal("the balance was not asked while an outcome is unknown")
		}
	})
}

// When the bank's answer comes, the receipt shows the real outcome.
func TestOutcomeUnknownResolvedDone(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	withdrawUnknown(t, m)
	press(m, tea.KeyEnter) // to the menu meanwhile
	send(m, resolveResultMsg{gen: m.gen, id: "atm-test-1",
		reply: client.Reply{ID: "atm-test-1", Op: "withdraw", Balance: 97500, Duplicate: true}})
	out := screen(t, m)
	mustContain(t, out, "✓ Withdrawal done", "R$ 975,00", "not applied again", "at most once")
	mustNotContain(t, out, "Outcome unknown", "refused")
	if m.pending != nil || m.sess.balance != 97500 || m.page != pageReceipt {
		t.Fatalf("pending %+v, balance %d, page %v after the outcome", m.pending, m.sess.balance, m.page)
	}
	press(m, tea.KeyEnter)
	typeText(m, "2")
	if m.page != pageAmount {
		t.Fatal("a deposit cannot start after the outcome is known")
	}
}

func TestOutcomeUnknownResolvedRefused(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	withdrawUnknown(t, m)
	send(m, resolveResultMsg{gen: m.gen, id: "atm-test-1",
		err: &wire.Error{Code: "insufficient_funds", Message: "insufficient funds", ID: "atm-test-1"}})
	out := screen(t, m)
	mustContain(t, out, "✗ Withdrawal refused", "Insufficient funds for R$ 25,00", "R$ 1.000,00")
	mustNotContain(t, out, "Outcome unknown")
	if m.pending != nil || m.sess.balance != 100000 {
		t.Fatalf("pending %+v, balance %d", m.pending, m.sess.balance)
	}
}

// No answer yet to Resolve: the ATM keeps asking, and says so.
func TestOutcomeUnknownStillChecking(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	withdrawUnknown(t, m)
	_, cmd := m.Update(resolveResultMsg{gen: m.gen, id: "atm-test-1",
		err: &client.OutcomeUnknownError{Op: "withdraw", ID: "atm-test-1", Err: context.DeadlineExceeded}})
	if cmd == nil || m.pending == nil || m.pending.checks != 2 {
		t.Fatalf("the ATM stopped asking (cmd %v, pending %+v)", cmd != nil, m.pending)
	}
	mustContain(t, screen(t, m), "Outcome unknown — checking with the bank")
	// An answer about another request, or from an older connection, changes nothing.
	send(m, resolveResultMsg{gen: m.gen, id: "other", reply: client.Reply{Balance: 1}},
		resolveResultMsg{gen: m.gen - 1, id: "atm-test-1", reply: client.Reply{Balance: 1}})
	if m.pending == nil || m.sess.balance != 100000 {
		t.Fatal("a stray answer ended the wait")
	}
}

// If the client can no longer learn the outcome, the ATM says it is unknown
// and what to do, never that the bank refused.
func TestOutcomeUnknownCannotBeLearned(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	withdrawUnknown(t, m)
	send(m, resolveResultMsg{gen: m.gen, id: "atm-test-1",
		err: &client.OutcomeUnknownError{Op: "withdraw", ID: "atm-test-1", Err: fmt.Errorf("%w: EOF", client.ErrConnectionLost)}})
	out := screen(t, m)
	mustContain(t, out, "⚠ Outcome unknown", "was lost before it answered", "check your", "could not be learned")
	mustNotContain(t, out, "refused", "checking with the bank", "EOF", "at most once")
	if m.pending != nil || m.sess.balance != 100000 {
		t.Fatalf("pending %+v, balance %d", m.pending, m.sess.balance)
	}
}

// An error that did not come from the bank is never shown as a refusal,
// and no raw Go error reaches the screen.
func TestNotSentIsNotRefused(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	loggedIn(m)
	typeText(m, "3")
	typeText(m, "25")
	press(m, tea.KeyEnter)
	send(m, opResultMsg{op: opWithdraw, amount: 2500, err: fmt.Errorf("withdraw atm-test-1: no reply: %w", context.DeadlineExceeded)})
	out := screen(t, m)
	mustContain(t, out, "✗ Withdrawal not done", "did not answer in time", "Try again")
	mustNotContain(t, out, "refused", "deadline exceeded", "atm-test-1: no reply")
	if m.pending != nil {
		t.Fatal("a request never sent was taken as pending")
	}
}
