package spacetime

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// SVG layout.
const (
	svgLaneGap = 150
	svgLeft    = 90
	svgTop     = 70
	svgRow     = 26
	svgStub    = 45
)

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// WriteSVG writes the diagram as an SVG image: a vertical lifeline per
// process (a line of class "lifeline" with data-proc naming it, under a
// text with its id and label), a dot per event with its L (its
// description as a tooltip), and a line of class "message" per message
// from its send to its receive, with an arrow head. A message whose
// receive is unknown is a short dashed stub ending in "?"; one whose send
// was filtered out is a dashed stub into its receive.
func WriteSVG(w io.Writer, t *Trace) error {
	bw := bufio.NewWriter(w)
	order := t.Order()
	row := make([]int, len(t.Events))
	for i, id := range order {
		row[id] = i
	}
	x := func(p int) int { return svgLeft + p*svgLaneGap }
	y := func(id int) int { return svgTop + row[id]*svgRow }
	width := svgLeft*2 + max(len(t.Procs)-1, 0)*svgLaneGap
	height := svgTop + len(order)*svgRow + 30
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="monospace" font-size="11">`+"\n", width, height, width, height)
	bw.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>` + "\n")
	for p, pr := range t.Procs {
		label := pr.ID
		if pr.Label != "" {
			label += " (" + pr.Label + ")"
		}
		fmt.Fprintf(bw, `<g class="process"><text x="%d" y="%d" text-anchor="middle" font-weight="bold">%s</text>`, x(p), svgTop-30, xmlText(label))
		fmt.Fprintf(bw, `<line class="lifeline" data-proc="%s" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/></g>`+"\n",
			xmlText(pr.ID), x(p), svgTop-20, x(p), height-10)
	}
	for _, m := range t.Messages {
		switch {
		case m.Send >= 0 && m.Recv >= 0:
			s, r := &t.Events[m.Send], &t.Events[m.Recv]
			fmt.Fprintf(bw, `<line class="message" data-msg="%d" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333" marker-end="url(#arrow)"><title>%s</title></line>`+"\n",
				m.ID, x(s.Proc), y(m.Send), x(r.Proc), y(m.Recv), xmlText(m.What))
		case m.Send >= 0:
			s := &t.Events[m.Send]
			dx := svgStub
			if d, ok := t.procIdx[t.msgDest[m.ID]]; ok && d < s.Proc {
				dx = -svgStub
			}
			x2, y2 := x(s.Proc)+dx, y(m.Send)+svgRow/2
			fmt.Fprintf(bw, `<line class="message unknown" data-msg="%d" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#c33" stroke-dasharray="4 3"><title>%s: receive unknown</title></line>`+"\n",
				m.ID, x(s.Proc), y(m.Send), x2, y2, xmlText(m.What))
			fmt.Fprintf(bw, `<text x="%d" y="%d" fill="#c33">?</text>`+"\n", x2+2, y2+4)
		default:
			r := &t.Events[m.Recv]
			fmt.Fprintf(bw, `<line class="message unknown" data-msg="%d" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#c33" stroke-dasharray="4 3" marker-end="url(#arrow)"><title>%s: send not shown</title></line>`+"\n",
				m.ID, x(r.Proc)-svgStub, y(m.Recv)-svgRow/2, x(r.Proc), y(m.Recv), xmlText(m.What))
		}
	}
	for _, id := range order {
		ev := &t.Events[id]
		fill := map[EventKind]string{Send: "#1f6feb", Receive: "#2da44e", Local: "#666"}[ev.Kind]
		fmt.Fprintf(bw, `<circle class="event %s" cx="%d" cy="%d" r="4" fill="%s"><title>%s %s</title></circle>`,
			ev.Kind, x(ev.Proc), y(id), fill, xmlText(t.Describe(id)), xmlText(t.VCString(id)))
		fmt.Fprintf(bw, `<text x="%d" y="%d">%d</text>`+"\n", x(ev.Proc)+7, y(id)-4, ev.L)
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}
