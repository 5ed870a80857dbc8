// Package spacetime turns the bank's event log, as the protocol carries it
// ([]wire.Entry, PROTOCOL.md §4), into a space-time diagram: one lifeline
// per process (the bank and each ATM), its events in Lamport order, and the
// messages between them, with a vector clock per event derived from the
// send/receive pairs. It renders the diagram as text, as SVG, and in
// ShiViz's default log format.
//
// What the log says, and how it becomes events:
//
//   - A request record (login, deposit, transfer, ...) holds four events:
//     the client's send (process Entry.Client, Lamport time ClientTS, 0 when
//     the client keeps no clock), the bank's receive (RecvTS), the bank's
//     apply (TS) and the bank's reply send (ReplyTS).
//   - connect is the bank's greeting ("hello"), push a push and a
//     disconnect with a bye ("the bank is shutting down ...") a bye: sends
//     of the bank. Every other record is a local event of the bank.
//   - The Seen reports a request carries are receive events of its client:
//     it received the bank's message with timestamp Seen.TS when its clock
//     became Seen.At. They come before the request's send on the client's
//     lifeline.
//   - A bank message no client reported receiving keeps its receive
//     unknown: Message.Recv is -1, and nothing is invented for it.
package spacetime

import (
	"sort"
	"strings"

	"atm/netproto/wire"
)

// EventKind says whether an event sends a message, receives one, or is
// local to its process.
type EventKind int

// Kinds of event.
const (
	Send EventKind = iota
	Receive
	Local
)

func (k EventKind) String() string {
	switch k {
	case Send:
		return "send"
	case Receive:
		return "receive"
	case Local:
		return "local"
	}
	return "unknown"
}

// Event is one event of one process's lifeline.
type Event struct {
	ID    int         // index in Trace.Events
	Proc  int         // index in Trace.Procs
	L     uint64      // Lamport timestamp (0 if the process did not say)
	Kind  EventKind   // Send, Receive or Local
	Msg   int         // index in Trace.Messages for Send/Receive, -1 for Local
	What  string      // short label: "deposit", "reply deposit", "push", "hello", "apply transfer", ...
	Entry *wire.Entry // the log record it comes from
	// VC is the event's vector clock, indexed by process. Its length is
	// len(Procs) when it was computed: processes discovered later are
	// missing from it, which means 0 (see Trace.VCAt).
	VC []uint64
	// Account is the account the event concerns: the record's account, or
	// for an ATM's events the account its session was logged in to; for a
	// receive, the account of the message's send.
	Account string
}

// Message is one message between two processes.
type Message struct {
	ID   int
	Send int // event id; -1 only in a filtered trace whose send was left out
	Recv int // event id, or -1 when the receive is unknown
	What string
}

// Process is one lifeline: the bank, or an ATM (or another client).
type Process struct {
	ID    string // process id: "bank", "atm-7f3a", or a client's address when it announced none
	Label string // the account the ATM is logged in to at the end of the trace, "" if none
	Bank  bool   // whether this is a bank process (a log's Entry.Proc)
	// Accounts lists the accounts the process logged in to, in order,
	// each once.
	Accounts []string
}

// Trace is a space-time diagram: processes, their events, and messages.
// Build one with Build, or New and Add.
type Trace struct {
	Procs    []Process
	Events   []Event
	Messages []Message

	procIdx map[string]int
	lanes   [][]int  // per process: event ids in lifeline order (key, then id)
	key     []uint64 // per event: its ordering time (L, or for L = 0 the lane's time when it was added)
	msgDest []string // per message: the process id it is sent to, "" if unknown
	sends   map[uint64][]int
	more    map[int][]int            // per send: its messages after the first (a change several servers receive)
	pending map[uint64][]pendingSeen // reports of sends not added yet
	lastTS  map[string]uint64
	session map[int]string
	slab    []uint64
	stamp   []uint32
	gen     uint32
}

// New returns an empty trace.
func New() *Trace {
	t := &Trace{}
	t.init()
	return t
}

// Build returns the trace of a log.
func Build(entries []wire.Entry) *Trace {
	t := New()
	t.Add(entries...)
	return t
}

func (t *Trace) init() {
	if t.procIdx != nil {
		return
	}
	t.procIdx = make(map[string]int)
	t.sends = make(map[uint64][]int)
	t.more = make(map[int][]int)
	t.pending = make(map[uint64][]pendingSeen)
	t.lastTS = make(map[string]uint64)
	t.session = make(map[int]string)
}

// Add appends the events of more log entries. Entries come in TS order;
// one whose TS is not above the last one added of the same bank process
// is a repeat (an overlapping read of the log) and is skipped. Vector
// clocks are computed for the new events, and recomputed only for the
// events that come after an event inserted into the middle of a lifeline
// (a bank receive older than the last apply, say): the cost of an Add is
// about the number of its events plus that suffix.
func (t *Trace) Add(entries ...wire.Entry) {
	t.init()
	if len(entries) == 0 {
		return
	}
	own := make([]wire.Entry, len(entries))
	copy(own, entries)
	first := len(t.Events)
	var middle []int
	for i := range own {
		e := &own[i]
		if last, ok := t.lastTS[e.Proc]; ok && e.TS <= last {
			continue
		}
		t.lastTS[e.Proc] = e.TS
		middle = t.addEntry(e, middle)
	}
	t.computeFrom(first, middle)
}

// requestKinds are the records of a client's request.
var requestKinds = map[string]bool{
	wire.KindLogin: true, wire.KindLogout: true, wire.KindBalance: true,
	wire.KindDeposit: true, wire.KindWithdraw: true, wire.KindTransfer: true,
	wire.KindLookup: true, wire.KindStatement: true, wire.KindOpen: true,
	wire.KindAudit: true, wire.KindRetry: true,
}

// isBye reports whether a disconnect record is one the bank announced with
// a bye (its shutdown message) rather than a connection that ended.
func isBye(e *wire.Entry) bool {
	return strings.Contains(e.Detail, "shutting down")
}

func clientName(c string) string {
	if c == "" {
		return "unknown-client"
	}
	return strings.Join(strings.Fields(c), "_")
}

// proc returns the index of process id, adding it if it is new.
func (t *Trace) proc(id string, bank bool) int {
	if i, ok := t.procIdx[id]; ok {
		if bank {
			t.Procs[i].Bank = true
		}
		return i
	}
	i := len(t.Procs)
	t.procIdx[id] = i
	t.Procs = append(t.Procs, Process{ID: id, Bank: bank})
	t.lanes = append(t.lanes, nil)
	return i
}

// addEvent adds an event to its lifeline; middle collects the events not
// added at the end of their lifeline.
func (t *Trace) addEvent(p int, l uint64, kind EventKind, msg int, what string, e *wire.Entry, account string, middle []int) (int, []int) {
	id := len(t.Events)
	lane := t.lanes[p]
	k := l
	if l == 0 && len(lane) > 0 {
		// An unknown time: the event follows the process's events
		// added before it, in log order.
		k = t.key[lane[len(lane)-1]]
	}
	t.Events = append(t.Events, Event{ID: id, Proc: p, L: l, Kind: kind, Msg: msg, What: what, Entry: e, Account: account})
	t.key = append(t.key, k)
	// Lanes are sorted by (key, id); the new id is the largest.
	pos := sort.Search(len(lane), func(i int) bool { return t.key[lane[i]] > k })
	if pos == len(lane) {
		t.lanes[p] = append(lane, id)
	} else {
		lane = append(lane, 0)
		copy(lane[pos+1:], lane[pos:])
		lane[pos] = id
		t.lanes[p] = lane
		middle = append(middle, id)
	}
	return id, middle
}

func (t *Trace) newMsg(send int, what, dest string) int {
	id := len(t.Messages)
	t.Messages = append(t.Messages, Message{ID: id, Send: send, Recv: -1, What: what})
	t.msgDest = append(t.msgDest, dest)
	t.Events[send].Msg = id
	return id
}

// bankSend adds a send of the bank, to dest ("" if unknown), and the
// receive a client reported before the send was added, if any.
func (t *Trace) bankSend(bank int, l uint64, what, dest string, e *wire.Entry, middle []int) []int {
	id, middle := t.addEvent(bank, l, Send, -1, what, e, e.Account, middle)
	t.newMsg(id, what, dest)
	t.sends[l] = append(t.sends[l], id)
	if ps := t.pending[l]; len(ps) > 0 {
		delete(t.pending, l)
		for _, p := range ps {
			middle = t.seen(p.c, p.s, p.e, middle)
		}
	}
	return middle
}

// pendingSeen is a receive a client reported for a send of the bank later
// than any added so far: a record can report the receive of its own reply
// (as a client drawing its own diagram does), or of a message whose record
// comes next.
type pendingSeen struct {
	c int
	s wire.Seen
	e *wire.Entry
}

func (t *Trace) addEntry(e *wire.Entry, middle []int) []int {
	bank := t.proc(e.Proc, true)
	switch {
	case e.RecvTS == 0 && (e.Client == "" || e.Client == e.Proc) && requestKinds[e.Kind]:
		// The bank's own operation (the default accounts opened on a new
		// file): no message, two local events, the apply and its end.
		_, middle = t.addEvent(bank, e.TS, Local, -1, e.Kind, e, e.Account, middle)
		if e.ReplyTS != 0 {
			_, middle = t.addEvent(bank, e.ReplyTS, Local, -1, e.Kind+" done", e, e.Account, middle)
		}
	case e.Kind == wire.KindPush:
		if e.Origin != "" {
			middle = t.fromServer(bank, e, middle)
		}
		middle = t.bankSend(bank, e.TS, "push", clientName(e.Client), e, middle)
	case requestKinds[e.Kind] || e.RecvTS != 0:
		c := t.proc(clientName(e.Client), false)
		acct := e.Account
		if acct == "" {
			acct = t.session[c]
		}
		for _, s := range e.Seen {
			middle = t.seen(c, s, e, middle)
		}
		if e.RecvTS != 0 {
			var snd, rcv int
			snd, middle = t.addEvent(c, e.ClientTS, Send, -1, e.Kind, e, acct, middle)
			m := t.newMsg(snd, e.Kind, e.Proc)
			rcv, middle = t.addEvent(bank, e.RecvTS, Receive, m, "recv "+e.Kind, e, e.Account, middle)
			t.Messages[m].Recv = rcv
		}
		_, middle = t.addEvent(bank, e.TS, Local, -1, "apply "+e.Kind, e, e.Account, middle)
		if e.ReplyTS != 0 {
			what := "reply " + e.Kind
			if e.Outcome != "" && e.Outcome != "ok" {
				what = "error " + e.Kind
			}
			middle = t.bankSend(bank, e.ReplyTS, what, clientName(e.Client), e, middle)
		}
		if e.Outcome == "ok" || e.Outcome == "" {
			switch e.Kind {
			case wire.KindLogin:
				t.login(c, e.Account)
			case wire.KindLogout:
				t.logout(c)
			}
		}
	case e.Kind == wire.KindConnect:
		// The greeting goes to a connection; who reads it is known only
		// if a client reports receiving it.
		middle = t.bankSend(bank, e.TS, "hello", "", e, middle)
	case e.Kind == wire.KindDisconnect:
		if isBye(e) {
			middle = t.bankSend(bank, e.TS, "bye", clientName(e.Client), e, middle)
		} else {
			var id int
			id, middle = t.addEvent(bank, e.TS, Local, -1, "disconnect", e, e.Account, middle)
			t.sends[e.TS] = append(t.sends[e.TS], id)
		}
		if c, ok := t.procIdx[clientName(e.Client)]; ok {
			t.logout(c)
		}
	default:
		_, middle = t.addEvent(bank, e.TS, Local, -1, e.Kind, e, e.Account, middle)
	}
	return middle
}

// fromServer adds the receive of another server's change that a push
// record names (Origin, OrigTS, at RecvTS), once however many pushes name
// it: a message from that server's event at OrigTS, the commit other
// servers learn of through the store. If the log read holds no such
// event, the receive stays, as a local event: its sender is not invented.
func (t *Trace) fromServer(bank int, e *wire.Entry, middle []int) []int {
	if e.RecvTS == 0 || e.OrigTS == 0 {
		return middle
	}
	if t.eventAt(bank, e.RecvTS) >= 0 {
		return middle // named by an earlier push
	}
	send := -1
	if origin, ok := t.procIdx[e.Origin]; ok { // no lane for a server with no event in the log
		send = t.eventAt(origin, e.OrigTS)
	}
	what := "change of " + e.Origin
	if send < 0 {
		_, middle = t.addEvent(bank, e.RecvTS, Local, -1, "recv "+what+" (not in this log)", e, e.Account, middle)
		return middle
	}
	what = strings.TrimPrefix(t.Events[send].What, "apply ")
	m := len(t.Messages)
	t.Messages = append(t.Messages, Message{ID: m, Send: send, Recv: -1, What: what})
	t.msgDest = append(t.msgDest, t.Procs[bank].ID)
	t.shareSend(send, m)
	var rcv int
	rcv, middle = t.addEvent(bank, e.RecvTS, Receive, m, "recv "+what, e, t.Events[send].Account, middle)
	t.Messages[m].Recv = rcv
	return middle
}

// shareSend makes event send the send of message m: its only one (the
// event becomes a send), or one more (a change several servers receive).
func (t *Trace) shareSend(send, m int) {
	switch s := &t.Events[send]; {
	case s.Msg < 0:
		s.Kind, s.Msg = Send, m
	case s.Msg != m:
		t.more[send] = append(t.more[send], m)
	}
}

// eventAt returns the event of process p at Lamport time l, or -1.
func (t *Trace) eventAt(p int, l uint64) int {
	lane := t.lanes[p]
	i := sort.Search(len(lane), func(i int) bool { return t.key[lane[i]] >= l })
	for ; i < len(lane) && t.key[lane[i]] == l; i++ {
		if t.Events[lane[i]].L == l {
			return lane[i]
		}
	}
	return -1
}

func (t *Trace) login(c int, account string) {
	if account == "" {
		return
	}
	t.session[c] = account
	p := &t.Procs[c]
	p.Label = account
	for _, a := range p.Accounts {
		if a == account {
			return
		}
	}
	p.Accounts = append(p.Accounts, account)
}

func (t *Trace) logout(c int) {
	delete(t.session, c)
	t.Procs[c].Label = ""
}

// seen adds the receive event a client reported. The message is the
// bank's send with that timestamp to that client (or a greeting, whose
// receiver was unknown until now). A report naming no such send (a
// message the log does not hold), or one that breaks the Lamport rule
// (At not above TS), becomes a local event of the client: its sender is
// not invented.
func (t *Trace) seen(c int, s wire.Seen, e *wire.Entry, middle []int) []int {
	name := t.Procs[c].ID
	match := -1
	for _, id := range t.sends[s.TS] {
		ev := &t.Events[id]
		switch ev.Kind {
		case Send:
			m := ev.Msg
			if t.Messages[m].Recv >= 0 {
				if r := t.Events[t.Messages[m].Recv]; r.Proc == c && r.L == s.At {
					return middle // reported again
				}
				continue
			}
			if d := t.msgDest[m]; d == "" || d == name {
				match = id
			}
		case Local: // a disconnect: a bye the client says it received
			if ev.Entry != nil && clientName(ev.Entry.Client) == name {
				match = id
			}
		}
	}
	if match < 0 && s.At > s.TS && s.TS > t.lastTS[e.Proc] {
		t.pending[s.TS] = append(t.pending[s.TS], pendingSeen{c, s, e})
		return middle
	}
	if match < 0 || s.At <= s.TS {
		_, middle = t.addEvent(c, s.At, Local, -1, "receive of an unlogged message", e, t.session[c], middle)
		return middle
	}
	snd := &t.Events[match]
	if snd.Kind == Local {
		snd.Kind = Send
		snd.What = "bye"
		t.newMsg(match, "bye", name)
	}
	m := t.Events[match].Msg
	t.msgDest[m] = name
	var rcv int
	rcv, middle = t.addEvent(c, s.At, Receive, m, "recv "+t.Messages[m].What, e, t.Events[match].Account, middle)
	t.Messages[m].Recv = rcv
	return middle
}
