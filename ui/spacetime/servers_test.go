package spacetime

import (
	"bytes"
	"strings"
	"testing"

	"atm/netproto/wire"
)

// serversLog is a bank on three servers: atm-a's transfer through bank-1
// (applied at 34) reaches sessions on bank-2 (two pushes, one receive at
// 35) and on bank-3 (one push); a later push of bank-3 names a change of
// bank-1 the log does not hold.
func serversLog() []wire.Entry {
	return []wire.Entry{
		{TS: 34, Proc: "bank-1", Kind: wire.KindTransfer, Outcome: "ok", Account: "123", To: "456", Amount: 2500,
			Client: "atm-a", ReqID: "a-1", ClientTS: 31, RecvTS: 32, ReplyTS: 35},
		{TS: 36, Proc: "bank-2", Kind: wire.KindPush, Outcome: "ok", Account: "456", To: "123", Amount: 2500,
			Client: "atm-b", Origin: "bank-1", OrigTS: 34, RecvTS: 35},
		{TS: 37, Proc: "bank-2", Kind: wire.KindPush, Outcome: "ok", Account: "123", To: "456", Amount: 2500,
			Client: "atm-c", Origin: "bank-1", OrigTS: 34, RecvTS: 35},
		{TS: 38, Proc: "bank-3", Kind: wire.KindPush, Outcome: "ok", Account: "456", To: "123", Amount: 2500,
			Client: "atm-d", Origin: "bank-1", OrigTS: 34, RecvTS: 35},
		{TS: 40, Proc: "bank-3", Kind: wire.KindPush, Outcome: "ok", Account: "456", Amount: 100,
			Client: "atm-d", Origin: "bank-1", OrigTS: 12, RecvTS: 39},
	}
}

// A push of another server's change draws that change as a message
// between the servers: from the event that committed it to the receive
// the push record names, once per receiving server however many pushes
// it sent, so the commit happened before every push it caused. A change
// the log does not hold leaves a receive with no invented sender.
func TestChangeOfAnotherServerIsAMessage(t *testing.T) {
	t.Parallel()
	tr := Build(serversLog())
	checkTrace(t, tr, nil)
	apply := find(t, tr, "bank-1", "apply transfer")
	if apply.Kind != Send || apply.L != 34 {
		t.Fatalf("bank-1's transfer is not the send of a message to the other servers: %+v", apply)
	}
	recvs := map[string]int{}
	for _, m := range tr.Messages {
		if m.Send == apply.ID && m.Recv >= 0 {
			r := tr.Events[m.Recv]
			recvs[tr.Procs[r.Proc].ID]++
			if r.Kind != Receive || r.L != 35 || r.What != "recv transfer" || !tr.HappenedBefore(apply.ID, r.ID) {
				t.Fatalf("the receive of bank-1's transfer: %+v", r)
			}
		}
	}
	if recvs["bank-2"] != 1 || recvs["bank-3"] != 1 || len(recvs) != 2 {
		t.Fatalf("receives of bank-1's transfer by server: %v, want one on bank-2 and one on bank-3", recvs)
	}
	for _, e := range tr.Events {
		if e.What == "push" && e.L != 40 && !tr.HappenedBefore(apply.ID, e.ID) {
			t.Fatalf("the transfer did not happen before %s's push at %d", tr.Procs[e.Proc].ID, e.L)
		}
	}
	lone := find(t, tr, "bank-3", "recv change of bank-1 (not in this log)")
	if lone.Kind != Local || lone.L != 39 {
		t.Fatalf("a receive whose sender the log lacks: %+v", lone)
	}

	var b bytes.Buffer
	if err := WriteText(&b, tr, 120); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"bank-1 apply transfer → bank-2@35, bank-3@35", "bank-2 recv transfer ← bank-1@34", "bank-3 recv transfer ← bank-1@34"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the diagram lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := WriteShiViz(&b, tr); err != nil {
		t.Fatal(err)
	}
	checkShiViz(t, b.String())
	// Each server's view keeps its message from bank-1.
	sub := tr.Filter(Filter{From: 34, To: 36})
	checkTrace(t, sub, nil)
	if len(sub.Messages) < 2 {
		t.Fatalf("the sub-trace kept %d messages", len(sub.Messages))
	}
}
