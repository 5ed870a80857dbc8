package server_test

import (
	"fmt"
	"testing"
)

// TestDocumentedShapes checks, as a client that read only PROTOCOL.md,
// the promises of section 4 about amounts, statement pages and ids.
func TestDocumentedShapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, _ := e.wire()
	a.write(`{"type":"login","id":"a0","proc":"atm-a","ts":1,"account":"123","pin":"1234"}`)
	if m := a.read(); m["type"] != "reply" {
		t.Fatalf("login: %v", m)
	}
	// A missing or null amount.
	for _, line := range []string{
		`{"type":"deposit","id":"m1","proc":"atm-a","ts":2}`,
		`{"type":"withdraw","id":"m2","proc":"atm-a","ts":2,"amount":null}`,
		`{"type":"transfer","id":"m3","proc":"atm-a","ts":2,"to":"456","amount":null}`,
	} {
		a.write(line)
		if m := a.read(); m["code"] != "invalid_amount" || m["message"] != "invalid amount: the amount is missing" {
			t.Fatalf("%s: %v", line, m)
		}
	}
	// 25 deposits and a transfer received from 456.
	for i := range 25 {
		a.write(fmt.Sprintf(`{"type":"deposit","id":"d%d","proc":"atm-a","ts":3,"amount":%d}`, i, i+1))
		if m := a.read(); m["type"] != "reply" {
			t.Fatalf("deposit %d: %v", i, m)
		}
	}
	b, _ := e.wire()
	b.write(`{"type":"login","id":"b0","proc":"atm-b","ts":1,"account":"456","pin":"1234"}`)
	b.read()
	// The same id on another account is another request.
	b.write(`{"type":"transfer","id":"d0","proc":"atm-b","ts":2,"to":"123","amount":700}`)
	if m := b.read(); m["type"] != "reply" || m["duplicate"] != nil {
		t.Fatalf("id d0 on account 456: %v", m)
	}
	if m := a.read(); m["type"] != "push" || num(t, m, "balance") != 100_000+325+700 {
		t.Fatalf("push: %v", m)
	}
	// Statement limits: absent, 0 and negative mean 20; above 50 means 50.
	for _, lim := range []string{``, `,"limit":0`, `,"limit":-3`} {
		a.write(`{"type":"statement","id":"s","proc":"atm-a","ts":4` + lim + `}`)
		if m := a.read(); len(m["entries"].([]any)) != 20 {
			t.Fatalf("statement with limit %q: %d entries", lim, len(m["entries"].([]any)))
		}
	}
	a.write(`{"type":"statement","id":"s","proc":"atm-a","ts":4,"limit":51}`)
	m := a.read()
	if n := len(m["entries"].([]any)); n != 28 { // open, opening deposit, 25 deposits, the transfer
		t.Fatalf("statement with limit 51: %d entries, want all 28", n)
	}
	if _, ok := m["next"]; ok {
		t.Fatalf("a last page with next: %v", m["next"])
	}
	// The newest entry: the transfer received, with the payer's request
	// fields left out and the balance after it in to_balance.
	got := m["entries"].([]any)[0].(map[string]any)
	if got["kind"] != "transfer" || got["account"] != "456" || got["to"] != "123" || got["proc"] != "bank" ||
		num(t, got, "to_balance") != 100_000+325+700 || num(t, got, "balance") != 0 {
		t.Fatalf("received transfer entry: %v", got)
	}
	for _, k := range []string{"req_id", "client", "client_ts", "recv_ts", "reply_ts"} {
		if _, ok := got[k]; ok {
			t.Errorf("received transfer entry shows the payer's %s: %v", k, got[k])
		}
	}
	// Paging by next walks every entry once.
	seen := map[uint64]bool{}
	before := ""
	for page := 0; ; page++ {
		a.write(`{"type":"statement","id":"p","proc":"atm-a","ts":5,"limit":10` + before + `}`)
		m := a.read()
		for _, x := range m["entries"].([]any) {
			ts := num(t, x.(map[string]any), "ts")
			if seen[ts] {
				t.Fatalf("entry L=%d on two pages", ts)
			}
			seen[ts] = true
		}
		if _, ok := m["next"]; !ok {
			break
		}
		before = fmt.Sprintf(`,"before":%d`, num(t, m, "next"))
		if page > 10 {
			t.Fatal("statement paging does not end")
		}
	}
	if len(seen) != 28 {
		t.Fatalf("paging saw %d entries, want 28", len(seen))
	}
}
