package watch

// The diagram's state: the trace, its events in time order, the cursor,
// and the keys that move it.

import (
	"slices"

	"atm/netproto/wire"
	"atm/ui/i18n"
	"atm/ui/spacetime"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
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
