package ui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// TestHeaderNeverOverflows renders the title bar at every width from 80 to
// 160, with a short and a long server address, in both themes: it is
// exactly one line of the window's width, and the address is either whole
// or cut with "…".
func TestHeaderNeverOverflows(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:7667", "bank-server-number-two.classroom.example.org:17667"} {
		for _, dark := range []bool{true, false} {
			for w := 80; w <= 160; w++ {
				m := newTestModel(t, w, 24, dark)
				m.cfg.Addr = addr
				m.server = "bank"
				line := m.titleBar()
				if strings.Contains(line, "\n") {
					t.Fatalf("width %d: the title bar has several lines", w)
				}
				if got := ansi.StringWidth(line); got != w {
					t.Fatalf("width %d, address %s: the title bar is %d cells wide:\n%q", w, addr, got, ansi.Strip(line))
				}
				plain := ansi.Strip(line)
				if !strings.Contains(plain, addr) && !strings.Contains(plain, "…") {
					t.Fatalf("width %d: the address is cut without a mark: %q", w, plain)
				}
			}
		}
	}
}
