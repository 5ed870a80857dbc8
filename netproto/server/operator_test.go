package server_test

import (
	"context"
	"testing"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank"
)

// TestAuditCarriesItsTimestamps checks that an audit reply, like every
// success, carries the receive and apply timestamps of the request, in
// order, and that the audit is in the log.
func TestAuditCarriesItsTimestamps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w, _ := e.wire()
	w.write(`{"type":"audit","id":"au1","proc":"op","ts":500,"token":"` + opToken + `"}`)
	m := w.read()
	if m["type"] != "reply" {
		t.Fatalf("audit: %v", m)
	}
	recv, apply, ts := num(t, m, "recv_ts"), num(t, m, "apply_ts"), num(t, m, "ts")
	if recv != 501 || apply <= recv || ts <= apply {
		t.Fatalf("audit recv_ts %d apply_ts %d ts %d: want 501 < apply < ts", recv, apply, ts)
	}
	if _, ok := m["negative"]; ok {
		t.Errorf("audit reply lists negative balances in a conserved bank: %v", m)
	}
	c := e.dial(client.Options{})
	page, err := c.Log(ctx(t), opToken, wire.CursorOf(apply-1), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Kind != "audit" || page.Events[0].ReplyTS != ts {
		t.Fatalf("the log at L=%d: %+v", apply, page.Events)
	}
}

// TestOperatorReadsTheLogFromTheServer reads the whole log of a running
// server page by page as an operator: the pages join up without a gap or a
// repeat, in timestamp order, and match what the bank holds; a wrong token
// is forbidden.
func TestOperatorReadsTheLogFromTheServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.login("123", client.Options{})
	for range 30 {
		if _, err := c.Deposit(ctx(t), 1); err != nil {
			t.Fatal(err)
		}
	}
	op := e.dial(client.Options{})
	if _, err := op.Log(ctx(t), "guess", "", 10); wireCode(err) != "forbidden" {
		t.Fatalf("a wrong token read the log: %v", err)
	}
	var got []uint64
	var after wire.Cursor
	for {
		page, err := op.Log(ctx(t), opToken, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) > 7 {
			t.Fatalf("a page of %d events, asked for 7", len(page.Events))
		}
		if len(page.Events) == 0 {
			if page.Next != after {
				t.Fatalf("an empty page moved the cursor from %q to %q", after, page.Next)
			}
			break
		}
		for _, ev := range page.Events {
			got = append(got, ev.TS)
		}
		after = page.Next
		if len(got) > 10_000 {
			t.Fatal("the log does not end")
		}
	}
	last, ok := after.Uint()
	if !ok {
		t.Fatalf("the cursor of a bank on one server is %q, not a timestamp", after)
	}
	var want []uint64
	_ = e.bank.Events(context.Background(), func(ev bank.Event) error {
		if ev.TS <= last {
			want = append(want, ev.TS)
		}
		return nil
	})
	if len(got) != len(want) {
		t.Fatalf("read %d events, the bank holds %d up to L=%d", len(got), len(want), last)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("event %d: L=%d, want L=%d", i, got[i], want[i])
		}
	}
}
