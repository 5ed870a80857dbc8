package spacetime

import (
	"container/heap"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// Vector clocks.
//
// The graph is the lifelines (each process's events in order) and the
// messages (send → receive). A process's events are ordered by Lamport
// time L, ties broken by log order. An event whose L is unknown (0: a
// client that keeps no clock) gets, as its ordering time, the ordering
// time of the last event of its process added before it: it follows, in
// log order, the events of its process the log showed before it, and
// precedes any later-added event with a higher L.
//
// Clocks are computed in a topological order of that graph (Kahn's
// algorithm), so every send is computed before its receive whatever the
// Ls say; with Ls all known this is the order of L. An event's own
// component is its position on its lifeline, from 1; a receive takes the
// component-wise max of its predecessor's clock and its send's.
//
// A log that contradicts itself (a client reporting a receive at a time
// before the message was sent) could make the graph cyclic; the cycle is
// broken at its earliest event by ordering time, which is computed with
// what is known of its predecessors at that point.

// lanePos returns the index of event id in its lifeline.
func (t *Trace) lanePos(id int) int {
	lane := t.lanes[t.Events[id].Proc]
	k := t.key[id]
	return sort.Search(len(lane), func(i int) bool {
		o := lane[i]
		return t.key[o] > k || (t.key[o] == k && o >= id)
	})
}

func (t *Trace) lanePrev(id int) int {
	i := t.lanePos(id)
	if i == 0 {
		return -1
	}
	return t.lanes[t.Events[id].Proc][i-1]
}

func (t *Trace) laneNext(id int) int {
	lane := t.lanes[t.Events[id].Proc]
	i := t.lanePos(id)
	if i+1 >= len(lane) {
		return -1
	}
	return lane[i+1]
}

// sendOf returns the send event of a receive, or -1.
func (t *Trace) sendOf(id int) int {
	ev := &t.Events[id]
	if ev.Kind != Receive || ev.Msg < 0 {
		return -1
	}
	return t.Messages[ev.Msg].Send
}

// eachNext calls f with each event that directly follows id: the next on
// its lifeline, and the receives of its messages.
func (t *Trace) eachNext(id int, f func(int)) {
	if n := t.laneNext(id); n >= 0 {
		f(n)
	}
	if n := t.recvOf(id); n >= 0 {
		f(n)
	}
	for _, m := range t.more[id] {
		if n := t.Messages[m].Recv; n >= 0 {
			f(n)
		}
	}
}

// recvOf returns the receive event of a send's first message, or -1.
func (t *Trace) recvOf(id int) int {
	ev := &t.Events[id]
	if ev.Kind != Send || ev.Msg < 0 {
		return -1
	}
	return t.Messages[ev.Msg].Recv
}

func (t *Trace) alloc(n int) []uint64 {
	if len(t.slab) < n {
		t.slab = make([]uint64, max(n*256, 4096))
	}
	v := t.slab[:n:n]
	t.slab = t.slab[n:]
	return v
}

// computeFrom computes the clocks of the events from first on, and of
// every event after one of middle (events inserted into the middle of
// their lifeline).
func (t *Trace) computeFrom(first int, middle []int) {
	t.gen++
	if t.gen == 0 { // wrapped: clear the stamps
		clear(t.stamp)
		t.gen = 1
	}
	for len(t.stamp) < len(t.Events) {
		t.stamp = append(t.stamp, 0)
	}
	var set []int
	mark := func(id int) bool {
		if id < 0 || t.stamp[id] == t.gen {
			return false
		}
		t.stamp[id] = t.gen
		set = append(set, id)
		return true
	}
	for id := first; id < len(t.Events); id++ {
		mark(id)
	}
	// The future of the events inserted into the middle of a lifeline.
	stack := append([]int(nil), middle...)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		mark(id)
		t.eachNext(id, func(n int) {
			if t.stamp[n] != t.gen {
				stack = append(stack, n)
			}
		})
	}
	t.compute(set)
}

// compute computes the clocks of the events of set, all marked with the
// current stamp; the events they depend on outside it are computed.
func (t *Trace) compute(set []int) {
	in := func(id int) bool { return id >= 0 && t.stamp[id] == t.gen }
	indeg := make(map[int]int, len(set))
	prev := make(map[int]int, len(set))
	for _, id := range set {
		p := t.lanePrev(id)
		prev[id] = p
		d := 0
		if in(p) {
			d++
		}
		if in(t.sendOf(id)) {
			d++
		}
		indeg[id] = d
	}
	h := &keyHeap{t: t}
	for _, id := range set {
		if indeg[id] == 0 {
			h.ids = append(h.ids, id)
		}
	}
	heap.Init(h)
	done := make(map[int]bool, len(set))
	release := func(id int) {
		done[id] = true
		t.eachNext(id, func(n int) {
			if in(n) && !done[n] {
				indeg[n]--
				if indeg[n] == 0 {
					heap.Push(h, n)
				}
			}
		})
	}
	for len(done) < len(set) {
		if h.Len() == 0 {
			// A cycle: start again at its earliest event.
			best := -1
			for _, id := range set {
				if !done[id] && indeg[id] > 0 && (best < 0 || t.less(id, best)) {
					best = id
				}
			}
			indeg[best] = 0
			heap.Push(h, best)
		}
		id := heap.Pop(h).(int)
		if done[id] {
			continue
		}
		p := prev[id]
		if in(p) && !done[p] {
			p = -1
		}
		s := t.sendOf(id)
		if in(s) && !done[s] {
			s = -1
		}
		t.vc(id, p, s)
		release(id)
	}
}

// vc sets the clock of id from its predecessor p and its message's send s
// (-1 for none).
func (t *Trace) vc(id, p, s int) {
	v := t.alloc(len(t.Procs))
	var own uint64
	me := t.Events[id].Proc
	if p >= 0 {
		pv := t.Events[p].VC
		copy(v, pv)
		if me < len(pv) {
			own = pv[me]
		}
	}
	if s >= 0 {
		for i, x := range t.Events[s].VC {
			if x > v[i] {
				v[i] = x
			}
		}
	}
	v[me] = own + 1
	t.Events[id].VC = v
}

func (t *Trace) less(a, b int) bool {
	if t.key[a] != t.key[b] {
		return t.key[a] < t.key[b]
	}
	return a < b
}

type keyHeap struct {
	t   *Trace
	ids []int
}

func (h *keyHeap) Len() int           { return len(h.ids) }
func (h *keyHeap) Less(i, j int) bool { return h.t.less(h.ids[i], h.ids[j]) }
func (h *keyHeap) Swap(i, j int)      { h.ids[i], h.ids[j] = h.ids[j], h.ids[i] }
func (h *keyHeap) Push(x any)         { h.ids = append(h.ids, x.(int)) }
func (h *keyHeap) Pop() any {
	x := h.ids[len(h.ids)-1]
	h.ids = h.ids[:len(h.ids)-1]
	return x
}

// computeAll sorts the lifelines and computes every clock (for a trace
// assembled by Filter).
func (t *Trace) computeAll() {
	t.lanes = make([][]int, len(t.Procs))
	for id := range t.Events {
		p := t.Events[id].Proc
		t.lanes[p] = append(t.lanes[p], id)
	}
	for _, lane := range t.lanes {
		sort.Slice(lane, func(i, j int) bool { return t.less(lane[i], lane[j]) })
	}
	t.computeFrom(0, nil)
}

// Order returns the event ids in an order consistent with happened-before:
// by Lamport time where that is consistent, every send before its
// receive, every event after its predecessor on its lifeline.
func (t *Trace) Order() []int {
	indeg := make([]int, len(t.Events))
	for id := range t.Events {
		if t.lanePrev(id) >= 0 {
			indeg[id]++
		}
		if t.sendOf(id) >= 0 {
			indeg[id]++
		}
	}
	h := &keyHeap{t: t}
	for id, d := range indeg {
		if d == 0 {
			h.ids = append(h.ids, id)
		}
	}
	heap.Init(h)
	out := make([]int, 0, len(t.Events))
	done := make([]bool, len(t.Events))
	for len(out) < len(t.Events) {
		if h.Len() == 0 { // a cycle (see compute)
			best := -1
			for id := range t.Events {
				if !done[id] && (best < 0 || t.less(id, best)) {
					best = id
				}
			}
			indeg[best] = 0
			heap.Push(h, best)
		}
		id := heap.Pop(h).(int)
		if done[id] {
			continue
		}
		done[id] = true
		out = append(out, id)
		t.eachNext(id, func(n int) {
			if !done[n] {
				indeg[n]--
				if indeg[n] == 0 {
					heap.Push(h, n)
				}
			}
		})
	}
	return out
}

// Lane returns the event ids of process p in lifeline order.
func (t *Trace) Lane(p int) []int {
	return append([]int(nil), t.lanes[p]...)
}

// VCAt returns component p of event e's vector clock (0 past its end).
func (t *Trace) VCAt(e, p int) uint64 {
	v := t.Events[e].VC
	if p < len(v) {
		return v[p]
	}
	return 0
}

// HappenedBefore reports whether event a happened before event b (a → b):
// b's clock has counted a, so VC(a) < VC(b).
func (t *Trace) HappenedBefore(a, b int) bool {
	if a == b {
		return false
	}
	pa := t.Events[a].Proc
	return t.VCAt(b, pa) >= t.VCAt(a, pa)
}

// Concurrent reports whether neither of two distinct events happened
// before the other.
func (t *Trace) Concurrent(a, b int) bool {
	return a != b && !t.HappenedBefore(a, b) && !t.HappenedBefore(b, a)
}

// Causal returns the events that happened before a (its causal past) and
// those a happened before (its future), each in id order.
func (t *Trace) Causal(a int) (past, future []int) {
	for b := range t.Events {
		switch {
		case t.HappenedBefore(b, a):
			past = append(past, b)
		case t.HappenedBefore(a, b):
			future = append(future, b)
		}
	}
	return past, future
}

// VCString returns event e's vector clock as JSON with process ids as
// keys, nonzero components only, in process order:
// {"bank":12, "atm-7f3a":4}.
func (t *Trace) VCString(e int) string {
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for p, x := range t.Events[e].VC {
		if x == 0 {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		n++
		name, _ := json.Marshal(t.Procs[p].ID)
		b.Write(name)
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(x, 10))
	}
	b.WriteByte('}')
	return b.String()
}
