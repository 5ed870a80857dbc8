package bank

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// A Cursor is a position in the event log in its store's commit order.
// Reading the log after a cursor that a read returned gives every event
// committed since that read, each exactly once, however late another
// server publishes it. The empty cursor is the start of the log. Its text
// is the store's own: callers keep it and pass it back as it is.
//
// A store whose commit order is its timestamp order (one process, one
// writer: boltstore) uses the timestamp of the last event read, in
// decimal. A store that several servers write (etcdstore) uses a
// ProcCursor: the last timestamp read of each server, since each server
// publishes its events in timestamp order but the servers' events
// interleave in any order.
type Cursor string

// ErrBadCursor is matched by the error of a log read whose cursor is not
// one this bank's log gives.
var ErrBadCursor = errors.New("not a cursor of this bank's log")

// TSCursor is the cursor after the event at timestamp ts: the one of a
// store whose commit order is its timestamp order.
func TSCursor(ts uint64) Cursor {
	if ts == 0 {
		return ""
	}
	return Cursor(strconv.FormatUint(ts, 10))
}

// TS reads a timestamp cursor (TSCursor): 0 for the empty one.
func (c Cursor) TS() (uint64, error) {
	if c == "" {
		return 0, nil
	}
	ts, err := strconv.ParseUint(string(c), 10, 64)
	if err != nil || string(c) != strconv.FormatUint(ts, 10) {
		return 0, fmt.Errorf("%w: %q is not a timestamp", ErrBadCursor, string(c))
	}
	return ts, nil
}

// A ProcCursor is a position in a log that several processes write, each
// in rising timestamps: the last timestamp read of each process, and a
// timestamp Rest for the processes it does not name. Its text form is
// "p:ts,q:ts" with the process ids escaped (url.QueryEscape) and in
// order, preceded by the bare Rest when it is not 0; a bare timestamp
// (a TSCursor) is a ProcCursor whose Rest it is.
type ProcCursor struct {
	Rest uint64
	At   map[string]uint64
}

// ParseProcCursor reads c as a ProcCursor.
func ParseProcCursor(c Cursor) (ProcCursor, error) {
	p := ProcCursor{At: map[string]uint64{}}
	if c == "" {
		return p, nil
	}
	for i, part := range strings.Split(string(c), ",") {
		proc, tsText, named := strings.Cut(part, ":")
		if !named {
			tsText, proc = part, ""
		}
		ts, err := strconv.ParseUint(tsText, 10, 64)
		if err != nil || tsText != strconv.FormatUint(ts, 10) {
			return p, fmt.Errorf("%w: %q", ErrBadCursor, string(c))
		}
		if !named {
			if i != 0 {
				return p, fmt.Errorf("%w: %q", ErrBadCursor, string(c))
			}
			p.Rest = ts
			continue
		}
		id, err := url.QueryUnescape(proc)
		if err != nil || id == "" || url.QueryEscape(id) != proc {
			return p, fmt.Errorf("%w: %q", ErrBadCursor, string(c))
		}
		if _, dup := p.At[id]; dup {
			return p, fmt.Errorf("%w: %q", ErrBadCursor, string(c))
		}
		p.At[id] = ts
	}
	return p, nil
}

// After returns the last timestamp read of process proc.
func (p ProcCursor) After(proc string) uint64 {
	if ts, ok := p.At[proc]; ok {
		return ts
	}
	return p.Rest
}

// Read moves the cursor past e.
func (p *ProcCursor) Read(e Event) {
	if p.At == nil {
		p.At = map[string]uint64{}
	}
	p.At[e.Proc] = e.TS
}

// Cursor returns p's text form.
func (p ProcCursor) Cursor() Cursor {
	procs := make([]string, 0, len(p.At))
	for proc := range p.At {
		procs = append(procs, proc)
	}
	slices.Sort(procs)
	var b strings.Builder
	if p.Rest != 0 {
		b.WriteString(strconv.FormatUint(p.Rest, 10))
	}
	for _, proc := range procs {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(url.QueryEscape(proc))
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(p.At[proc], 10))
	}
	return Cursor(b.String())
}
