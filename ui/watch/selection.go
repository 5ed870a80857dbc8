package watch

// The selection: an event, its causal past and future, a second event
// marked to compare with, and what the log says of them.

import (
	"fmt"
	"strconv"
	"strings"

	"atm/ui/i18n"

	"github.com/charmbracelet/x/ansi"
)

func (d *Diagram) causalMark(id int) int8 {
	switch {
	case d.T.HappenedBefore(id, d.a):
		d.nPast++
		return -1
	case d.T.HappenedBefore(d.a, id):
		d.nFuture++
		return 1
	}
	return 0
}

// selectA makes the event under the cursor the selection, its causal past
// and future highlighted.
func (d *Diagram) selectA() {
	d.a, d.b = d.Cursor(), -1
	d.marks = make([]int8, len(d.T.Events))
	past, future := d.T.Causal(d.a)
	for _, i := range past {
		d.marks[i] = -1
	}
	for _, i := range future {
		d.marks[i] = 1
	}
	d.nPast, d.nFuture = len(past), len(future)
}

// Clear drops the selection; false when there was none.
func (d *Diagram) Clear() bool {
	if d.a < 0 && d.b < 0 {
		return false
	}
	d.a, d.b, d.marks, d.nPast, d.nFuture = -1, -1, nil, 0, 0
	return true
}

// details describes the selection: the event a, its causal past and
// future, and with b marked the order of the two.
func (d *Diagram) details(w int) []string {
	if d.a < 0 {
		return nil
	}
	s, tr := d.st, d.tr
	lines := []string{s.Rule.Render(ruleWithTitle(tr.T(i18n.WatchSelection), w))}
	lines = append(lines, d.describe("a", d.a, w)...)
	if d.b < 0 {
		lines = append(lines, joinFit("  ", []string{s.Past.Render(tr.T(i18n.WatchPast, d.nPast)),
			s.Future.Render(tr.T(i18n.WatchFuture, d.nFuture)), s.Dim.Render(tr.T(i18n.WatchRest)),
			s.Dim.Render(tr.T(i18n.WatchMarkB))}, s.Dim.Render(" · "), w))
		return lines
	}
	lines = append(lines, d.describe("b", d.b, w)...)
	la, lb := d.ev(d.a).L, d.ev(d.b).L
	var verdict string
	switch {
	case d.T.HappenedBefore(d.a, d.b):
		verdict = tr.T(i18n.WatchAB)
	case d.T.HappenedBefore(d.b, d.a):
		verdict = tr.T(i18n.WatchBA)
	default:
		verdict = tr.T(i18n.WatchConcurrent)
	}
	lines = append(lines, "  "+s.Verdict.Render(verdict)+s.Dim.Render(fmt.Sprintf("   L(a)=%d  L(b)=%d", la, lb)))
	if d.T.Concurrent(d.a, d.b) {
		switch {
		case la < lb:
			lines = append(lines, "  "+s.Lesson.Render(tr.T(i18n.WatchLessonAB)))
		case lb < la:
			lines = append(lines, "  "+s.Lesson.Render(tr.T(i18n.WatchLessonBA)))
		}
	}
	return lines
}

// describe is what the log says of event id: its kind, process, account,
// amount and request, every timestamp of its record and its vector clock.
func (d *Diagram) describe(tag string, id int, w int) []string {
	s, tr := d.st, d.tr
	e := d.ev(id)
	proc := laneName(d.T.Procs[e.Proc])
	head := "  " + s.Selected.Render(tag) + " " + s.Value.Render(fmt.Sprintf("%s %s L=%d", markOf(e.Kind), kindName(tr, e.Kind), e.L)) +
		s.Dim.Render(tr.T(i18n.WatchOn)) + s.Value.Render(proc) + s.Dim.Render(" · ") + s.Text.Render(whatText(tr, e.What))
	lines := []string{head}
	if r := e.Entry; r != nil {
		var f []string
		add := func(label, v string) {
			if v != "" {
				f = append(f, s.Label.Render(label)+" "+s.Text.Render(v))
			}
		}
		add(tr.T(i18n.WatchFieldKind), r.Kind)
		add(tr.T(i18n.WatchFieldAcct), r.Account)
		add(tr.T(i18n.WatchFieldTo), r.To)
		if r.Amount != 0 {
			add(tr.T(i18n.WatchFieldAmount), r.Amount.String())
		}
		add(tr.T(i18n.WatchFieldReq), r.ReqID)
		if r.Outcome != "" && r.Outcome != "ok" {
			add(tr.T(i18n.WatchFieldResult), r.Outcome)
		}
		lines = append(lines, joinFit("    ", f, s.Dim.Render(" · "), w))
		var ts []string
		tsf := func(label string, v uint64) {
			if v != 0 {
				ts = append(ts, s.Label.Render(label)+"="+s.Value.Render(strconv.FormatUint(v, 10)))
			}
		}
		tsf(tr.T(i18n.WatchClientSent), r.ClientTS)
		tsf(tr.T(i18n.WatchBankRecv), r.RecvTS)
		tsf(tr.T(i18n.WatchApply), r.TS)
		tsf(tr.T(i18n.WatchReply), r.ReplyTS)
		if r.Origin != "" { // a push of another server's change: that change
			ts = append(ts, s.Label.Render("←")+s.Value.Render(fmt.Sprintf("%s@%d", r.Origin, r.OrigTS)))
		} else {
			tsf(tr.T(i18n.WatchFirst), r.OrigTS)
		}
		for _, sn := range r.Seen {
			ts = append(ts, s.Label.Render(tr.T(i18n.WatchSeen))+s.Value.Render(fmt.Sprintf("%d@%d", sn.TS, sn.At)))
		}
		lines = append(lines, joinFit("    "+s.Label.Render(tr.T(i18n.WatchRecord)), ts, " ", w))
	}
	lines = append(lines, "    "+s.Label.Render("VC ")+s.Value.Render(d.T.VCString(id)))
	return lines
}

// joinFit joins styled parts with sep after lead, as many whole parts as
// fit in w cells; " …" says that more did not fit.
func joinFit(lead string, parts []string, sep string, w int) string {
	line := lead
	for i, p := range parts {
		next := p
		if i > 0 {
			next = sep + p
		}
		more := 0
		if i < len(parts)-1 {
			more = 2 // room for " …"
		}
		if ansi.StringWidth(line)+ansi.StringWidth(next)+more > w {
			return line + " …"
		}
		line += next
	}
	return line
}

func ruleWithTitle(title string, width int) string {
	t := "─ " + title + " "
	return t + strings.Repeat("─", max(0, width-ansi.StringWidth(t)))
}
