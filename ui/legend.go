package ui

import (
	"fmt"
	"strconv"
	"strings"

	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
	"charm.land/lipgloss/v2"
)

// legendClose is the help of the keys that close the clock legend.
func (m *Model) legendClose() key.Binding {
	return key.NewBinding(key.WithKeys("esc", "?"), key.WithHelp("esc/?", m.c.tr.T(i18n.LegendClose)))
}

// firstGreeting is the timestamp of the first greeting this ATM got from a
// bank, if the timeline still holds it.
func (p *clockPanel) firstGreeting() (uint64, bool) {
	for _, e := range p.events {
		if e.Dir == "recv" && e.Type == "hello" {
			return e.Remote, true
		}
	}
	return 0, false
}

// legendView explains the clock panel: its marks, L and T, and why a new
// bank's first greeting is not T=1. It fills w×h.
func (p *clockPanel) legendView(w, h int) string {
	s, tr := p.c.styles, p.c.tr
	box := lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(s.Accent).Padding(0, 1)
	inner := max(10, w-box.GetHorizontalFrameSize())
	para := func(st lipgloss.Style, text string) string { return st.Width(inner).Render(text) }
	// A row is a mark and its meaning, wrapped under the meaning when it
	// is longer than the line.
	row := func(mark lipgloss.Style, m string, text i18n.Key, args ...any) string {
		lines := strings.Split(s.Text.Width(max(1, inner-3)).Render(tr.T(text, args...)), "\n")
		for i := range lines {
			lead := "   "
			if i == 0 {
				lead = mark.Render(fmt.Sprintf("%-3s", m))
			}
			lines[i] = lead + lines[i]
		}
		return strings.Join(lines, "\n")
	}
	lines := []string{
		s.PageTitle.Render(tr.T(i18n.LegendTitle)),
		"",
		row(s.Value, "L", i18n.LegendL, p.proc),
		row(s.Value, "T", i18n.LegendT),
		row(s.TimeSend, "↑", i18n.LegendSend),
		row(s.TimeRecv, "↓", i18n.LegendRecv),
		row(s.Success, "✓", i18n.LegendDone),
		row(s.Error, "✗", i18n.LegendRefused),
		row(s.TimeLatest, "▶", i18n.LegendLatest),
		"",
		s.PageTitle.Render(tr.T(i18n.LegendWhy)),
		para(s.Text, tr.T(i18n.LegendWhyText)),
	}
	if ts, ok := p.firstGreeting(); ok {
		lines = append(lines, para(s.Dim, tr.T(i18n.LegendFirst, strconv.FormatUint(ts, 10))))
	}
	body := fitLines(strings.Join(lines, "\n"), inner, max(1, h-box.GetVerticalFrameSize()))
	return box.Width(w).Render(body)
}
