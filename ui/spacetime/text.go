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
	order := t.Order()
	lw := 9
	for _, e := range t.Events {
		lw = max(lw, len(strconv.FormatUint(e.L, 10))+5)
	}
	const minNote = 20
	fit := max(1, (width-minNote)/lw)
	shown, hidden := t.chooseLanes(fit)
	col := make([]int, len(t.Procs)) // lane index on screen, -1 hidden
	for i := range col {
		col[i] = -1
	}
	for i, p := range shown {
		col[p] = i
	}
	lanesW := len(shown) * lw
	cut := func(s string, n int) string {
		r := []rune(s)
		if len(r) <= n {
			return s
		}
		if n <= 1 {
			return string(r[:max(n, 0)])
		}
		return string(r[:n-1]) + "…"
	}
	line := func(s string) {
		bw.WriteString(strings.TrimRight(cut(s, width), " "))
		bw.WriteByte('\n')
	}
	var names, labels strings.Builder
	for _, p := range shown {
		fmt.Fprintf(&names, "%-*s", lw, cut(t.Procs[p].ID, lw-1))
		lab := ""
		if t.Procs[p].Label != "" {
			lab = "(" + t.Procs[p].Label + ")"
		}
		fmt.Fprintf(&labels, "%-*s", lw, cut(lab, lw-1))
	}
	line(names.String())
	if strings.TrimSpace(labels.String()) != "" {
		line(labels.String())
	}
	if len(hidden) > 0 {
		ids := make([]string, len(hidden))
		for i, p := range hidden {
			ids[i] = t.Procs[p].ID
		}
		line("not shown (too narrow): " + strings.Join(ids, ", "))
	}
	center := func(lane int) int { return lane*lw + 1 }
	for _, id := range order {
		ev := &t.Events[id]
		me := col[ev.Proc]
		if me < 0 {
			continue
		}
		row := []rune(strings.Repeat(" ", lanesW))
		for i := range shown {
			row[center(i)] = '│'
		}
		c := center(me)
		mark := "●" + strconv.FormatUint(ev.L, 10)
		end := c + copy(row[c:], []rune(mark))
		note := t.Procs[ev.Proc].ID + " " + ev.What
		switch ev.Kind {
		case Receive:
			s := t.Messages[ev.Msg].Send
			if s < 0 {
				note += " ← (sender not in this view)"
				break
			}
			se := &t.Events[s]
			note += " ← " + t.Procs[se.Proc].ID + "@" + strconv.FormatUint(se.L, 10)
			sc := col[se.Proc]
			if sc < 0 {
				note += " (not shown)"
				break
			}
			if sc < me {
				from := center(sc)
				row[from] = '╰'
				for x := from + 1; x < c-1; x++ {
					row[x] = '─'
				}
				row[c-1] = '▶'
			} else if sc > me {
				to := center(sc)
				row[end] = '◀'
				for x := end + 1; x < to; x++ {
					row[x] = '─'
				}
				row[to] = '╯'
			}
		case Send:
			r := t.Messages[ev.Msg].Recv
			if r < 0 {
				copy(row[end:], []rune("─?"))
				dest := t.msgDest[ev.Msg]
				if dest == "" {
					dest = "?"
				}
				note += " → " + dest + " (receive unknown)"
				break
			}
			re := &t.Events[r]
			note += " → " + t.Procs[re.Proc].ID + "@" + strconv.FormatUint(re.L, 10)
			for _, m := range t.more[ev.ID] {
				if r := t.Messages[m].Recv; r >= 0 {
					re := &t.Events[r]
					note += ", " + t.Procs[re.Proc].ID + "@" + strconv.FormatUint(re.L, 10)
				}
			}
		}
		if ev.Account != "" {
			note += " [" + ev.Account + "]"
		}
		line(string(row) + " " + note)
	}
	return bw.Flush()
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
