// Package spacetime turns the bank's event log into the model of a
// space-time diagram: processes, their events in Lamport order, the
// messages between them and the vector clock of every event.
//
// This file is a placeholder of the package's API, simple and correct
// enough to build and test the watch view on; the full package replaces it.
package spacetime

import (
	"fmt"
	"strings"

	"atm/netproto/wire"
)

// EventKind says what an event is on its process's lifeline.
type EventKind int

// Kinds of event.
const (
	Send EventKind = iota
	Receive
	Local
)

// Event is one event of one process.
type Event struct {
	ID    int
	Proc  int       // index in Trace.Procs
	L     uint64    // its Lamport timestamp
	Kind  EventKind // Send, Receive or Local
	Msg   int       // the message sent or received, -1 for Local
	What  string
	Entry *wire.Entry // the log record it comes from
	VC    []uint64    // its vector clock, indexed like Trace.Procs
}

// Message is a message from one event to another.
type Message struct {
	ID   int
	Send int // event id
	Recv int // event id, -1 when the receive is unknown
	What string
}

// Process is one lifeline.
type Process struct {
	ID    string
	Label string
	Bank  bool
}

// Trace is the diagram's model.
type Trace struct {
	Procs    []Process
	Events   []Event
	Messages []Message

	procIdx map[string]int
	cur     [][]uint64          // each process's latest vector clock
	sends   map[sendKey]int     // a bank's sends by timestamp: message id
	pending map[sendKey]pending // receives reported before their send
	entries []*wire.Entry
}

type sendKey struct {
	proc string
	ts   uint64
}

type pending struct {
	client string
	at     uint64
}

// Build returns the trace of entries.
func Build(entries []wire.Entry) *Trace {
	t := &Trace{}
	t.Add(entries...)
	return t
}

func (t *Trace) init() {
	if t.procIdx == nil {
		t.procIdx = map[string]int{}
		t.sends = map[sendKey]int{}
		t.pending = map[sendKey]pending{}
	}
}

func (t *Trace) proc(id string, bank bool) int {
	if i, ok := t.procIdx[id]; ok {
		return i
	}
	i := len(t.Procs)
	t.procIdx[id] = i
	t.Procs = append(t.Procs, Process{ID: id, Label: id, Bank: bank})
	t.cur = append(t.cur, nil)
	return i
}

// event appends an event of process p, its vector clock being the
// process's latest ticked, merged with from's when it is a receive.
func (t *Trace) event(p int, l uint64, k EventKind, msg int, what string, e *wire.Entry, from int) int {
	vc := make([]uint64, len(t.Procs))
	copy(vc, t.cur[p])
	if from >= 0 {
		for i, v := range t.Events[from].VC {
			vc[i] = max(vc[i], v)
		}
	}
	vc[p]++
	t.cur[p] = vc
	id := len(t.Events)
	t.Events = append(t.Events, Event{ID: id, Proc: p, L: l, Kind: k, Msg: msg, What: what, Entry: e, VC: vc})
	return id
}

func (t *Trace) send(p int, l uint64, what string, e *wire.Entry) int {
	m := len(t.Messages)
	t.Messages = append(t.Messages, Message{ID: m, Recv: -1, What: what})
	t.Messages[m].Send = t.event(p, l, Send, m, what, e, -1)
	return m
}

func (t *Trace) recv(p int, l uint64, m int, e *wire.Entry) {
	t.Messages[m].Recv = t.event(p, l, Receive, m, t.Messages[m].What, e, t.Messages[m].Send)
}

// bankSend is a send of bank p at ts whose receive a client may report.
func (t *Trace) bankSend(p int, ts uint64, what string, e *wire.Entry) {
	m := t.send(p, ts, what, e)
	k := sendKey{t.Procs[p].ID, ts}
	t.sends[k] = m
	if r, ok := t.pending[k]; ok {
		delete(t.pending, k)
		t.recv(t.proc(r.client, false), r.at, m, e)
	}
}

// Add appends entries of the log, oldest first.
func (t *Trace) Add(entries ...wire.Entry) {
	t.init()
	for i := range entries {
		e := new(wire.Entry)
		*e = entries[i]
		t.entries = append(t.entries, e)
		t.add(e)
	}
}

func (t *Trace) add(e *wire.Entry) {
	b := t.proc(e.Proc, true)
	switch {
	case e.Client != "" && e.ClientTS != 0:
		c := t.proc(e.Client, false)
		// The receives the client reports came before its request.
		for _, s := range e.Seen {
			k := sendKey{e.Proc, s.TS}
			if m, ok := t.sends[k]; ok && t.Messages[m].Recv < 0 {
				t.recv(c, s.At, m, e)
			} else if !ok {
				t.pending[k] = pending{e.Client, s.At}
			}
		}
		m := t.send(c, e.ClientTS, e.Kind, e)
		if e.RecvTS != 0 {
			t.recv(b, e.RecvTS, m, e)
		}
		if e.TS != 0 {
			what := "apply " + e.Kind
			if e.Outcome != "" && e.Outcome != "ok" {
				what += " ✗ " + e.Outcome
			}
			t.event(b, e.TS, Local, -1, what, e, -1)
		}
		if e.ReplyTS != 0 {
			t.bankSend(b, e.ReplyTS, "reply "+e.Kind, e)
		}
		if e.Outcome == "ok" || e.Outcome == "" {
			switch e.Kind {
			case wire.KindLogin:
				t.Procs[c].Label = e.Client + " · " + e.Account
			case wire.KindLogout:
				t.Procs[c].Label = e.Client
			}
		}
	case e.Kind == wire.KindPush:
		if e.Client != "" {
			t.proc(e.Client, false)
		}
		t.bankSend(b, e.TS, "push", e)
	case e.Kind == wire.KindConnect:
		t.bankSend(b, e.TS, "hello", e)
	default:
		t.event(b, e.TS, Local, -1, e.Kind, e, -1)
	}
}

func (t *Trace) vc(e int) []uint64 { return t.Events[e].VC }

// HappenedBefore says a → b.
func (t *Trace) HappenedBefore(a, b int) bool {
	if a == b {
		return false
	}
	va, vb := t.vc(a), t.vc(b)
	less := false
	for i := range max(len(va), len(vb)) {
		x, y := at(va, i), at(vb, i)
		if x > y {
			return false
		}
		if x < y {
			less = true
		}
	}
	return less
}

func at(v []uint64, i int) uint64 {
	if i < len(v) {
		return v[i]
	}
	return 0
}

// Concurrent says a ∥ b: neither happened before the other.
func (t *Trace) Concurrent(a, b int) bool {
	return a != b && !t.HappenedBefore(a, b) && !t.HappenedBefore(b, a)
}

// Causal returns the events that happened before a and after it.
func (t *Trace) Causal(a int) (past, future []int) {
	for i := range t.Events {
		switch {
		case t.HappenedBefore(i, a):
			past = append(past, i)
		case t.HappenedBefore(a, i):
			future = append(future, i)
		}
	}
	return past, future
}

// VCString renders event e's vector clock: {"bank":12, "atm-7f3a":4}.
func (t *Trace) VCString(e int) string {
	var parts []string
	for i, v := range t.vc(e) {
		if v != 0 {
			parts = append(parts, fmt.Sprintf("%q:%d", t.Procs[i].ID, v))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Filter selects part of a trace.
type Filter struct {
	From, To uint64 // the entries' timestamps (To 0: no bound)
	Account  string // entries of this account (as payer or payee)
	Proc     string // entries of this process (server or client)
}

// Filter returns the trace of the entries f selects.
func (t *Trace) Filter(f Filter) *Trace {
	var keep []wire.Entry
	for _, e := range t.entries {
		if e.TS < f.From || (f.To != 0 && e.TS > f.To) {
			continue
		}
		if f.Account != "" && e.Account != f.Account && e.To != f.Account {
			continue
		}
		if f.Proc != "" && e.Proc != f.Proc && e.Client != f.Proc {
			continue
		}
		keep = append(keep, *e)
	}
	return Build(keep)
}
