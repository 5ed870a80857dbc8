package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"atm/netproto/client"
	"atm/ui/i18n"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// maxTimeline is how many clock events the panel remembers.
const maxTimeline = 300

// flashFor is how long the clock digits stay highlighted after a change.
const flashFor = 700 * time.Millisecond

// clockPanel is the always-visible Lamport clock: this process's value, the
// last timestamp received from the server and a timeline of every send and
// receive with the rule applied.
type clockPanel struct {
	c       *common
	proc    string // this ATM's process id
	server  string // the server's process id
	now     uint64 // this ATM's clock
	lastTS  uint64 // last timestamp carried by a message from the server
	seen    bool   // lastTS is meaningful
	events  []client.ClockEvent
	flashID int
	flash   bool
	width   int
	height  int
	legend  bool // the legend of the marks is open (the ? key)
}

type clockFlashOffMsg struct{ id int }

// add records a batch of events and starts the highlight of the digits.
func (p *clockPanel) add(evs []client.ClockEvent) tea.Cmd {
	if len(evs) == 0 {
		return nil
	}
	for _, e := range evs {
		p.now = e.After
		if e.Dir == "recv" {
			p.lastTS, p.seen = e.Remote, true
			if e.Peer != "" {
				p.server = e.Peer
			}
		}
	}
	p.events = append(p.events, evs...)
	if n := len(p.events) - maxTimeline; n > 0 {
		p.events = append(p.events[:0:0], p.events[n:]...)
	}
	p.flashID++
	p.flash = true
	id := p.flashID
	return tea.Tick(flashFor, func(time.Time) tea.Msg { return clockFlashOffMsg{id} })
}

func (p *clockPanel) flashOff(id int) {
	if id == p.flashID {
		p.flash = false
	}
}

// lastEvent returns the newest event of request id in direction dir
// ("send" or "recv"), if the timeline still holds one.
func (p *clockPanel) lastEvent(dir, id string) (client.ClockEvent, bool) {
	if id == "" {
		return client.ClockEvent{}, false
	}
	for i := len(p.events) - 1; i >= 0; i-- {
		if e := p.events[i]; e.Dir == dir && e.ReqID == id {
			return e, true
		}
	}
	return client.ClockEvent{}, false
}

func (p *clockPanel) SetSize(w, h int) { p.width, p.height = w, h }

// bigDigits is a three-line font for the clock value.
var bigDigits = [10][3]string{
	{"█▀█", "█ █", "▀▀▀"},
	{"▀█ ", " █ ", "▀▀▀"},
	{"▀▀█", "█▀▀", "▀▀▀"},
	{"▀▀█", " ▀█", "▀▀▀"},
	{"█ █", "▀▀█", "  ▀"},
	{"█▀▀", "▀▀█", "▀▀▀"},
	{"█▀▀", "█▀█", "▀▀▀"},
	{"▀▀█", "  █", "  ▀"},
	{"█▀█", "█▀█", "▀▀▀"},
	{"█▀█", "▀▀█", "▀▀▀"},
}

func renderBig(n uint64, width int) []string {
	s := strconv.FormatUint(n, 10)
	if len(s)*4-1 > width {
		return []string{"", s, ""}
	}
	var rows [3]strings.Builder
	for i, r := range s {
		for row := range 3 {
			if i > 0 {
				rows[row].WriteByte(' ')
			}
			rows[row].WriteString(bigDigits[r-'0'][row])
		}
	}
	return []string{rows[0].String(), rows[1].String(), rows[2].String()}
}

// entryLabel names a clock event: the message sent or the answer received.
func entryLabel(e client.ClockEvent) string {
	if e.Dir == "send" {
		return "↑ " + e.Type
	}
	switch e.Type {
	case "reply":
		return "↓ " + e.Op + " ✓"
	case "error":
		if e.Op == "" {
			return "↓ error ✗"
		}
		return "↓ " + e.Op + " ✗"
	}
	return "↓ " + e.Type
}

// reasonATMLogout labels the logout the ATM sends by itself when the
// connection came back during a session (client.WithReason).
const reasonATMLogout = "atm-logout"

// entryReason says why a message the person did not ask for was sent or
// received ("" for the others).
func entryReason(tr *i18n.Printer, e client.ClockEvent) string {
	switch e.Reason {
	case "":
		return ""
	case client.ReasonReconnect:
		return tr.T(i18n.ReasonReconnect)
	case client.ReasonRestore:
		return tr.T(i18n.ReasonRestore)
	case client.ReasonResend:
		return tr.T(i18n.ReasonResend)
	case reasonATMLogout:
		return tr.T(i18n.ReasonLogout)
	}
	return e.Reason
}

// entryRule is the clock arithmetic of an event.
func entryRule(e client.ClockEvent) string {
	if e.Dir == "send" {
		return fmt.Sprintf("%d+1 = %d", e.Before, e.After)
	}
	return fmt.Sprintf("max(%d,%d)+1 = %d", e.Before, e.Remote, e.After)
}

func (p *clockPanel) entryStyle(e client.ClockEvent) lipgloss.Style {
	s := p.c.styles
	switch {
	case e.Dir == "send":
		return s.TimeSend
	case e.Type == "push":
		return s.TimePush
	case e.Type == "error" || e.Type == "bye":
		return s.TimeErr
	}
	return s.TimeRecv
}

// entryLines renders one event in one line, with the rule written more
// tightly if needed, or in two lines when even that does not fit; an event
// the person did not ask for has one more line that says why it happened.
func (p *clockPanel) entryLines(e client.ClockEvent, inner int, latest bool) []string {
	lines := p.entryRuleLines(e, inner, latest)
	if why := entryReason(p.c.tr, e); why != "" {
		indent := "  "
		if ansi.StringWidth(why)+len(indent) > inner {
			indent = ""
		}
		lines = append(lines, indent+p.c.styles.Hint.Render(ansi.Truncate(why, max(1, inner-len(indent)), "…")))
	}
	return lines
}

func (p *clockPanel) entryRuleLines(e client.ClockEvent, inner int, latest bool) []string {
	s := p.c.styles
	label, rule := entryLabel(e), entryRule(e)
	mark := "  "
	if latest {
		mark = s.TimeLatest.Render("▶ ")
	}
	avail := inner - 2
	lw := ansi.StringWidth(label)
	for _, r := range []string{rule, strings.ReplaceAll(rule, " = ", "=")} {
		if rw := ansi.StringWidth(r); lw+1+rw <= avail {
			gap := strings.Repeat(" ", avail-lw-rw)
			return []string{mark + p.entryStyle(e).Render(label) + gap + s.TimeRule.Render(r)}
		}
	}
	first := mark + p.entryStyle(e).Render(ansi.Truncate(label, avail, "…"))
	rule = ansi.Truncate(rule, avail, "…")
	second := "  " + strings.Repeat(" ", max(0, avail-ansi.StringWidth(rule))) + s.TimeRule.Render(rule)
	return []string{first, second}
}

// innerWidth is the width of the panel's content.
func (p *clockPanel) innerWidth() int {
	return p.width - p.c.styles.Clock.GetHorizontalFrameSize()
}

func (p *clockPanel) View() string { return p.viewWithCard("") }

// viewWithCard renders the panel with card (a notice that did not fit in the
// ATM panel) above the timeline, which gives up its oldest lines for it.
func (p *clockPanel) viewWithCard(card string) string {
	s, tr := p.c.styles, p.c.tr
	inner := p.innerWidth()
	innerH := p.height - s.Clock.GetVerticalFrameSize()
	if inner < 10 || innerH < 6 {
		return ""
	}
	var lines []string
	title := s.ClockTitle.Render(tr.T(i18n.ClockTitle))
	proc := s.ClockProc.Render(p.proc)
	gap := max(1, inner-lipgloss.Width(title)-lipgloss.Width(proc))
	lines = append(lines, title+strings.Repeat(" ", gap)+proc)

	digits := s.ClockDigits
	if p.flash {
		digits = s.ClockFlash
	}
	for _, row := range renderBig(p.now, inner) {
		lines = append(lines, lipgloss.PlaceHorizontal(inner, lipgloss.Center, digits.Render(row)))
	}
	lastFrom := tr.T(i18n.ClockLastBank)
	if p.server != "" {
		lastFrom = tr.T(i18n.ClockLastFrom, p.server)
	}
	last := "—"
	if p.seen {
		last = strconv.FormatUint(p.lastTS, 10)
	}
	lines = append(lines,
		ansi.Truncate(s.Value.Render("L = "+strconv.FormatUint(p.now, 10))+s.Dim.Render(lastFrom)+s.Value.Render(last), inner, "…"),
		s.Dim.Render(ansi.Truncate(tr.T(i18n.ClockRules), inner, "…")),
	)
	if card != "" {
		lines = append(lines, strings.Split(card, "\n")...)
	}
	lines = append(lines, s.ClockRule.Render(ruleWithTitle(tr.T(i18n.ClockTimeline), inner)))

	room := innerH - len(lines)
	var tl []string
	for i := len(p.events) - 1; i >= 0 && room > 0; i-- {
		el := p.entryLines(p.events[i], inner, i == len(p.events)-1)
		if len(el) > room {
			break
		}
		tl = append(el, tl...)
		room -= len(el)
	}
	if len(p.events) == 0 {
		tl = []string{s.Hint.Render(tr.T(i18n.ClockNoMessages))}
	}
	lines = append(lines, tl...)
	body := lipgloss.NewStyle().Width(inner).Height(innerH).MaxHeight(innerH).Render(strings.Join(lines, "\n"))
	return s.Clock.Width(p.width).Height(p.height).Render(body)
}

func ruleWithTitle(title string, width int) string {
	t := "─ " + title + " "
	return t + strings.Repeat("─", max(0, width-ansi.StringWidth(t)))
}
