package server_test

import (
	"context"
	"strings"
	"testing"

	"atm/bank"
)

// A withdrawal sent with a deposit's request id is refused over the wire
// with request_id_reused and a message naming the first request; it is not
// answered with the deposit's outcome, and nothing is applied. The deposit
// resent with its own id is still a duplicate.
func TestRequestIDReusedOverTheWire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, hello := e.raw()
	if hello["type"] != "hello" {
		t.Fatalf("greeting: %v", hello)
	}
	if m := r.req(map[string]any{"type": "login", "id": "l1", "account": "123", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login: %v", m)
	}
	dep := r.req(map[string]any{"type": "deposit", "id": "x-1", "amount": 5000})
	if dep["type"] != "reply" || dep["balance"] != float64(105_000) {
		t.Fatalf("deposit: %v", dep)
	}
	wd := r.req(map[string]any{"type": "withdraw", "id": "x-1", "amount": 5000})
	if wd["type"] != "error" || wd["code"] != "request_id_reused" || wd["id"] != "x-1" || wd["op"] != "withdraw" {
		t.Fatalf("withdraw with the deposit's id: %v, want error request_id_reused", wd)
	}
	msg, _ := wd["message"].(string)
	if !strings.Contains(msg, "x-1") || !strings.Contains(msg, "a deposit of R$ 50,00") || !strings.Contains(msg, "new id") {
		t.Fatalf("message %q should name the id, the first request and what to do", msg)
	}
	if _, ok := wd["duplicate"]; ok {
		t.Fatalf("the refusal is marked duplicate: %v", wd)
	}
	if got := e.balance("123"); got != 105_000 {
		t.Fatalf("balance %s after the refused withdrawal, want R$ 1.050,00", got)
	}
	again := r.req(map[string]any{"type": "deposit", "id": "x-1", "amount": 5000})
	if again["type"] != "reply" || again["duplicate"] != true || again["apply_ts"] != dep["apply_ts"] {
		t.Fatalf("the deposit resent: %v, want the first reply as a duplicate", again)
	}
	if got := e.balance("123"); got != 105_000 {
		t.Fatalf("balance %s after the resent deposit", got)
	}
	found := false
	_ = e.bank.Events(context.Background(), func(ev bank.Event) error {
		if ev.Kind == bank.KindRetry && ev.ReqID == "x-1" && ev.Outcome == "request_id_reused" {
			found = true
		}
		return nil
	})
	if !found {
		t.Fatal("the refusal is not in the log as a retry")
	}
}
