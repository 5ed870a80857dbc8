package watch

// Drawing a frame: the rows of events around the cursor, each on a grid
// of styled cells, the messages between lanes, and the status line.

import (
	"fmt"
	"strconv"
	"strings"

	"atm/ui/i18n"
	"atm/ui/spacetime"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// ev reads an event for a frame, counted in Touched.
func (d *Diagram) ev(id int) *spacetime.Event {
	d.Touched++
	return &d.T.Events[id]
}

type cell struct {
	r  rune
	st *lipgloss.Style
}

type grid struct {
	c []cell
}

// newGrid is a blank line of w cells.
func newGrid(w int) *grid {
	g := &grid{c: make([]cell, w)}
	for i := range g.c {
		g.c[i] = cell{' ', nil}
	}
	return g
}

// lifelines draws the lifelines of the lanes shown on g.
func (d *Diagram) lifelines(g *grid) {
	for p := d.lane0; p < min(len(d.T.Procs), d.lane0+d.nLanes); p++ {
		x, _ := d.lane(p)
		g.put(x, "│", &d.st.Life)
	}
}

func (g *grid) put(x int, s string, st *lipgloss.Style) int {
	for _, r := range s {
		if x >= 0 && x < len(g.c) {
			g.c[x] = cell{r, st}
		}
		x++
	}
	return x
}

func (g *grid) free(x int) bool { return x >= 0 && x < len(g.c) && g.c[x].r == ' ' }

func (g *grid) String() string {
	var b strings.Builder
	for i := 0; i < len(g.c); {
		j := i
		var run strings.Builder
		for j < len(g.c) && g.c[j].st == g.c[i].st {
			run.WriteRune(g.c[j].r)
			j++
		}
		if st := g.c[i].st; st != nil {
			b.WriteString(st.Render(run.String()))
		} else {
			b.WriteString(run.String())
		}
		i = j
	}
	return strings.TrimRight(b.String(), " ")
}

// View draws the diagram in exactly h lines of at most w cells: the lanes,
// the rows of events around the cursor, the details of the selection and
// a status line.
func (d *Diagram) View(w, h int) string {
	s := d.st
	d.nLanes = max(1, (w-gutterW)/laneW)
	d.lane0 = max(0, min(d.lane0, len(d.T.Procs)-d.nLanes))
	details := d.details(w)
	if len(details) > h-4 {
		details = details[:max(0, h-4)]
	}
	rows := max(1, h-2-len(details))
	d.rows = rows
	n := len(d.order)
	if n > 0 {
		d.cursor = max(0, min(d.cursor, n-1))
		if d.cursor < d.top {
			d.top = d.cursor
		}
		if d.cursor >= d.top+rows {
			d.top = d.cursor - rows + 1
		}
		d.top = max(0, min(d.top, n-rows))
	}
	lines := make([]string, 0, h)
	lines = append(lines, d.header(w))
	for i := d.top; i < min(n, d.top+rows); i++ {
		lines = append(lines, d.row(d.order[i], w, i == d.cursor))
	}
	if n == 0 {
		lines = append(lines, s.Hint.Render(d.tr.T(i18n.WatchNoEvents)))
	}
	for len(lines) < 1+rows {
		g := newGrid(w)
		d.lifelines(g)
		lines = append(lines, g.String())
	}
	lines = append(lines, details...)
	lines = append(lines, d.status(w))
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "…")
		}
	}
	return strings.Join(lines, "\n")
}

// row draws event id on a line of width w.
func (d *Diagram) row(id int, w int, cursor bool) string {
	s := d.st
	g := newGrid(w)
	d.lifelines(g)
	e := d.ev(id)
	d.gutter(g, id, cursor)
	mst := d.markStyle(e, cursor)
	lbl := markOf(e.Kind) + strconv.FormatUint(e.L, 10)
	x, side := d.lane(e.Proc)
	switch side {
	case -1:
		g.put(gutterW, "‹"+lbl+" "+laneName(d.T.Procs[e.Proc]), mst)
		return g.String()
	case 1:
		t := laneName(d.T.Procs[e.Proc]) + " " + lbl + "›"
		g.put(w-ansi.StringWidth(t), t, mst)
		return g.String()
	}
	tail := g.put(x, lbl, mst)
	end := min(w, x+laneW-1) // the text of the event stops before the next lane
	if e.Msg >= 0 && e.Msg < len(d.T.Messages) {
		m := d.T.Messages[e.Msg]
		switch e.Kind {
		case spacetime.Receive:
			if m.Send >= 0 {
				snd := d.ev(m.Send)
				tail = d.drawIncoming(g, x, tail, snd)
			}
		case spacetime.Send:
			tail = d.drawOutgoing(g, x, tail, e, m)
		}
	}
	if what := " " + whatText(d.tr, e.What); tail < end && g.free(tail) {
		g.put(tail, i18n.Fit(what, end-tail), &s.Dim)
	}
	return g.String()
}

// gutter draws the gutter of event id's row: the cursor, and a or b for
// the selected and marked events, or ▲ and ▼ for the selection's causal
// past and future.
func (d *Diagram) gutter(g *grid, id int, cursor bool) {
	s := d.st
	if cursor {
		g.put(0, "›", &s.Cursor)
	}
	switch {
	case id == d.a:
		g.put(1, "a", &s.Selected)
	case id == d.b:
		g.put(1, "b", &s.Selected)
	case d.a >= 0 && id < len(d.marks) && d.marks[id] < 0:
		g.put(1, "▲", &s.Past)
	case d.a >= 0 && id < len(d.marks) && d.marks[id] > 0:
		g.put(1, "▼", &s.Future)
	}
}

// drawOutgoing draws, on the row of send e at column x, its message m: a
// stub pointing left at a receiver on an earlier lane, or an arrow after
// the mark with the receive's L ("?" when unknown). It returns where the
// event's text may start.
func (d *Diagram) drawOutgoing(g *grid, x, tail int, e *spacetime.Event, m spacetime.Message) int {
	s := d.st
	to, rl := -1, "?"
	if m.Recv >= 0 {
		r := d.ev(m.Recv)
		to, rl = r.Proc, strconv.FormatUint(r.L, 10)
	} else {
		to = d.peer(e)
	}
	rst := &s.Line
	if m.Recv < 0 {
		rst = &s.Unknown
	}
	if to >= 0 && to < e.Proc {
		stub := rl + "◁──"
		start := max(gutterW, x-ansi.StringWidth(stub))
		g.put(start, stub, rst)
		return tail
	}
	return g.put(tail, " ──▷"+rl, rst)
}

// drawIncoming draws, on the row of a receive at column x, the line from
// its send's lane; it returns where the event's text may start.
func (d *Diagram) drawIncoming(g *grid, x, tail int, snd *spacetime.Event) int {
	s := d.st
	sx, side := d.lane(snd.Proc)
	sl := strconv.FormatUint(snd.L, 10)
	switch {
	case side == 0 && sx < x:
		line := "╰─" + sl + strings.Repeat("─", max(0, x-sx-3-len(sl))) + "▶"
		if x-sx-1 < len(sl)+3 {
			line = "╰" + strings.Repeat("─", max(0, x-sx-2)) + "▶"
		}
		g.put(sx, line, &s.Line)
	case side == 0 && sx > x:
		n := sx - tail
		line := "◀" + strings.Repeat("─", max(0, n-2-len(sl))) + sl + "─╯"
		if n < len(sl)+3 {
			line = "◀" + strings.Repeat("─", max(0, n-2)) + "╯"
		}
		return g.put(tail, line, &s.Line)
	case side < 0:
		line := "‹" + sl + strings.Repeat("┄", max(0, x-gutterW-2-len(sl))) + "▶"
		g.put(gutterW, line, &s.Line)
	default:
		n := len(g.c) - tail
		return g.put(tail, "◀"+strings.Repeat("┄", max(0, n-2-len(sl)))+sl+"›", &s.Line)
	}
	return tail
}

// peer is the process a send is meant for when its receive is unknown
// (-1 when the log does not say).
func (d *Diagram) peer(e *spacetime.Event) int {
	if e.Entry == nil {
		return -1
	}
	id := e.Entry.Proc
	if d.T.Procs[e.Proc].Bank {
		id = e.Entry.Client
	}
	if p, ok := d.procIdx[id]; ok && p != e.Proc {
		return p
	}
	return -1
}

// status says whether the view follows, how many events there are and
// which lanes are shown.
func (d *Diagram) status(w int) string {
	s, tr := d.st, d.tr
	var parts []string
	if d.follow {
		parts = append(parts, s.Value.Render(tr.T(i18n.WatchFollowing)))
	} else {
		p := tr.T(i18n.WatchPaused)
		if d.fresh > 0 {
			p = tr.T(i18n.WatchPausedNew, d.fresh)
		}
		parts = append(parts, s.Warning.Render(p))
	}
	if n := len(d.order); n > 0 {
		parts = append(parts, s.Dim.Render(tr.T(i18n.WatchEventOf, d.cursor+1, n)))
	}
	np := len(d.T.Procs)
	last := min(np, d.lane0+d.nLanes)
	lanes := tr.T(i18n.WatchLanes, min(np, d.lane0+1), last, np)
	if hidden := np - (last - d.lane0); hidden > 0 {
		lanes += tr.T(i18n.WatchHidden, hidden)
		if d.lane0 > 0 {
			lanes += fmt.Sprintf(" ◀%d", d.lane0)
		}
		if r := np - last; r > 0 {
			lanes += fmt.Sprintf(" %d▶", r)
		}
		lanes += " (←/→)"
	}
	parts = append(parts, s.Dim.Render(lanes))
	return ansi.Truncate(" "+strings.Join(parts, s.Dim.Render("  ·  ")), w, "…")
}
