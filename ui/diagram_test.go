package ui

import (
	"strings"
	"testing"

	"atm/netproto/client"
	"atm/netproto/wire"

	tea "charm.land/bubbletea/v2"
)

// atmSession: the greeting, a login and a deposit answered, then a push,
// as the ATM's clock saw them, and the deposit's reply with the bank's
// timestamps.
func atmSession(m *Model) {
	send(m, clockEventsMsg{
		{Dir: "recv", Type: wire.TypeHello, Before: 0, After: 15, Remote: 14, Peer: "bank"},
		{Dir: "send", Type: "login", ReqID: "atm-test-1", Before: 15, After: 16},
		{Dir: "recv", Type: "reply", Op: "login", ReqID: "atm-test-1", Before: 16, After: 20, Remote: 19, Peer: "bank"},
	})
	connected(m)
	send(m, loginResultMsg{account: "123", reply: client.Reply{ID: "atm-test-1", Op: "login", TS: 19, SentTS: 16, RecvTS: 20,
		ServerRecv: 17, ServerApply: 18, Account: "123", Holder: "Ana Souza", Balance: 100000}})
	m.busy = ""
	send(m, clockEventsMsg{
		{Dir: "send", Type: "deposit", ReqID: "atm-test-2", Before: 20, After: 21},
		{Dir: "recv", Type: "reply", Op: "deposit", ReqID: "atm-test-2", Before: 21, After: 26, Remote: 25, Peer: "bank"},
	})
	send(m, opResultMsg{op: opDeposit, amount: 5000, reply: client.Reply{ID: "atm-test-2", Op: "deposit", TS: 25, SentTS: 21, RecvTS: 26,
		ServerRecv: 22, ServerApply: 23, Account: "123", Amount: 5000, Balance: 105000}})
	m.busy = ""
	press(m, tea.KeyEnter) // the receipt, back to the menu
	send(m, clockEventsMsg{{Dir: "recv", Type: wire.TypePush, Before: 26, After: 41, Remote: 40, Peer: "bank"}})
}

func TestDiagramScreen(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		atmSession(m)
		mustContain(t, screen(t, m), w.pick("d  Space-time diagram", "d  Diagrama espaço-tempo", "d diagram", "d diagrama", "q quit", "q sair")...)
		press(m, 'd')
		out := screen(t, m)
		mustContain(t, out, "bank", "atm-test · 123",
			"●16", "◆17", "◆20", "●21 deposit", "◆22", "●25", "◆26", // marks with L
			"◀", "╰─", // message lines, both ways
			"●40", "◆41") // the push, received at 41
		mustContain(t, out, w.pick("Space-time diagram", "Diagrama espaço-tempo", "■18 apply login", "■18 aplica login",
			"■23 apply deposit", "■23 aplica deposit", "q quit", "q sair", "esc clear/back", "esc voltar")...)
		mustNotContain(t, out, w.one("LAMPORT CLOCK", "RELÓGIO DE LAMPORT")) // the diagram takes the whole width
		if m.page != pageDiagram {
			t.Fatalf("page %v after d", m.page)
		}
	})
}

func TestDiagramSelectionAndVerdict(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		atmSession(m)
		press(m, 'd')
		d := m.diagram.d
		cursorAt := func(proc string, l uint64) {
			t.Helper()
			typeText(m, "p") // pause, then walk from the oldest
			press(m, tea.KeyHome)
			for range d.Len() {
				if e := d.T.Events[d.Cursor()]; e.L == l && d.T.Procs[e.Proc].ID == proc {
					return
				}
				press(m, 'j')
			}
			t.Fatalf("no event of %s at %d", proc, l)
		}
		cursorAt("atm-test", 21)
		press(m, tea.KeyEnter)
		out := screen(t, m)
		mustContain(t, out, "a ● send L=21 on atm-test", "kind deposit", "account 123", "amount R$ 50,00", "req atm-test-2",
			"client sent=21", "bank recv=22", "apply=23", "reply=25", `VC {"bank":`, "in its causal past", "in its causal future")
		if !strings.Contains(out, " ▲ ") {
			t.Errorf("no causal past marked:\n%s", out)
		}
		cursorAt("bank", 23)
		typeText(m, "x")
		mustContain(t, screen(t, m), "a → b", "L(a)=21  L(b)=23")
		press(m, tea.KeyEscape)
		mustNotContain(t, screen(t, m), "selection")
		press(m, tea.KeyEscape)
		if m.page != pageMenu {
			t.Fatalf("esc with nothing selected: page %v, want the menu", m.page)
		}
	})
}
