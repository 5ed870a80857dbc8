package watch

import (
	"fmt"
	"strings"
	"testing"

	"atm/netproto/wire"
)

// cursorTo moves the cursor, with keys, to the event of process label at
// Lamport time l.
func cursorTo(t *testing.T, m *Model, proc string, l uint64) {
	t.Helper()
	press(m, "home")
	for range m.d.Len() {
		if id := m.d.Cursor(); id >= 0 {
			e := m.d.T.Events[id]
			if m.d.T.Procs[e.Proc].ID == proc && e.L == l {
				return
			}
		}
		press(m, "down")
	}
	t.Fatalf("no event of %s at L=%d", proc, l)
}

func TestWatchLanesMarksAndMessages(t *testing.T) {
	t.Parallel()
	eachLanguage(t, func(t *testing.T, m *Model, p pick) {
		out := screen(t, m)
		mustContain(t, out, p.all("SPACE-TIME", "ESPAÇO-TEMPO", "no events yet", "nenhum evento ainda", "space/p follow", "space/p seguir", "q quit", "q sair")...)
		fed(m)
		out = screen(t, m)
		mustContain(t, out,
			"bank", "atm-7f3a · 123", "atm-b2c4 · 456", // lanes, ATMs with their accounts
			"●11 withdraw",  // marks with L
			"◆13◀", "─11─╯", // the withdraw from atm-b2c4 (L=11) received by the bank at 13
			"●16 ──▷? push") // a push whose receive is unknown
		mustContain(t, out, p.all("■14 apply withdraw", "■14 aplica", "● following", "● acompanhando",
			"event 24 of 24", "evento 24 de 24", "24 events", "24 eventos", "● send ◆ receive", "● envio ◆ recebimento")...)
		if m.height >= 40 {
			mustContain(t, out, "■1 server_start", "╰─2─", p.all("▶◆3 recv hello", "▶◆3 receb. hello")[0]) // the first hello, received by atm-7f3a at 3
		}
	})
}

func TestWatchSelectShowsDetailsAndCausality(t *testing.T) {
	t.Parallel()
	eachLanguage(t, func(t *testing.T, m *Model, p pick) {
		fed(m)
		cursorTo(t, m, "bank", 11) // the deposit's apply
		press(m, "enter")
		out := screen(t, m)
		mustContain(t, out, `VC {"bank":11, "atm-7f3a":4, "atm-b2c4":2}`)
		mustContain(t, out, p.all("selection", "seleção",
			"a ■ local L=11 on bank · apply deposit", "a ■ evento local L=11 em bank · aplica deposit",
			"kind deposit", "tipo deposit", "account 123", "conta 123", "amount R$ 50,00", "valor R$ 50,00",
			"client sent=8", "cliente enviou=8", "bank recv=10", "banco recebeu=10", "apply=11", "aplicou=11",
			"‖ paused", "‖ pausado")...) // moving through time pauses the view
		if !strings.Contains(out, "\n ▲ ") {
			t.Errorf("no causal past marked:\n%s", out)
		}
		mustContain(t, out, p.all("▲ 16 in its causal past", "▲ 16 no seu passado causal", "▼ 5 in its causal future", "▼ 5 no seu futuro causal")...)
		if m.width >= 120 {
			mustContain(t, out, p.all("req atm-7f3a-x-2", "pedido atm-7f3a-x-2", "reply=12", "respondeu=12", "seen 6@7", "visto 6@7")...)
		}
		if m.height >= 40 && !strings.Contains(out, "\n ▼ ") {
			t.Errorf("no causal future marked:\n%s", out)
		}
		press(m, "esc")
		mustNotContain(t, screen(t, m), p.all("selection", "seleção")[0], "\n ▲ ", "\n ▼ ")
	})
}

func TestWatchComparesTwoEvents(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		fed(m)
		// atm-b2c4 sends its login at 5; atm-7f3a sends its deposit at 8:
		// 5 < 8, yet neither event could have affected the other.
		cursorTo(t, m, "atm-b2c4", 5)
		press(m, "enter")
		cursorTo(t, m, "atm-7f3a", 8)
		press(m, "x")
		out := screen(t, m)
		mustContain(t, out, "a ● send L=5 on atm-b2c4", "b ● send L=8 on atm-7f3a",
			"a ∥ b (concurrent)", "L(a)=5  L(b)=8",
			"L(a) < L(b) does not imply a → b: the vector clocks decide",
			`VC {"bank":3, "atm-b2c4":2}`)

		// The deposit's send happened before its apply at the bank.
		press(m, "esc")
		cursorTo(t, m, "atm-7f3a", 8)
		press(m, "enter")
		cursorTo(t, m, "bank", 11)
		press(m, "x")
		out = screen(t, m)
		mustContain(t, out, "a → b", "L(a)=8  L(b)=11")
		mustNotContain(t, out, "concurrent", "does not imply")
		press(m, "x") // b again, on a: still one pair
		mustContain(t, screen(t, m), "a → b")
	})
}

func TestWatchFollowsAndPauses(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		fed(m)
		press(m, "p")
		more := []wire.Entry{{TS: 17, Proc: "bank", Kind: wire.KindDisconnect, Outcome: "ok", Client: "atm-b2c4"}}
		send(m, EntriesMsg{Entries: more, Next: "17"})
		out := screen(t, m)
		mustContain(t, out, "‖ paused · 1 new", "event 24 of 25")
		press(m, "space")
		out = screen(t, m)
		mustContain(t, out, "● following", "event 25 of 25", "■17 disconnect")
	})
}

// manyATMs is a log of n ATMs, each logging in once.
func manyATMs(n int) []wire.Entry {
	var es []wire.Entry
	ts := uint64(1)
	for i := range n {
		c := fmt.Sprintf("atm-%03d", i)
		es = append(es, wire.Entry{TS: ts + 2, Proc: "bank", Kind: wire.KindLogin, Outcome: "ok", Account: fmt.Sprint(100 + i),
			ReqID: c + "-1", Client: c, ClientTS: ts, RecvTS: ts + 1, ApplyTS: ts + 2, ReplyTS: ts + 3})
		ts += 4
	}
	return es
}

func TestWatchScrollsLanes(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		send(m, EntriesMsg{Entries: manyATMs(9), Next: "36"})
		out := screen(t, m)
		shown := 6
		if m.width < 100 {
			shown = 4
		}
		mustContain(t, out, fmt.Sprintf("lanes 1–%d of 10 · %d hidden %d▶", shown, 10-shown, 10-shown), "bank", "atm-000")
		header := strings.Split(out, "\n")[2]
		mustNotContain(t, header, "atm-008") // hidden on the right; its events at the edge
		mustContain(t, header, "▶")
		mustContain(t, out, "atm-008 · 108 ●33›")
		press(m, "right", "right")
		out = screen(t, m)
		mustContain(t, out, "◀2", "atm-001 · 101")
		mustNotContain(t, strings.Split(out, "\n")[2], "atm-000")
		press(m, "left", "left", "left")
		mustContain(t, screen(t, m), fmt.Sprintf("lanes 1–%d of 10", shown))
	})
}

func TestWatchNoTokenAndErrors(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		send(m, EntriesMsg{Err: wire.ErrForbidden})
		mustContain(t, screen(t, m), "refused the operator token")
	})
}

// The frame reads only the rows it shows: with 100 000 events, drawing a
// frame reads a few events per row, wherever the cursor is.
func TestWatchDrawsOnlyTheVisibleWindow(t *testing.T) {
	t.Parallel()
	m := New(Config{Addr: "127.0.0.1:7667"})
	es := make([]wire.Entry, 0, 100_000)
	for i := range 100_000 {
		es = append(es, wire.Entry{TS: uint64(i + 1), Proc: "bank", Kind: wire.KindPush, Outcome: "ok", Client: fmt.Sprintf("atm-%d", i%7)})
	}
	for i := 0; i < len(es); i += 1000 {
		send(m, EntriesMsg{Entries: es[i : i+1000], Next: wire.CursorOf(uint64(i + 1000))})
	}
	if n := m.d.Len(); n != 100_000 {
		t.Fatalf("%d events, want 100000", n)
	}
	for _, keys := range [][]string{nil, {"pgup", "pgup", "enter"}, {"home", "x"}} {
		press(m, keys...)
		m.d.Touched = 0
		out := screen(t, m)
		if max := 4 * m.height; m.d.Touched > max {
			t.Errorf("after %v the frame read %d events, more than %d", keys, m.d.Touched, max)
		}
		if len(out) > 40*m.width*m.height {
			t.Errorf("frame of %d bytes", len(out))
		}
	}
}
