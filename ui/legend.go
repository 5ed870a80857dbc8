package ui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// legendClose is the help of the keys that close the clock legend.
var legendClose = key.NewBinding(key.WithKeys("esc", "?"), key.WithHelp("esc/?", "close the legend"))

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
	s := p.c.styles
	box := lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(s.Accent).Padding(0, 1)
	inner := max(10, w-box.GetHorizontalFrameSize())
	para := func(st lipgloss.Style, text string) string { return st.Width(inner).Render(text) }
	row := func(mark lipgloss.Style, m, text string) string {
		return ansi.Truncate(mark.Render(fmt.Sprintf("%-3s", m))+s.Text.Render(text), inner, "…")
	}
	lines := []string{
		s.PageTitle.Render("The Lamport clock panel"),
		"",
		row(s.Value, "L", "this ATM's clock ("+p.proc+"): it counts events, not seconds"),
		row(s.Value, "T", "the timestamp a message from the bank carries (the bank's clock)"),
		row(s.TimeSend, "↑", "a message this ATM sent: L goes to L+1"),
		row(s.TimeRecv, "↓", "a message received from the bank: L goes to max(L,T)+1"),
		row(s.Success, "✓", "the bank's answer: done"),
		row(s.Error, "✗", "the bank's answer: refused, or an error"),
		row(s.TimeLatest, "▶", "the newest event; older ones scroll up"),
		"",
		s.PageTitle.Render("Why a new bank greets at T=14"),
		para(s.Text, "The bank's clock ticks for its own events too, not only for messages. "+
			"Before any ATM connected, a brand-new bank opened its default accounts, made their opening deposits "+
			"and started its server: each of those events ticked its clock, so its greeting to the first ATM "+
			"already carries T=14 (a bank that has run before carries on from where it stopped)."),
	}
	if ts, ok := p.firstGreeting(); ok {
		lines = append(lines, para(s.Dim, fmt.Sprintf("This ATM's first greeting from the bank carried T=%d.", ts)))
	}
	body := fitLines(strings.Join(lines, "\n"), inner, max(1, h-box.GetVerticalFrameSize()))
	return box.Width(w).Render(body)
}
