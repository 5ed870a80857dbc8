package spacetime

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// WriteText writes the diagram as plain text at most width columns wide:
// one lane per process (names and accounts on top), time going down, one
// row per event in an order consistent with happened-before. An event is
// "●" with its L ("●0" when its process did not say); a message is drawn on
// its receive's row, from the sender's lane ("╰" or "╯") to the receive
// ("▶" or "◀"); a send whose receive is unknown ends in "─?". Each row ends
// with the event's process, label and the other end of its message. When
// the lanes do not all fit, the bank and the busiest processes are shown,
// and a line says which are left out (their events are not drawn).
func WriteText(w io.Writer, t *Trace, width int) error {
	bw := bufio.NewWriter(w)
	line := func(s string) {
		bw.WriteString(strings.TrimRight(cutText(s, width), " "))
		bw.WriteByte('\n')
	}
	l := t.textLanes(width)
	for _, s := range l.header(t) {
		line(s)
	}
	for _, id := range t.Order() {
		if ev := &t.Events[id]; l.col[ev.Proc] >= 0 {
			line(l.row(t, ev))
		}
	}
	return bw.Flush()
}

// textLanes is the layout of a text diagram: which processes have a lane,
// where, and how wide the lanes are.
type textLanes struct {
	lw     int   // the width of a lane
	shown  []int // the processes with a lane, in the trace's order
	hidden []int // those left out
	col    []int // each process's lane on screen, -1 when hidden
}

// textLanes lays the diagram out in width columns: the lanes are as wide
// as the widest mark, and leave room for the notes.
func (t *Trace) textLanes(width int) *textLanes {
	l := &textLanes{lw: 9}
	for _, e := range t.Events {
		l.lw = max(l.lw, len(strconv.FormatUint(e.L, 10))+5)
	}
	const minNote = 20
	l.shown, l.hidden = t.chooseLanes(max(1, (width-minNote)/l.lw))
	l.col = make([]int, len(t.Procs))
	for i := range l.col {
		l.col[i] = -1
	}
	for i, p := range l.shown {
		l.col[p] = i
	}
	return l
}

// center is the column of a lane's line.
func (l *textLanes) center(lane int) int { return lane*l.lw + 1 }

// header is the lines above the lanes: the processes' names, their labels
// (when any has one), and which processes are left out.
func (l *textLanes) header(t *Trace) []string {
	var names, labels strings.Builder
	for _, p := range l.shown {
		fmt.Fprintf(&names, "%-*s", l.lw, cutText(t.Procs[p].ID, l.lw-1))
		lab := ""
		if t.Procs[p].Label != "" {
			lab = "(" + t.Procs[p].Label + ")"
		}
		fmt.Fprintf(&labels, "%-*s", l.lw, cutText(lab, l.lw-1))
	}
	lines := []string{names.String()}
	if strings.TrimSpace(labels.String()) != "" {
		lines = append(lines, labels.String())
	}
	if len(l.hidden) > 0 {
		ids := make([]string, len(l.hidden))
		for i, p := range l.hidden {
			ids[i] = t.Procs[p].ID
		}
		lines = append(lines, "not shown (too narrow): "+strings.Join(ids, ", "))
	}
	return lines
}

// row is the line of event ev: the lanes with its mark and its message,
// then its note.
func (l *textLanes) row(t *Trace, ev *Event) string {
	row := []rune(strings.Repeat(" ", len(l.shown)*l.lw))
	for i := range l.shown {
		row[l.center(i)] = '│'
	}
	c := l.center(l.col[ev.Proc])
	end := c + copy(row[c:], []rune("●"+strconv.FormatUint(ev.L, 10)))
	note := t.Procs[ev.Proc].ID + " " + ev.What
	switch ev.Kind {
	case Receive:
		note += l.drawReceive(t, ev, row, c, end)
	case Send:
		note += drawSend(t, ev, row, end)
	}
	if ev.Account != "" {
		note += " [" + ev.Account + "]"
	}
	return string(row) + " " + note
}

// drawReceive draws on row the message that receive ev took, from the
// sender's lane to ev's mark (columns c to end), and returns what the note
// says of the sender.
func (l *textLanes) drawReceive(t *Trace, ev *Event, row []rune, c, end int) string {
	s := t.Messages[ev.Msg].Send
	if s < 0 {
		return " ← (sender not in this view)"
	}
	se := &t.Events[s]
	note := " ← " + t.at(se)
	sc, me := l.col[se.Proc], l.col[ev.Proc]
	switch {
	case sc < 0:
		note += " (not shown)"
	case sc < me:
		from := l.center(sc)
		row[from] = '╰'
		for x := from + 1; x < c-1; x++ {
			row[x] = '─'
		}
		row[c-1] = '▶'
	case sc > me:
		to := l.center(sc)
		row[end] = '◀'
		for x := end + 1; x < to; x++ {
			row[x] = '─'
		}
		row[to] = '╯'
	}
	return note
}

// drawSend marks on row a send whose receive is unknown ("─?" after its
// mark, which ends at end) and returns what the note says of the
// receivers.
func drawSend(t *Trace, ev *Event, row []rune, end int) string {
	r := t.Messages[ev.Msg].Recv
	if r < 0 {
		copy(row[end:], []rune("─?"))
		dest := t.msgDest[ev.Msg]
		if dest == "" {
			dest = "?"
		}
		return " → " + dest + " (receive unknown)"
	}
	note := " → " + t.at(&t.Events[r])
	for _, m := range t.more[ev.ID] {
		if r := t.Messages[m].Recv; r >= 0 {
			note += ", " + t.at(&t.Events[r])
		}
	}
	return note
}

// at names event e as the notes do: "process@L".
func (t *Trace) at(e *Event) string {
	return t.Procs[e.Proc].ID + "@" + strconv.FormatUint(e.L, 10)
}

// cutText cuts s to n runes, the last one "…" when s is longer.
func cutText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:max(n, 0)])
	}
	return string(r[:n-1]) + "…"
}

// chooseLanes picks at most n processes to show: banks first, then the
// processes with the most events; shown keeps the trace's order.
func (t *Trace) chooseLanes(n int) (shown, hidden []int) {
	all := make([]int, len(t.Procs))
	for i := range all {
		all[i] = i
	}
	if len(all) <= n {
		return all, nil
	}
	rank := append([]int(nil), all...)
	sort.SliceStable(rank, func(i, j int) bool {
		a, b := t.Procs[rank[i]], t.Procs[rank[j]]
		if a.Bank != b.Bank {
			return a.Bank
		}
		return len(t.lanes[rank[i]]) > len(t.lanes[rank[j]])
	})
	keep := make([]bool, len(all))
	for _, p := range rank[:n] {
		keep[p] = true
	}
	for _, p := range all {
		if keep[p] {
			shown = append(shown, p)
		} else {
			hidden = append(hidden, p)
		}
	}
	return shown, hidden
}
