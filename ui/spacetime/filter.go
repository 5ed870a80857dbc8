package spacetime

// Filter selects part of a trace. Zero fields select everything.
type Filter struct {
	From, To uint64 // Lamport times, inclusive; To 0 means no upper bound. An event with unknown L is placed at its record's TS.
	Account  string // events concerning this account: its records (as payer or payee) and its ATMs' events while logged in to it
	Proc     string // events of this process, and the bank's events of its requests and of the messages sent to it
}

func (f Filter) keep(t *Trace, e *Event) bool {
	at := e.L
	if at == 0 && e.Entry != nil {
		at = e.Entry.TS
	}
	if at < f.From || (f.To != 0 && at > f.To) {
		return false
	}
	if f.Account != "" && e.Account != f.Account &&
		(e.Entry == nil || (e.Entry.Account != f.Account && e.Entry.To != f.Account)) {
		return false
	}
	if f.Proc != "" && t.Procs[e.Proc].ID != f.Proc &&
		(e.Entry == nil || clientName(e.Entry.Client) != f.Proc) {
		return false
	}
	return true
}

// Filter returns the sub-trace of the events f selects, with the
// processes that have any of them. A message whose receive is left out
// keeps its receive unknown (Recv -1); one whose send is left out keeps
// its receive with Send -1. Vector clocks are those of the sub-trace:
// causality through events left out is not counted, so the sub-trace is
// a diagram of its own (and a valid ShiViz log).
func (t *Trace) Filter(f Filter) *Trace {
	s := New()
	newID := make([]int, len(t.Events))
	procMap := make([]int, len(t.Procs))
	kept := make([]bool, len(t.Events))
	for id := range t.Events {
		if kept[id] = f.keep(t, &t.Events[id]); kept[id] {
			procMap[t.Events[id].Proc] = 1
		}
	}
	for i, pr := range t.Procs { // processes keep their order
		if procMap[i] == 0 {
			procMap[i] = -1
			continue
		}
		procMap[i] = len(s.Procs)
		pr.Accounts = append([]string(nil), pr.Accounts...)
		s.procIdx[pr.ID] = len(s.Procs)
		s.Procs = append(s.Procs, pr)
	}
	for id := range t.Events {
		e := &t.Events[id]
		if !kept[id] {
			newID[id] = -1
			continue
		}
		p := procMap[e.Proc]
		n := *e
		n.ID = len(s.Events)
		n.Proc = p
		n.VC = nil
		newID[id] = n.ID
		s.Events = append(s.Events, n)
		s.key = append(s.key, t.key[id])
	}
	msgMap := make([]int, len(t.Messages))
	for mid, m := range t.Messages {
		snd, rcv := -1, -1
		if m.Send >= 0 {
			snd = newID[m.Send]
		}
		if m.Recv >= 0 {
			rcv = newID[m.Recv]
		}
		if snd < 0 && rcv < 0 {
			msgMap[mid] = -1
			continue
		}
		msgMap[mid] = len(s.Messages)
		s.Messages = append(s.Messages, Message{ID: len(s.Messages), Send: snd, Recv: rcv, What: m.What})
		s.msgDest = append(s.msgDest, t.msgDest[mid])
	}
	for i := range s.Events {
		if m := s.Events[i].Msg; m >= 0 {
			s.Events[i].Msg = msgMap[m]
		}
	}
	for _, m := range s.Messages { // the messages of a send beyond its first
		if m.Send >= 0 && s.Events[m.Send].Kind == Send {
			s.shareSend(m.Send, m.ID)
		}
	}
	for _, m := range s.Messages {
		if m.Send >= 0 {
			l := s.Events[m.Send].L
			s.sends[l] = append(s.sends[l], m.Send)
		}
	}
	for k, v := range t.lastTS {
		s.lastTS[k] = v
	}
	s.computeAll()
	return s
}
