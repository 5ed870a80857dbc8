package watch

// The lanes and the labels: where a process's lifeline is, the line of
// lane names, and how an event is marked and named.

import (
	"strings"

	"atm/ui/i18n"
	"atm/ui/spacetime"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Layout of a row: a gutter (cursor, selection or causal marker), then
// the lanes, laneW cells each, the lifeline in the lane's first cell.
const (
	gutterW = 3
	laneW   = 19
)

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

// header is the line of lane names.
func (d *Diagram) header(w int) string {
	s := d.st
	g := newGrid(w)
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

// laneName is a process as its lane is titled: its id, and the account it
// is logged in to, if any.
func laneName(p spacetime.Process) string {
	if p.Label == "" {
		return p.ID
	}
	return p.ID + " · " + p.Label
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
