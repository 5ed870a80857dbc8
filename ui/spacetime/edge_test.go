package spacetime

import (
	"testing"

	"atm/netproto/wire"
)

func find(t *testing.T, tr *Trace, proc, what string) *Event {
	t.Helper()
	for i := range tr.Events {
		e := &tr.Events[i]
		if tr.Procs[e.Proc].ID == proc && e.What == what {
			return e
		}
	}
	t.Fatalf("no event %s %q", proc, what)
	return nil
}

// A greeting's receiver is known once a client reports it; a bye too; a
// report naming no logged message becomes a local event, never a message;
// a report repeated adds nothing.
func TestSeenReports(t *testing.T) {
	t.Parallel()
	// atm-x gets the first greeting at 2; the second goes to another
	// connection that never says. Its first balance reports the greeting;
	// then the connection closes (7, no bye announced) and atm-x, back,
	// reports the reply (6), that disconnect, the greeting again, and a
	// message the log does not hold.
	entries := []wire.Entry{
		{TS: 1, Proc: "bank", Kind: wire.KindConnect, Client: "10.0.0.1:1"},
		{TS: 2, Proc: "bank", Kind: wire.KindConnect, Client: "10.0.0.2:1"},
		{TS: 5, Proc: "bank", Kind: wire.KindBalance, Outcome: "ok", Client: "atm-x", ReqID: "x-1",
			ClientTS: 3, RecvTS: 4, ReplyTS: 6, Seen: []wire.Seen{{TS: 1, At: 2}}},
		{TS: 7, Proc: "bank", Kind: wire.KindDisconnect, Client: "atm-x", Detail: "connection closed"},
		{TS: 103, Proc: "bank", Kind: wire.KindBalance, Outcome: "ok", Client: "atm-x", ReqID: "x-2",
			ClientTS: 101, RecvTS: 102, ReplyTS: 104, Seen: []wire.Seen{{TS: 1, At: 2}, {TS: 6, At: 7}, {TS: 7, At: 8}, {TS: 99, At: 100}}},
	}
	tr := Build(entries)
	checkTrace(t, tr, nil)
	hello := find(t, tr, "bank", "hello")
	if hello.L != 1 || tr.Messages[hello.Msg].Recv < 0 || tr.Events[tr.Messages[hello.Msg].Recv].L != 2 {
		t.Fatalf("the first greeting is received at atm-x@2: %+v", tr.Messages[hello.Msg])
	}
	recvHello := 0
	for _, e := range tr.Events {
		if e.What == "recv hello" {
			recvHello++
		}
	}
	if recvHello != 1 {
		t.Fatalf("%d receives of a greeting, want 1 (the repeated report adds nothing)", recvHello)
	}
	orphan := find(t, tr, "atm-x", "receive of an unlogged message")
	if orphan.Kind != Local || orphan.L != 100 || orphan.Msg != -1 {
		t.Fatalf("orphan report %+v", orphan)
	}
	bye := find(t, tr, "bank", "bye")
	if bye.Kind != Send || bye.L != 7 || tr.Messages[bye.Msg].Recv < 0 {
		t.Fatalf("the disconnect atm-x reported receiving is a bye: %+v", bye)
	}
	// The second greeting was never reported.
	for _, m := range tr.Messages {
		if m.What == "hello" && tr.Events[m.Send].L == 2 && m.Recv != -1 {
			t.Fatal("an unreported greeting got a receive")
		}
	}
}

// A client without a clock: its sends have L 0 and keep log order.
func TestUnknownLamportTimes(t *testing.T) {
	t.Parallel()
	var entries []wire.Entry
	for i, ts := range []uint64{3, 6, 9} {
		entries = append(entries, wire.Entry{TS: ts, Proc: "bank", Kind: wire.KindDeposit, Outcome: "ok",
			Client: "10.0.0.9:7", ReqID: string(rune('a' + i)), RecvTS: ts - 1, ReplyTS: ts + 1, Amount: 1})
	}
	tr := Build(entries)
	checkTrace(t, tr, nil)
	lane := tr.Lane(tr.procIdx["10.0.0.9:7"])
	if len(lane) != 3 {
		t.Fatalf("lane %v", lane)
	}
	for i, id := range lane {
		e := tr.Events[id]
		if e.L != 0 || e.Entry.ReqID != string(rune('a'+i)) || tr.VCAt(id, e.Proc) != uint64(i+1) {
			t.Fatalf("event %d of the clockless client: %+v", i, e)
		}
	}
	if !tr.HappenedBefore(lane[0], lane[2]) {
		t.Fatal("a clockless client's events are ordered by the log")
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	tr := Build(transferPush())
	// Only atm-b2's conversation: the transfer's request is not in it,
	// but the push is.
	b := tr.Filter(Filter{Proc: "atm-b2"})
	checkTrace(t, b, nil)
	if len(b.Procs) != 2 || b.Procs[0].ID != "bank" || b.Procs[1].ID != "atm-b2" {
		t.Fatalf("procs %+v", b.Procs)
	}
	find(t, b, "bank", "push")
	for _, e := range b.Events {
		if e.What == "apply transfer" {
			t.Fatal("atm-a1's transfer is not in atm-b2's view")
		}
	}
	// A time window cuts messages: the transfer's send (9) is out, its
	// receive (11) in; the balance's receive (17) is out, its send (16) in.
	w := tr.Filter(Filter{From: 10, To: 16})
	checkTrace(t, w, nil)
	var sendCut, recvCut bool
	for _, m := range w.Messages {
		if m.What == "transfer" && m.Send == -1 && w.Events[m.Recv].L == 11 {
			sendCut = true
		}
		if m.What == "balance" && m.Recv == -1 && w.Events[m.Send].L == 16 {
			recvCut = true
		}
	}
	if !sendCut || !recvCut {
		t.Fatalf("window messages %+v", w.Messages)
	}
	// An account: every event of 456, and the transfer that paid it.
	a := tr.Filter(Filter{Account: "456"})
	find(t, a, "bank", "apply transfer")
	for _, e := range a.Events {
		if e.What == "apply login" && e.Account == "123" {
			t.Fatal("123's login is not 456's")
		}
	}
}

// TestBanksOwnOperationsAreLocal: the operations a new bank makes on its
// own behalf (opening the default accounts) are local events of the bank,
// not messages to itself.
func TestBanksOwnOperationsAreLocal(t *testing.T) {
	t.Parallel()
	tr := Build([]wire.Entry{
		{TS: 1, Proc: "bank", Kind: wire.KindOpen, Outcome: "ok", Account: "123", Client: "bank", ApplyTS: 1, ReplyTS: 2},
		{TS: 3, Proc: "bank", Kind: wire.KindDeposit, Outcome: "ok", Account: "123", Client: "bank", ReqID: "open-123", ApplyTS: 3, ReplyTS: 4},
		{TS: 5, Proc: "bank", Kind: wire.KindServerStart, Outcome: "ok", Client: "bank"},
	})
	if len(tr.Procs) != 1 || len(tr.Messages) != 0 || len(tr.Events) != 5 {
		t.Fatalf("procs %+v, %d messages, %d events", tr.Procs, len(tr.Messages), len(tr.Events))
	}
	for _, e := range tr.Events {
		if e.Kind != Local {
			t.Fatalf("event %+v is not local", e)
		}
	}
}

// TestReportOfALaterSend: a record may report the receive of its own reply
// (a client drawing its own diagram knows it at once): the receive is
// matched when the send is added, not taken for an unlogged message.
func TestReportOfALaterSend(t *testing.T) {
	t.Parallel()
	tr := Build([]wire.Entry{
		{TS: 5, Proc: "bank", Kind: wire.KindBalance, Outcome: "ok", Account: "123", Client: "atm-a",
			ClientTS: 3, RecvTS: 4, ApplyTS: 5, ReplyTS: 6, Seen: []wire.Seen{{TS: 6, At: 7}}},
	})
	var recv *Event
	for i := range tr.Events {
		if e := &tr.Events[i]; e.Kind == Receive && tr.Procs[e.Proc].ID == "atm-a" {
			recv = e
		}
		if e := tr.Events[i]; e.Kind == Local && tr.Procs[e.Proc].ID == "atm-a" {
			t.Fatalf("the report became a local event: %+v", e)
		}
	}
	if recv == nil || recv.L != 7 || tr.Messages[recv.Msg].Send < 0 || tr.Events[tr.Messages[recv.Msg].Send].L != 6 {
		t.Fatalf("the reply's receive: %+v", recv)
	}
}
