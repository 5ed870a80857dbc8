package ui

import (
	"fmt"
	"reflect"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// A resize reaches the screen on view: after it, the frame is the one of
// an ATM that had the new size from the start, on every screen. (A new
// model is laid out for 80×24 before its first resize, so 80×24 is the
// size it goes back to.)
func TestResizeReachesTheScreen(t *testing.T) {
	screens := []struct {
		name string
		to   func(m *Model)
	}{
		{"login", func(m *Model) { connected(m); typeText(m, "12") }},
		{"menu", loggedIn},
		{"deposit", func(m *Model) { loggedIn(m); typeText(m, "2"); typeText(m, "12,5x") }},
		{"transfer", func(m *Model) { loggedIn(m); typeText(m, "4"); typeText(m, "456") }},
		{"statement", func(m *Model) { openStatement(m); press(m, tea.KeyEnd) }},
		{"diagram", func(m *Model) { loggedIn(m); typeText(m, "d") }},
	}
	for _, sc := range screens {
		for _, from := range []struct{ w, h int }{{120, 40}, {100, 30}, {81, 25}, {200, 60}} {
			t.Run(fmt.Sprintf("%s/from-%dx%d", sc.name, from.w, from.h), func(t *testing.T) {
				resized := newTestModel(t, from.w, from.h, true)
				sc.to(resized)
				send(resized, tea.WindowSizeMsg{Width: 80, Height: 24})
				fresh := newTestModel(t, 80, 24, true)
				sc.to(fresh)
				got, want := ansi.Strip(resized.View().Content), ansi.Strip(fresh.View().Content)
				if got != want {
					t.Errorf("after the resize:\n%s\nwant:\n%s", got, want)
				}
			})
		}
	}
}

// Every resize reaches every screen: each has the size of the page area,
// the diagram that of the whole body.
func TestResizeSizesEveryScreen(t *testing.T) {
	m := newTestModel(t, 80, 24, true)
	for _, sz := range []struct{ w, h int }{{120, 40}, {100, 30}, {81, 25}} {
		send(m, tea.WindowSizeMsg{Width: sz.w, Height: sz.h})
		want := newTestModel(t, sz.w, sz.h, true).area
		for i, p := range m.pages() {
			b := reflect.ValueOf(p).Elem().FieldByName("base")
			w, h := int(b.FieldByName("width").Int()), int(b.FieldByName("height").Int())
			ww, wh := want.width, want.height
			if p == page(m.diagram) {
				ww, wh = sz.w, sz.h-3
			}
			if w != ww || h != wh {
				t.Errorf("at %dx%d screen %d (%T) is %dx%d, want %dx%d", sz.w, sz.h, i, p, w, h, ww, wh)
			}
		}
	}
}
