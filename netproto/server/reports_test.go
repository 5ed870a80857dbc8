package server_test

import (
	"slices"
	"strings"
	"testing"

	"atm/netproto/client"
	"atm/netproto/wire"
)

// TestClientsReportTheirReceives: the client library reports every message
// it received with its next request, and the server's log keeps the reports
// in that request's record: the greeting rides on the login, the login's
// reply on the deposit, each with the client's clock right after it
// received the message.
func TestClientsReportTheirReceives(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var log clockLog
	c := e.dial(client.Options{ProcessID: "atm-rep", OnEvent: log.add})
	if _, err := c.Login(ctx(t), "123", "1234"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deposit(ctx(t), 100); err != nil {
		t.Fatal(err)
	}
	want := map[string][]wire.Seen{}
	for _, ev := range log.all() {
		switch {
		case ev.Dir == "recv" && ev.Type == "hello":
			want["login"] = append(want["login"], wire.Seen{TS: ev.Remote, At: ev.After})
		case ev.Dir == "recv" && ev.Op == "login":
			want["deposit"] = append(want["deposit"], wire.Seen{TS: ev.Remote, At: ev.After})
		}
	}
	op := e.dial(client.Options{ProcessID: "op"})
	page, err := op.Log(ctx(t), opToken, "", wire.MaxLogLimit)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, en := range page.Events {
		if en.Client != "atm-rep" || (en.Kind != wire.KindLogin && en.Kind != wire.KindDeposit) {
			continue
		}
		found++
		if w := want[en.Kind]; len(w) != 1 || !slices.Equal(en.Seen, w) {
			t.Errorf("the %s reports %+v, want %+v", en.Kind, en.Seen, w)
		}
	}
	if found != 2 {
		t.Fatalf("found %d of the login and deposit records", found)
	}
}

// TestReceiveReportsAreChecked: a report that is not a receive (its "at"
// not above its "ts"), or too many of them, is refused before the ledger;
// a client that reports nothing is served as before.
func TestReceiveReportsAreChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w, _ := e.wire()
	w.write(`{"type":"login","id":"l1","proc":"p","ts":1,"account":"123","pin":"1234"}`)
	if m := w.read(); m["type"] != "reply" {
		t.Fatalf("login: %v", m)
	}
	w.write(`{"type":"balance","id":"b1","proc":"p","ts":30,"seen":[{"ts":20,"at":20}]}`)
	if m := w.read(); m["code"] != "bad_request" {
		t.Fatalf("a report at its own ts: %v", m)
	}
	many := strings.Repeat(`{"ts":5,"at":6},`, wire.MaxSeen) + `{"ts":5,"at":6}`
	w.write(`{"type":"balance","id":"b2","proc":"p","ts":30,"seen":[` + many + `]}`)
	if m := w.read(); m["code"] != "bad_request" {
		t.Fatalf("%d reports: %v", wire.MaxSeen+1, m)
	}
	w.write(`{"type":"balance","id":"b3","proc":"p","ts":30,"seen":[{"ts":5,"at":6}]}`)
	if m := w.read(); m["type"] != "reply" {
		t.Fatalf("a valid report: %v", m)
	}
	w.write(`{"type":"balance","id":"b4","proc":"p","ts":40}`)
	if m := w.read(); m["type"] != "reply" {
		t.Fatalf("no report: %v", m)
	}
}
