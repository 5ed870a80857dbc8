package ui

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank/money"

	tea "charm.land/bubbletea/v2"
)

// statementWall is when the test's entries happened.
var statementWall = time.Date(2030, 3, 5, 14, 3, 22, 0, time.UTC)

// statementEntries is a history of n entries of account 123, newest first,
// from L=1000 down: a received transfer, a sent one, then deposits.
func statementEntries(n int) []wire.Entry {
	var es []wire.Entry
	for i := range n {
		ts := uint64(1000 - 10*i)
		wall := statementWall.Add(-time.Duration(i) * time.Hour)
		switch i {
		case 0:
			es = append(es, wire.Entry{TS: ts, Proc: "bank", Kind: wire.KindTransfer, Outcome: "ok", Account: "45678901", To: "123",
				Amount: 2500, ToBalance: 102500, ApplyTS: ts, Wall: wall})
		case 1:
			es = append(es, wire.Entry{TS: ts, Proc: "bank", Kind: wire.KindTransfer, Outcome: "ok", Account: "123", To: "45678901",
				Amount: 5000, Balance: 100000, ToBalance: 5000, Detail: "Bruno Lima", ReqID: "r1",
				Client: "atm-7f3a", ClientTS: ts - 3, RecvTS: ts - 1, ApplyTS: ts, ReplyTS: ts + 1, Wall: wall})
		default:
			es = append(es, wire.Entry{TS: ts, Proc: "bank", Kind: wire.KindDeposit, Outcome: "ok", Account: "123",
				Amount: money.Cents(100 * i), Balance: 105000, ReqID: fmt.Sprint("d", i),
				Client: "atm-7f3a", ClientTS: ts - 3, RecvTS: ts - 1, ApplyTS: ts, ReplyTS: ts + 1, Wall: wall})
		}
	}
	return es
}

// openStatement shows the statement with the first page of 55 entries.
func openStatement(m *Model) []wire.Entry {
	loggedIn(m)
	typeText(m, "5")
	all := statementEntries(55)
	send(m, statementResultMsg{reply: client.Reply{Entries: all[:50], Next: 510, Balance: 102500}})
	return all
}

var footerRe = regexp.MustCompile(`entries (\d+)–(\d+)(, more below| of \d+)`)

func footer(t *testing.T, m *Model) string {
	t.Helper()
	f := footerRe.FindString(screen(t, m))
	if f == "" {
		t.Fatalf("no entries footer:\n%s", screen(t, m))
	}
	return f
}

// Each entry shows its local date and time with the zone, written the
// language's way, and the counterparty, readable at 80 columns.
func TestStatementEntriesReadable(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		all := openStatement(m)
		out := screen(t, m)
		for _, e := range all[:3] {
			mustContain(t, out, e.Wall.Local().Format(w.one("2006-01-02 15:04:05 MST", "02/01/2006 15:04:05 MST")))
		}
		mustContain(t, out, "+25,00", "1.025,00", "-50,00", "1.000,00", "+2,00")
		mustContain(t, out, w.pick("from 45678901", "de 45678901", "to 45678901", "para 45678901", "deposit", "depósito")...)
		// 55 entries exist but only 50 are known: no count is claimed.
		mustContain(t, out, w.pick("entries 1–", "lançamentos 1–", ", more below", ", há mais abaixo")...)
		mustNotContain(t, out, w.one("of 50", "de 50"))
	})
}

// Page down moves by a page, page up back; home and end go to the newest
// and the oldest; reaching the end fetches the next page, and once all are
// loaded the count is known.
func TestStatementPaging(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		all := openStatement(m)
		n := m.statement.visible()
		if want := fmt.Sprintf("entries 1–%d, more below", n); footer(t, m) != want {
			t.Fatalf("footer %q, want %q", footer(t, m), want)
		}
		if m.statement.loading {
			t.Fatal("older entries were asked for before the end was in sight")
		}
		press(m, tea.KeyPgDown)
		off := min(n, 50-n) // the last page loaded fills the screen
		if want := fmt.Sprintf("entries %d–%d, more below", off+1, off+n); footer(t, m) != want {
			t.Errorf("after pgdn: footer %q, want %q", footer(t, m), want)
		}
		if m.statement.cursor != n {
			t.Errorf("after pgdn the cursor is on entry %d, want %d", m.statement.cursor, n)
		}
		mustContain(t, screen(t, m), fmt.Sprintf(" %d ", all[n].TS))
		press(m, tea.KeyPgUp)
		if want := fmt.Sprintf("entries 1–%d, more below", n); footer(t, m) != want {
			t.Errorf("after pgup: footer %q, want %q", footer(t, m), want)
		}
		press(m, tea.KeyEnd)
		if !m.statement.loading {
			t.Fatal("end did not fetch the older entries")
		}
		mustContain(t, screen(t, m), fmt.Sprintf("entries %d–50, more below · loading older…", 50-n+1))
		send(m, statementResultMsg{reply: client.Reply{Entries: all[50:], Balance: 102500}})
		mustContain(t, screen(t, m), "of 55")
		press(m, tea.KeyEnd)
		if want := fmt.Sprintf("entries %d–55 of 55", 55-n+1); footer(t, m) != want {
			t.Errorf("at the end: footer %q, want %q", footer(t, m), want)
		}
		press(m, tea.KeyHome)
		if want := fmt.Sprintf("entries 1–%d of 55", n); footer(t, m) != want || m.statement.cursor != 0 {
			t.Errorf("after home: footer %q, cursor %d", footer(t, m), m.statement.cursor)
		}
	})
}

// Enter opens an entry with its Lamport timestamps; a received transfer
// shows what is known of it.
func TestStatementEntryDetail(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		openStatement(m)
		press(m, tea.KeyDown)
		press(m, tea.KeyEnter)
		out := flat(t, m)
		mustContain(t, out, "-R$ 50,00")
		mustContain(t, out, w.pick("Entry at L=990", "Lançamento em L=990", "to 45678901 Bruno Lima", "para 45678901 Bruno Lima",
			"Balance after R$ 1.000,00", "Saldo após R$ 1.000,00",
			"Date "+statementWall.Add(-time.Hour).Local().Format("2006-01-02 15:04:05 MST"), "Data "+statementWall.Add(-time.Hour).Local().Format("02/01/2006 15:04:05 MST"),
			"Lamport timestamps", "Carimbos de tempo de Lamport", "sent by atm-7f3a 987", "enviado por atm-7f3a 987",
			"received by bank 989", "recebido por bank 989", "applied by bank 990", "aplicado por bank 990",
			"answered by bank 991", "respondido por bank 991", "esc back", "esc voltar")...)
		press(m, tea.KeyEscape)
		if m.page != pageStatement || m.statement.detail {
			t.Fatal("esc from an entry left the statement")
		}
		press(m, tea.KeyUp)
		press(m, tea.KeyEnter)
		out = flat(t, m)
		mustContain(t, out, "+R$ 25,00")
		mustContain(t, out, w.pick("Entry at L=1000", "Lançamento em L=1000", "from 45678901", "de 45678901", "Balance after R$ 1.025,00", "Saldo após R$ 1.025,00",
			"applied by bank 1000", "aplicado por bank 1000", "payer's request", "pedido de quem pagou")...)
		mustNotContain(t, out, w.pick("sent by", "enviado por", "answered by", "respondido por")...)
	})
}

// The help bar shows the statement's keys at 80 columns.
func TestStatementHelpBar(t *testing.T) {
	t.Parallel()
	for _, w := range []int{80, 120} {
		m := newTestModel(t, w, 24, true)
		openStatement(m)
		lines := strings.Split(screen(t, m), "\n")
		mustContain(t, lines[len(lines)-1], "pgup", "pgdn", "home", "end", "enter details", "esc back", "? clock legend")
	}
}

// A statement that ends where the bank's online history does says so,
// and where the rest is: at the foot of the list, or in place of the
// list when every entry is archived.
func TestStatementSaysWhereOnlineHistoryEnds(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 100, 30, true)
	loggedIn(m)
	typeText(m, "5")
	send(m, statementResultMsg{reply: client.Reply{Entries: statementEntries(3), Balance: 102500, Archived: true}})
	if s := screen(t, m); !strings.Contains(s, "older ones archived at the bank") || !strings.Contains(s, "entries 1–3 of 3") {
		t.Fatalf("a statement ending at the archive:\n%s", s)
	}
	m = newTestModel(t, 100, 30, true)
	loggedIn(m)
	typeText(m, "5")
	send(m, statementResultMsg{reply: client.Reply{Balance: 102500, Archived: true}})
	if s := screen(t, m); !strings.Contains(s, "Your entries are archived: ask the bank for them.") || strings.Contains(s, "No entries yet") {
		t.Fatalf("a statement whose entries are all archived:\n%s", s)
	}
	m = newTestModel(t, 100, 30, true)
	loggedIn(m)
	typeText(m, "5")
	send(m, statementResultMsg{reply: client.Reply{Entries: statementEntries(3), Balance: 102500}})
	if s := screen(t, m); strings.Contains(s, "archived") {
		t.Fatalf("a whole statement speaks of an archive:\n%s", s)
	}
}
