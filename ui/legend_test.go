package ui

import (
	"strings"
	"testing"

	"atm/netproto/client"
	"atm/ui/i18n"

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
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		connected(m)
		send(m, clockEventsMsg{{Dir: "recv", Type: "hello", Before: 0, After: 15, Remote: 14, Peer: "bank"}})
		mustContain(t, screen(t, m), w.one("? clock legend", "? legenda"))
		typeText(m, "?")
		if m.login.account.Value() != "" || m.login.err != "" {
			t.Errorf("? reached the login form: field %q, error %q", m.login.account.Value(), m.login.err)
		}
		out := flat(t, m)
		title := w.one("The Lamport clock panel", "O painel do relógio de Lamport")
		mustContain(t, out, title)
		mustContain(t, out, w.pick(
			"L this ATM's clock (atm-test)", "L o relógio deste caixa (atm-test)",
			"T the timestamp a message from the bank carries", "T o carimbo de tempo de uma mensagem do banco",
			"↑ a message this ATM sent: L goes to L+1", "↑ uma mensagem que este caixa enviou: L vai a L+1",
			"↓ a message received from the bank: L goes to max(L,T)+1", "↓ uma mensagem recebida do banco: L vai a max(L,T)+1",
			"✓ the bank's answer: done", "✓ a resposta do banco: feito",
			"✗ the bank's answer: refused", "✗ a resposta do banco: recusado",
			"▶ the newest event", "▶ o evento mais recente",
			"Why a new bank greets at T=14", "Por que um banco novo saúda com T=14",
			"opened its default accounts, made their opening deposits and started its server", "abriu suas contas padrão, fez os depósitos de abertura e iniciou o servidor",
			"already carries T=14", "já traz T=14",
			"This ATM's first greeting from the bank carried T=14.", "A primeira saudação do banco a este caixa trouxe T=14.",
			"esc/? close the legend", "esc/? fechar a legenda")...)
		clock, login := w.one("LAMPORT CLOCK", "RELÓGIO DE LAMPORT"), w.one("Please log in", "Faça seu login")
		mustNotContain(t, out, clock, login)
		press(m, tea.KeyEscape)
		out = screen(t, m)
		mustContain(t, out, clock, login)
		mustNotContain(t, out, title)
		typeText(m, "?")
		mustContain(t, screen(t, m), title)
		typeText(m, "?")
		mustNotContain(t, screen(t, m), title)
	})
}

// The legend's key is in the help bar of every screen, even at 80 columns,
// in every language.
func TestLegendKeyOnEveryScreen(t *testing.T) {
	t.Parallel()
	for _, lang := range i18n.Langs {
		t.Run(lang.String(), func(t *testing.T) { legendKeyOnEveryScreen(t, lang) })
	}
}

func legendKeyOnEveryScreen(t *testing.T, lang i18n.Lang) {
	m := newTestModelIn(t, 80, 24, true, lang)
	helpBar := func() string {
		lines := strings.Split(screen(t, m), "\n")
		return lines[len(lines)-1]
	}
	want := words{lang}.one("? clock legend", "? legenda")
	check := func(where string) {
		t.Helper()
		if h := helpBar(); !strings.Contains(h, want) {
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
