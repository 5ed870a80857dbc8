package ui

import (
	"fmt"
	"testing"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank/money"
)

// statementFull shows a statement that fills the whole screen.
func statementFull(m *Model) {
	typeText(m, "5")
	var entries []wire.Entry
	for i := range 34 {
		entries = append(entries, wire.Entry{TS: uint64(90 - i), Kind: wire.KindDeposit, Outcome: "ok", Account: "123", Amount: 100, Balance: 100000})
	}
	send(m, statementResultMsg{reply: client.Reply{Entries: entries, Next: 20, Balance: 100000}})
}

// The card of money that arrived shows on every screen, and never in place
// of what the screen shows: where the screen is full it goes beside it.
func TestPushCardNeverHidesTheScreen(t *testing.T) {
	t.Parallel()
	push := client.Push{Kind: wire.PushTransferIn, Account: "123", From: "456", FromHolder: "Bruno Lima",
		Amount: 2500, Balance: 102500, HasBalance: true, TS: 61, ApplyTS: 59, RecvTS: 62}
	for _, sc := range []struct {
		name  string
		setup func(m *Model)
		shows []string
	}{
		{"menu", func(*Model) {}, []string{"What would you like to do?", "6  Log out"}},
		{"deposit form", func(m *Model) { typeText(m, "2"); typeText(m, "50") }, []string{"Amount to deposit", "50", "= R$ 50,00"}},
		{"statement", statementFull, []string{"Statement", "entries 1–", "more below"}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			eachLayout(t, func(t *testing.T, m *Model) {
				loggedIn(m)
				sc.setup(m)
				before := screen(t, m)
				mustContain(t, before, sc.shows...)
				send(m, pushMsg{gen: m.gen, push: push})
				out := screen(t, m)
				mustContain(t, out, sc.shows...)
				mustContain(t, out, "Money arrived", "+R$ 25,00", "Bruno Lima", "push sent at T=61")
			})
		})
	}
}

// A change made by another session on the same account updates the balance
// shown and says what happened.
func TestPushFromAnotherATM(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		push  client.Push
		texts []string
	}{
		{client.Push{Kind: wire.PushWithdraw, Account: "123", Amount: 5000, Balance: 95000, HasBalance: true, TS: 70, ApplyTS: 68, RecvTS: 71},
			[]string{"Balance changed at another ATM: withdrawal of R$ 50,00 → R$ 950,00"}},
		{client.Push{Kind: wire.PushDeposit, Account: "123", Amount: 2000, Balance: 102000, HasBalance: true, TS: 70, ApplyTS: 68, RecvTS: 71},
			[]string{"Balance changed at another ATM: deposit of R$ 20,00 → R$ 1.020,00"}},
		{client.Push{Kind: wire.PushTransferOut, Account: "123", To: "456", ToHolder: "Bruno Lima", Amount: 1000, Balance: 99000, HasBalance: true, TS: 70, ApplyTS: 68, RecvTS: 71},
			[]string{"Balance changed at another ATM: transfer of R$ 10,00 to 456 → R$ 990,00", "Bruno"}},
	} {
		t.Run(tc.push.Kind, func(t *testing.T) {
			eachLayout(t, func(t *testing.T, m *Model) {
				loggedIn(m)
				send(m, pushMsg{gen: m.gen, push: tc.push})
				out := screen(t, m)
				mustContain(t, out, tc.texts...)
				mustContain(t, out, tc.push.Balance.String(), "push sent at T=70")
				mustNotContain(t, out, "Money arrived")
				if m.sess.balance != tc.push.Balance {
					t.Errorf("balance %d after the push, want %d", m.sess.balance, tc.push.Balance)
				}
			})
		})
	}
}

// A push without a balance (a newer one was already shown) leaves the
// balance shown as it is.
func TestPushWithoutBalance(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		loggedIn(m)
		send(m, pushMsg{gen: m.gen, push: client.Push{Kind: wire.PushWithdraw, Account: "123", Amount: 5000, TS: 70, ApplyTS: 68, RecvTS: 71}})
		out := screen(t, m)
		mustContain(t, out, "Balance changed at another ATM: withdrawal of R$ 50,00", "already in the balance shown", "R$ 1.000,00")
		mustNotContain(t, out, "R$ 0,00", fmt.Sprintf("→ %s", money.Cents(0).String()))
		if m.sess.balance != 100000 {
			t.Errorf("balance %d after a push without one, want 100000 kept", m.sess.balance)
		}
	})
}
