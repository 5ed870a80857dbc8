package spacetime

import (
	"math/rand/v2"
	"testing"

	"atm/netproto/wire"
)

// bigLog simulates a bank and 8 clients (two without clocks) until the
// log holds n entries.
func bigLog(n int) []wire.Entry {
	r := rand.New(rand.NewPCG(1, 2))
	s := newSim(8, []bool{true, true, true, false, true, true, false, true})
	for len(s.entries) < n {
		c := s.clients[r.IntN(len(s.clients))]
		switch r.IntN(5) {
		case 0:
			if len(c.outbox) < 3 {
				s.request(c, r.IntN(12), s.clients)
			}
		case 1:
			s.receive(c)
		case 2:
			s.apply(c, r.IntN(2) == 0)
		case 3:
			s.reply(c)
		case 4:
			s.deliver(c, r.IntN(4) > 0)
		}
	}
	return s.finish()
}

// TestAdd100k reads a log of 100,000 entries in pages of 1,000, as `atm
// watch` follows the log, and checks the result against one Build.
func TestAdd100k(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("long")
	}
	entries := bigLog(100_000)
	tr := New()
	for i := 0; i < len(entries); i += 1000 {
		tr.Add(entries[i:min(i+1000, len(entries))]...)
	}
	whole := Build(entries)
	sameTrace(t, whole, tr)
	// Own components count each lifeline's events.
	for p := range tr.Procs {
		lane := tr.Lane(p)
		for i, id := range lane {
			if got := tr.VCAt(id, p); got != uint64(i+1) {
				t.Fatalf("%s: event #%d has own component %d", tr.Procs[p].ID, i+1, got)
			}
		}
	}
	for _, m := range tr.Messages {
		if m.Recv >= 0 && !tr.HappenedBefore(m.Send, m.Recv) {
			t.Fatalf("message %d: send does not precede receive", m.ID)
		}
	}
	t.Logf("%d entries: %d events, %d messages, %d processes", len(entries), len(tr.Events), len(tr.Messages), len(tr.Procs))
}

func BenchmarkAdd(b *testing.B) {
	entries := bigLog(100_000)
	b.ResetTimer()
	for b.Loop() {
		tr := New()
		for i := 0; i < len(entries); i += 100 {
			tr.Add(entries[i:min(i+100, len(entries))]...)
		}
	}
}
