package spacetime

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// ShiVizRegexp is the parser expression ShiViz uses by default, which
// WriteShiViz's output matches.
const ShiVizRegexp = `(?<event>.*)\n(?<host>\S*) (?<clock>{.*})`

// Describe returns a one-line description of event e: its label and what
// its record says (account, recipient, amount, request id, outcome) and
// its Lamport time.
func (t *Trace) Describe(e int) string {
	ev := &t.Events[e]
	parts := []string{ev.What}
	r := ev.Entry
	if s := t.sendOf(e); s >= 0 {
		r = t.Events[s].Entry // a receive: what the message says
	}
	if r != nil {
		if r.Account != "" {
			parts = append(parts, "account="+r.Account)
		}
		if r.To != "" {
			parts = append(parts, "to="+r.To)
		}
		if r.Amount != 0 {
			parts = append(parts, "amount="+strconv.FormatInt(int64(r.Amount), 10))
		}
		if r.ReqID != "" {
			parts = append(parts, "req="+r.ReqID)
		}
		if r.Outcome != "" && r.Outcome != "ok" {
			parts = append(parts, "outcome="+r.Outcome)
		}
	}
	if ev.L != 0 {
		parts = append(parts, "L="+strconv.FormatUint(ev.L, 10))
	} else {
		parts = append(parts, "L=?")
	}
	s := strings.Join(parts, " ")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// WriteShiViz writes the trace in ShiViz's default log format (see
// ShiVizRegexp): per event, its description on one line, then its process
// id and its vector clock as JSON. Events come in an order consistent with
// happened-before; each process's own component counts its events 1, 2,
// 3...; only nonzero components are listed, so every name in a clock is a
// process with events.
func WriteShiViz(w io.Writer, t *Trace) error {
	bw := bufio.NewWriter(w)
	for _, id := range t.Order() {
		bw.WriteString(t.Describe(id))
		bw.WriteByte('\n')
		bw.WriteString(t.Procs[t.Events[id].Proc].ID)
		bw.WriteByte(' ')
		bw.WriteString(t.VCString(id))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
