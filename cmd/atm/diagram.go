package main

import (
	"errors"
	"flag"
	"io"
	"os"

	"golang.org/x/term"

	"atm/bank"
	"atm/netproto/server"
	"atm/netproto/wire"
	"atm/ui/spacetime"
)

// diagramFlags are atm log's pictures of the log: a space-time diagram as
// text, as SVG, or as a ShiViz log, of the whole log or a part of it.
type diagramFlags struct {
	text, svg, shiviz bool
	from, to          uint64
	account, proc     string
	width             int
	entries           []wire.Entry
}

func (d *diagramFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&d.text, "diagram", false, "print the space-time diagram of the log as text")
	fs.BoolVar(&d.svg, "svg", false, "print the space-time diagram as SVG (atm log --svg > trace.svg)")
	fs.BoolVar(&d.shiviz, "shiviz", false, "print the log for ShiViz: each event, then its process and vector clock (leave ShiViz's parser field empty)")
	fs.Uint64Var(&d.from, "from", 0, "with a diagram: from this Lamport timestamp")
	fs.Uint64Var(&d.to, "to", 0, "with a diagram: up to this Lamport timestamp (0: the end)")
	fs.StringVar(&d.account, "account", "", "with a diagram: only the events of this account")
	fs.StringVar(&d.proc, "proc", "", "with a diagram: only the events of this process and its messages")
	fs.IntVar(&d.width, "width", 0, "with --diagram: width in columns (default the terminal's, else 100)")
}

func (d *diagramFlags) on() bool { return d.text || d.svg || d.shiviz }

func (d *diagramFlags) check(asJSON bool) error {
	n := 0
	for _, b := range []bool{d.text, d.svg, d.shiviz, asJSON} {
		if b {
			n++
		}
	}
	if n > 1 {
		return errors.New("choose one of --json, --diagram, --svg, --shiviz")
	}
	if !d.on() && (d.from != 0 || d.to != 0 || d.account != "" || d.proc != "") {
		return errors.New("--from, --to, --account and --proc go with --diagram, --svg or --shiviz")
	}
	return nil
}

func (d *diagramFlags) collect(e bank.Event) { d.entries = append(d.entries, server.EntryOf(e)) }

// write draws the collected log.
func (d *diagramFlags) write(w io.Writer) error {
	t := spacetime.Build(d.entries)
	if d.from != 0 || d.to != 0 || d.account != "" || d.proc != "" {
		t = t.Filter(spacetime.Filter{From: d.from, To: d.to, Account: d.account, Proc: d.proc})
	}
	switch {
	case d.svg:
		return spacetime.WriteSVG(w, t)
	case d.shiviz:
		return spacetime.WriteShiViz(w, t)
	}
	width := d.width
	if width <= 0 {
		width = 100
		if cols, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil && cols > 0 {
			width = cols
		}
	}
	return spacetime.WriteText(w, t, width)
}
