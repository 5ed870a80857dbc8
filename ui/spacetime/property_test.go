package spacetime

import (
	"fmt"
	"reflect"
	"sort"
	"testing"

	"atm/netproto/wire"

	"pgregory.net/rapid"
)

// genHistory draws a random history of a bank and 1 to 4 clients.
func genHistory(rt *rapid.T) ([]wire.Entry, truth) {
	n := rapid.IntRange(1, 4).Draw(rt, "clients")
	clocked := make([]bool, n)
	for i := range clocked {
		clocked[i] = rapid.IntRange(0, 3).Draw(rt, fmt.Sprintf("clocked%d", i)) > 0
	}
	s := newSim(n, clocked)
	steps := rapid.IntRange(10, 80).Draw(rt, "steps")
	for i := 0; i < steps; i++ {
		c := s.clients[rapid.IntRange(0, n-1).Draw(rt, "client")]
		switch rapid.IntRange(0, 5).Draw(rt, "action") {
		case 0:
			if len(c.outbox) < 3 {
				s.request(c, rapid.IntRange(0, 11).Draw(rt, "pick"), s.clients)
			}
		case 1:
			s.receive(c)
		case 2:
			s.apply(c, rapid.Bool().Draw(rt, "defer"))
		case 3:
			s.reply(c)
		case 4:
			s.deliver(c, rapid.IntRange(0, 3).Draw(rt, "report") > 0)
		case 5:
			s.local(wire.KindLock, c.account)
		}
	}
	return s.finish(), s.truth
}

// laneOrder orders each process's events by L, then id: the tests' own
// reading of the lifelines (no process in these histories mixes known and
// unknown Ls).
func laneOrder(t *Trace) [][]int {
	lanes := make([][]int, len(t.Procs))
	for _, e := range t.Events {
		lanes[e.Proc] = append(lanes[e.Proc], e.ID)
	}
	for _, lane := range lanes {
		sort.Slice(lane, func(i, j int) bool {
			a, b := t.Events[lane[i]], t.Events[lane[j]]
			if a.L != b.L {
				return a.L < b.L
			}
			return a.ID < b.ID
		})
	}
	return lanes
}

// reach computes happened-before by graph search over lifeline order and
// messages.
func reach(t *Trace) [][]bool {
	n := len(t.Events)
	succ := make([][]int, n)
	for _, lane := range laneOrder(t) {
		for i := 1; i < len(lane); i++ {
			succ[lane[i-1]] = append(succ[lane[i-1]], lane[i])
		}
	}
	for _, m := range t.Messages {
		if m.Send >= 0 && m.Recv >= 0 {
			succ[m.Send] = append(succ[m.Send], m.Recv)
		}
	}
	r := make([][]bool, n)
	for a := 0; a < n; a++ {
		r[a] = make([]bool, n)
		stack := append([]int(nil), succ[a]...)
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if r[a][x] {
				continue
			}
			r[a][x] = true
			stack = append(stack, succ[x]...)
		}
	}
	return r
}

func vcAt(v []uint64, i int) uint64 {
	if i < len(v) {
		return v[i]
	}
	return 0
}

// vcLess reports VC(a) < VC(b): component-wise ≤ and different.
func vcLess(a, b []uint64, n int) bool {
	diff := false
	for i := 0; i < n; i++ {
		x, y := vcAt(a, i), vcAt(b, i)
		if x > y {
			return false
		}
		if x != y {
			diff = true
		}
	}
	return diff
}

// checkTrace checks a trace's clocks against graph search, and its
// messages and events against what really happened (when tt is not nil).
func checkTrace(t rapid.TB, tr *Trace, tt *truth) {
	checkCausality(t, tr)
	if tt != nil {
		checkTruth(t, tr, tt)
	}
}

// checkCausality checks the trace's vector clocks, happened-before and
// concurrency against graph search, and that its order puts every send
// before its receive.
func checkCausality(t rapid.TB, tr *Trace) {
	r := reach(tr)
	n := len(tr.Procs)
	for a := range tr.Events {
		for b := range tr.Events {
			if a == b {
				continue
			}
			ea, eb := tr.Events[a], tr.Events[b]
			if got := vcLess(ea.VC, eb.VC, n); got != r[a][b] {
				t.Fatalf("VC(%d %s %s)=%v < VC(%d %s %s)=%v is %v, graph says %v",
					a, tr.Procs[ea.Proc].ID, ea.What, ea.VC, b, tr.Procs[eb.Proc].ID, eb.What, eb.VC, got, r[a][b])
			}
			if got := tr.HappenedBefore(a, b); got != r[a][b] {
				t.Fatalf("HappenedBefore(%d, %d) = %v, graph says %v", a, b, got, r[a][b])
			}
			if tr.Concurrent(a, b) != (!r[a][b] && !r[b][a]) {
				t.Fatalf("Concurrent(%d, %d) wrong", a, b)
			}
			if r[a][b] && ea.L != 0 && eb.L != 0 && ea.L >= eb.L {
				t.Fatalf("%d → %d but L %d ≥ %d", a, b, ea.L, eb.L)
			}
		}
	}
	// Own components count the lifeline's events.
	for p, lane := range laneOrder(tr) {
		for i, id := range lane {
			if got := vcAt(tr.Events[id].VC, p); got != uint64(i+1) {
				t.Fatalf("event %d is #%d of %s, its own component is %d", id, i+1, tr.Procs[p].ID, got)
			}
		}
	}
	pos := make([]int, len(tr.Events))
	for i, id := range tr.Order() {
		pos[id] = i
	}
	for _, m := range tr.Messages {
		if m.Recv < 0 || m.Send < 0 {
			continue
		}
		if !tr.HappenedBefore(m.Send, m.Recv) || pos[m.Send] >= pos[m.Recv] {
			t.Fatalf("message %d: send %d does not precede receive %d", m.ID, m.Send, m.Recv)
		}
	}
}

// checkTruth checks the trace's messages and events against what really
// happened.
func checkTruth(t rapid.TB, tr *Trace, tt *truth) {
	// The messages are the real ones.
	reported, requests, unknown := map[[3]string]bool{}, map[[3]string]bool{}, 0
	for _, m := range tr.Messages {
		s := tr.Events[m.Send]
		if m.Recv < 0 {
			unknown++
			continue
		}
		rv := tr.Events[m.Recv]
		if tr.Procs[s.Proc].Bank {
			reported[[3]string{tr.Procs[rv.Proc].ID, fmt.Sprint(rv.L), fmt.Sprint(s.L)}] = true
		} else {
			requests[[3]string{tr.Procs[s.Proc].ID, fmt.Sprint(s.L), fmt.Sprint(rv.L)}] = true
		}
	}
	if !reflect.DeepEqual(reported, tt.reported) {
		t.Fatalf("reported receives %v, want %v", reported, tt.reported)
	}
	if !reflect.DeepEqual(requests, tt.requests) {
		t.Fatalf("requests %v, want %v", requests, tt.requests)
	}
	if unknown != tt.unreported {
		t.Fatalf("%d messages with unknown receive, want %d", unknown, tt.unreported)
	}
	count := map[string]int{}
	for _, e := range tr.Events {
		count[tr.Procs[e.Proc].ID]++
	}
	if count["bank"] != tt.bankEvents {
		t.Fatalf("bank has %d events, want %d", count["bank"], tt.bankEvents)
	}
	for p, c := range tt.clientEv {
		if count[p] != c {
			t.Fatalf("%s has %d events, want %d", p, count[p], c)
		}
	}
}

func TestPropertyVectorClocksMatchCausality(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		entries, tt := genHistory(rt)
		tr := Build(entries)
		checkTrace(rt, tr, &tt)
	})
}

// sameTrace compares two traces, clocks padded with zeros.
func sameTrace(t rapid.TB, a, b *Trace) {
	if !reflect.DeepEqual(a.Procs, b.Procs) {
		t.Fatalf("procs differ: %v vs %v", a.Procs, b.Procs)
	}
	if !reflect.DeepEqual(a.Messages, b.Messages) {
		t.Fatalf("messages differ")
	}
	if len(a.Events) != len(b.Events) {
		t.Fatalf("%d events vs %d", len(a.Events), len(b.Events))
	}
	n := len(a.Procs)
	for i := range a.Events {
		x, y := a.Events[i], b.Events[i]
		for p := 0; p < n; p++ {
			if vcAt(x.VC, p) != vcAt(y.VC, p) {
				t.Fatalf("event %d (%s %s): VC %v vs %v", i, a.Procs[x.Proc].ID, x.What, x.VC, y.VC)
			}
		}
		x.VC, y.VC = nil, nil
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("event %d: %+v vs %+v", i, x, y)
		}
	}
}

func TestPropertyAddInChunksEqualsBuild(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		entries, _ := genHistory(rt)
		whole := Build(entries)
		inc := New()
		for rest := entries; len(rest) > 0; {
			k := rapid.IntRange(1, len(rest)).Draw(rt, "chunk")
			inc.Add(rest[:k]...)
			rest = rest[k:]
		}
		sameTrace(rt, whole, inc)
		// A second read of the same page adds nothing.
		if len(entries) > 0 {
			inc.Add(entries[len(entries)-1])
			sameTrace(rt, whole, inc)
		}
	})
}
