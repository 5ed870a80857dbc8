package watch

import (
	"fmt"
	"strings"
	"testing"

	"atm/netproto/wire"
	"atm/ui/i18n"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

var sizes = []struct{ w, h int }{{80, 24}, {120, 40}}

// eachLayout runs fn at 80×24 and 120×40, on dark and light backgrounds,
// in English.
func eachLayout(t *testing.T, fn func(t *testing.T, m *Model)) {
	eachLayoutIn(t, []i18n.Lang{i18n.English}, func(t *testing.T, m *Model, _ pick) { fn(t, m) })
}

// eachLanguage is eachLayout in every language; p picks the texts
// expected in the language.
func eachLanguage(t *testing.T, fn func(t *testing.T, m *Model, p pick)) {
	eachLayoutIn(t, i18n.Langs, fn)
}

func eachLayoutIn(t *testing.T, langs []i18n.Lang, fn func(t *testing.T, m *Model, p pick)) {
	for _, lang := range langs {
		for _, sz := range sizes {
			for _, dark := range []bool{true, false} {
				name := fmt.Sprintf("%dx%d/dark=%v", sz.w, sz.h, dark)
				if len(langs) > 1 {
					name = lang.String() + "/" + name
				}
				t.Run(name, func(t *testing.T) {
					m := New(Config{Addr: "127.0.0.1:7667", Lang: lang})
					send(m, tea.WindowSizeMsg{Width: sz.w, Height: sz.h})
					m.setStyles(dark)
					fn(t, m, pick{lang})
				})
			}
		}
	}
}

// pick chooses a screen's expected texts in one language.
type pick struct{ lang i18n.Lang }

// all takes texts in pairs, English then Portuguese, and returns those of
// the language.
func (p pick) all(pairs ...string) []string {
	out := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		if p.lang == i18n.Portuguese {
			out = append(out, pairs[i+1])
		} else {
			out = append(out, pairs[i])
		}
	}
	return out
}

func send(m *Model, msgs ...tea.Msg) {
	for _, msg := range msgs {
		m.Update(msg)
	}
}

func press(m *Model, keys ...string) {
	for _, k := range keys {
		var msg tea.KeyPressMsg
		switch k {
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "esc":
			msg = tea.KeyPressMsg{Code: tea.KeyEscape}
		case "up":
			msg = tea.KeyPressMsg{Code: tea.KeyUp}
		case "down":
			msg = tea.KeyPressMsg{Code: tea.KeyDown}
		case "left":
			msg = tea.KeyPressMsg{Code: tea.KeyLeft}
		case "right":
			msg = tea.KeyPressMsg{Code: tea.KeyRight}
		case "home":
			msg = tea.KeyPressMsg{Code: tea.KeyHome}
		case "end":
			msg = tea.KeyPressMsg{Code: tea.KeyEnd}
		case "pgup":
			msg = tea.KeyPressMsg{Code: tea.KeyPgUp}
		case "space":
			msg = tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
		default:
			r := []rune(k)[0]
			msg = tea.KeyPressMsg{Code: r, Text: k}
		}
		m.Update(msg)
	}
}

// screen renders the model without ANSI and checks the frame's geometry.
func screen(t *testing.T, m *Model) string {
	t.Helper()
	v := m.View()
	if !v.AltScreen {
		t.Error("the view is not on the alternate screen")
	}
	out := ansi.Strip(v.Content)
	lines := strings.Split(out, "\n")
	if len(lines) != m.height {
		t.Errorf("frame has %d lines, want %d", len(lines), m.height)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > m.width {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, w, m.width, l)
		}
	}
	return out
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("screen lacks %q:\n%s", w, out)
		}
	}
}

func mustNotContain(t *testing.T, out string, nots ...string) {
	t.Helper()
	for _, n := range nots {
		if strings.Contains(out, n) {
			t.Errorf("screen shows %q but should not:\n%s", n, out)
		}
	}
}

// sample is a small log: the bank starts, two ATMs connect and log in,
// one deposits and the other withdraws at the same time, a push reaches
// the first; the first ATM reports the receives of its replies with its
// next request.
func sample() []wire.Entry {
	return []wire.Entry{
		{TS: 1, Proc: "bank", Kind: wire.KindServerStart, Outcome: "ok"},
		{TS: 2, Proc: "bank", Kind: wire.KindConnect, Outcome: "ok", Client: "127.0.0.1:50000"},
		{TS: 3, Proc: "bank", Kind: wire.KindConnect, Outcome: "ok", Client: "127.0.0.1:50001"},
		{TS: 5, Proc: "bank", Kind: wire.KindLogin, Outcome: "ok", Account: "123", ReqID: "atm-7f3a-x-1",
			Client: "atm-7f3a", ClientTS: 3, RecvTS: 4, ApplyTS: 5, ReplyTS: 6, Seen: []wire.Seen{{TS: 2, At: 3}}},
		{TS: 8, Proc: "bank", Kind: wire.KindLogin, Outcome: "ok", Account: "456", ReqID: "atm-b2c4-y-1",
			Client: "atm-b2c4", ClientTS: 5, RecvTS: 7, ApplyTS: 8, ReplyTS: 9, Seen: []wire.Seen{{TS: 3, At: 4}}},
		{TS: 11, Proc: "bank", Kind: wire.KindDeposit, Outcome: "ok", Account: "123", Amount: 5000, Balance: 105000,
			ReqID: "atm-7f3a-x-2", Client: "atm-7f3a", ClientTS: 8, RecvTS: 10, ApplyTS: 11, ReplyTS: 12, Seen: []wire.Seen{{TS: 6, At: 7}}},
		{TS: 14, Proc: "bank", Kind: wire.KindWithdraw, Outcome: "ok", Account: "456", Amount: 2000, Balance: 8000,
			ReqID: "atm-b2c4-y-2", Client: "atm-b2c4", ClientTS: 11, RecvTS: 13, ApplyTS: 14, ReplyTS: 15, Seen: []wire.Seen{{TS: 9, At: 10}}},
		{TS: 16, Proc: "bank", Kind: wire.KindPush, Outcome: "ok", Account: "123", Amount: 700, Client: "atm-7f3a"},
	}
}

// entries drives the watcher with the sample, as a read of the log.
func fed(m *Model) {
	send(m, EntriesMsg{Entries: sample(), Next: "16"})
}
