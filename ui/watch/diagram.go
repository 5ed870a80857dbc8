package watch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"atm/netproto/wire"
	"atm/ui/i18n"
	"atm/ui/spacetime"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Diagram is a space-time diagram of a trace: one lane per process, time
// going down, one event a row in Lamport order (ties by the order the
// events were added), messages drawn from their send to their receive. It
// draws only the rows that fit, so a trace of any length costs the same
// per frame. The watcher and the ATM's own diagram screen both use it.
type Diagram struct {
	T    *spacetime.Trace
	st   *Styles
	keys *KeyMap
	tr   *i18n.Printer // the language of its texts: keys.tr

	order   []int          // event ids in time order
	procIdx map[string]int // process index by id
	cursor  int            // index in order of the cursor row
	top     int            // index in order of the first row shown
	follow  bool           // the cursor stays on the newest event
	fresh   int            // events that arrived while paused
	lane0   int            // first lane shown
	nLanes  int            // lanes that fit in the last frame
	rows    int            // rows of events in the last frame

	a, b           int    // the selected event and the marked one (-1: none)
	marks          []int8 // by event id: -1 in a's causal past, 1 in its future
	nPast, nFuture int

	// Touched counts the events read to draw frames: a test hook showing
	// that a frame reads only the rows it shows.
	Touched int
}

// NewDiagram returns an empty diagram, following, that speaks the language
// of keys (NewKeyMap).
func NewDiagram(st *Styles, keys *KeyMap) *Diagram {
	d := &Diagram{st: st, keys: keys, tr: keys.tr, follow: true}
	d.SetTrace(spacetime.Build(nil))
	return d
}

// SetStyles changes the styles (the terminal's background became known).
func (d *Diagram) SetStyles(st *Styles) { d.st = st }

// SetTrace replaces the trace; the selection is cleared.
func (d *Diagram) SetTrace(t *spacetime.Trace) {
	d.T = t
	d.order, d.procIdx, d.marks = nil, map[string]int{}, nil
	d.a, d.b, d.cursor, d.top, d.fresh = -1, -1, 0, 0, 0
	d.sync()
}

// Add appends log entries to the trace and shows their events.
func (d *Diagram) Add(entries ...wire.Entry) {
	if len(entries) == 0 {
		return
	}
	d.T.Add(entries...)
	d.sync()
}

// Len is the number of events.
func (d *Diagram) Len() int { return len(d.order) }

// Following says the view follows new events.
func (d *Diagram) Following() bool { return d.follow }

// Selected returns the selected event and the marked one (-1: none).
func (d *Diagram) Selected() (a, b int) { return d.a, d.b }

// Cursor returns the event under the cursor (-1 when there is none).
func (d *Diagram) Cursor() int {
	if len(d.order) == 0 {
		return -1
	}
	return d.order[d.cursor]
}

func (d *Diagram) before(x, y int) bool {
	ex, ey := &d.T.Events[x], &d.T.Events[y]
	return ex.L < ey.L || (ex.L == ey.L && x < y)
}

// sync takes in the trace's new events and processes.
func (d *Diagram) sync() {
	for i := len(d.procIdx); i < len(d.T.Procs); i++ {
		d.procIdx[d.T.Procs[i].ID] = i
	}
	n, old := len(d.T.Events), len(d.order)
	if n <= old {
		return
	}
	cur := d.Cursor()
	sorted := true
	for id := old; id < n; id++ {
		if k := len(d.order); k > 0 && d.before(id, d.order[k-1]) {
			sorted = false
		}
		d.order = append(d.order, id)
	}
	if !sorted {
		slices.SortStableFunc(d.order, func(x, y int) int {
			switch {
			case d.before(x, y):
				return -1
			case d.before(y, x):
				return 1
			}
			return 0
		})
		if cur >= 0 && !d.follow {
			d.cursor = slices.Index(d.order, cur)
		}
	}
	if d.a >= 0 {
		for id := old; id < n; id++ {
			d.marks = append(d.marks, d.causalMark(id))
		}
	}
	if d.follow {
		d.cursor = len(d.order) - 1
	} else {
		d.fresh += n - old
	}
}

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

func (d *Diagram) move(n int) {
	if len(d.order) == 0 {
		return
	}
	d.follow = false
	d.cursor = max(0, min(len(d.order)-1, d.cursor+n))
}

// HandleKey applies a key of the diagram and reports whether it was one.
// esc with nothing selected is not: the screen may then go back.
func (d *Diagram) HandleKey(k tea.KeyPressMsg) bool {
	keys := d.keys
	page := max(1, d.rows-1)
	switch {
	case key.Matches(k, keys.Follow):
		d.follow = !d.follow
		if d.follow && len(d.order) > 0 {
			d.cursor, d.fresh = len(d.order)-1, 0
		}
	case key.Matches(k, keys.Up):
		d.move(-1)
	case key.Matches(k, keys.Down):
		d.move(1)
	case key.Matches(k, keys.PageUp):
		d.move(-page)
	case key.Matches(k, keys.PageDown):
		d.move(page)
	case key.Matches(k, keys.Oldest):
		d.move(-len(d.order))
	case key.Matches(k, keys.Newest):
		if len(d.order) > 0 {
			d.cursor, d.fresh = len(d.order)-1, 0
		}
	case key.Matches(k, keys.LaneLeft):
		d.lane0 = max(0, d.lane0-1)
	case key.Matches(k, keys.LaneRight):
		d.lane0 = max(0, min(len(d.T.Procs)-max(1, d.nLanes), d.lane0+1))
	case key.Matches(k, keys.Select):
		if len(d.order) > 0 {
			d.selectA()
		}
	case key.Matches(k, keys.Mark):
		switch c := d.Cursor(); {
		case c < 0:
		case d.a < 0:
			d.selectA()
		case c != d.a:
			d.b = c
		}
	case key.Matches(k, keys.Clear):
		return d.Clear()
	default:
		return false
	}
	return true
}

// ev reads an event for a frame, counted in Touched.
func (d *Diagram) ev(id int) *spacetime.Event {
	d.Touched++
	return &d.T.Events[id]
}

// Layout of a row: a gutter (cursor, selection or causal marker), then
// the lanes, laneW cells each, the lifeline in the lane's first cell.
const (
	gutterW = 3
	laneW   = 19
)

type cell struct {
	r  rune
	st *lipgloss.Style
}

type grid struct {
	c []cell
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

// lane returns the column of process p's lifeline, or the side where it is
// hidden (-1 left, 1 right).
func (d *Diagram) lane(p int) (x, side int) {
	switch {
	case p < d.lane0:
		return 0, -1
	case p >= d.lane0+d.nLanes:
		return 0, 1
	}
	return gutterW + (p-d.lane0)*laneW, 0
}

func markOf(k spacetime.EventKind) string {
	switch k {
	case spacetime.Send:
		return "●"
	case spacetime.Receive:
		return "◆"
	}
	return "■"
}

func kindName(tr *i18n.Printer, k spacetime.EventKind) string {
	switch k {
	case spacetime.Send:
		return tr.T(i18n.WatchSend)
	case spacetime.Receive:
		return tr.T(i18n.WatchReceive)
	}
	return tr.T(i18n.WatchLocal)
}

// whatPrefixes are the words spacetime.Build puts before a wire kind in an
// event's label ("recv deposit"); the kind itself is the protocol's name.
var whatPrefixes = []struct {
	word string
	msg  i18n.Key
}{
	{"recv ", i18n.WatchWhatRecv},
	{"apply ", i18n.WatchWhatApply},
	{"reply ", i18n.WatchWhatReply},
	{"error ", i18n.WatchWhatError},
}

// whatText is an event's label in tr's language.
func whatText(tr *i18n.Printer, what string) string {
	switch what {
	case "disconnect":
		return tr.T(i18n.WatchWhatDisconn)
	case "receive of an unlogged message":
		return tr.T(i18n.WatchWhatUnlog)
	}
	for _, p := range whatPrefixes {
		if rest, ok := strings.CutPrefix(what, p.word); ok {
			return tr.T(p.msg, rest)
		}
	}
	return what
}

func (d *Diagram) markStyle(e *spacetime.Event, cursor bool) *lipgloss.Style {
	s := d.st
	switch {
	case e.ID == d.a || e.ID == d.b:
		return &s.Selected
	case cursor:
		return &s.Cursor
	case d.a >= 0 && e.ID < len(d.marks) && d.marks[e.ID] < 0:
		return &s.Past
	case d.a >= 0 && e.ID < len(d.marks) && d.marks[e.ID] > 0:
		return &s.Future
	case e.Kind == spacetime.Send:
		return &s.SendMark
	case e.Kind == spacetime.Receive:
		return &s.RecvMark
	}
	return &s.Local
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

// row draws event id on a line of width w.
func (d *Diagram) row(id int, w int, cursor bool) string {
	s := d.st
	g := &grid{c: make([]cell, w)}
	for i := range g.c {
		g.c[i] = cell{' ', nil}
	}
	for p := d.lane0; p < min(len(d.T.Procs), d.lane0+d.nLanes); p++ {
		x, _ := d.lane(p)
		g.put(x, "│", &s.Life)
	}
	e := d.ev(id)
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
			} else {
				tail = g.put(tail, " ──▷"+rl, rst)
			}
		}
	}
	if what := " " + whatText(d.tr, e.What); tail < end && g.free(tail) {
		g.put(tail, i18n.Fit(what, end-tail), &s.Dim)
	}
	return g.String()
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

// header is the line of lane names.
func (d *Diagram) header(w int) string {
	s := d.st
	g := &grid{c: make([]cell, w)}
	for i := range g.c {
		g.c[i] = cell{' ', nil}
	}
	if d.lane0 > 0 {
		g.put(0, "◀", &s.Warning)
	}
	for p := d.lane0; p < min(len(d.T.Procs), d.lane0+d.nLanes); p++ {
		x, _ := d.lane(p)
		g.put(x, ansi.Truncate(laneName(d.T.Procs[p]), laneW-1, "…"), &s.Lane)
	}
	if d.lane0+d.nLanes < len(d.T.Procs) {
		g.put(w-1, "▶", &s.Warning)
	}
	return g.String()
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
		g := &grid{c: make([]cell, w)}
		for i := range g.c {
			g.c[i] = cell{' ', nil}
		}
		for p := d.lane0; p < min(len(d.T.Procs), d.lane0+d.nLanes); p++ {
			x, _ := d.lane(p)
			g.put(x, "│", &s.Life)
		}
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

// laneName is a process as its lane is titled: its id, and the account it
// is logged in to, if any.
func laneName(p spacetime.Process) string {
	if p.Label == "" {
		return p.ID
	}
	return p.ID + " · " + p.Label
}
