package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/wire"
)

// wireConn is a raw connection that reads numbers exactly (timestamps near
// 2^53 do not survive a float64).
type wireConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (e *env) wire() (*wireConn, map[string]any) {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	w := &wireConn{t: e.t, c: c, br: bufio.NewReader(c)}
	return w, w.read()
}

func (w *wireConn) write(line string) {
	w.t.Helper()
	if _, err := w.c.Write([]byte(line + "\n")); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

func (w *wireConn) read() map[string]any {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := w.br.ReadBytes('\n')
	if err != nil {
		w.t.Fatalf("read: %v (got %q)", err, line)
	}
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		w.t.Fatalf("not JSON: %q", line)
	}
	return m
}

// num reads an exact unsigned number field of a message (0 if absent).
func num(t *testing.T, m map[string]any, k string) uint64 {
	t.Helper()
	v, ok := m[k]
	if !ok {
		return 0
	}
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%s is %T in %v", k, v, m)
	}
	u, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil {
		t.Fatalf("%s = %s: %v", k, n, err)
	}
	return u
}

// TestClockCannotBeWrapped sends the timestamps that used to wrap the
// server's clock (2^64−2), or put it beyond what clients can hold, on a
// fresh connection: each is refused with invalid_timestamp, the clock moves
// by exactly a receive and a send, and the log keeps working.
func TestClockCannotBeWrapped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w, hello := e.wire()
	last := num(t, hello, "ts")
	for _, ts := range []string{"18446744073709551614", "18446744073709551615", "9223372036854775808",
		"9223372036854775807", "9007199254740992", "9007199254740991"} {
		w.write(`{"type":"balance","id":"w","proc":"p","ts":` + ts + `}`)
		m := w.read()
		if m["code"] != "invalid_timestamp" {
			t.Fatalf("ts %s: got %v, want invalid_timestamp", ts, m)
		}
		got := num(t, m, "ts")
		if got != last+2 {
			t.Fatalf("ts %s: answered at %d after %d; want a receive and a send (%d)", ts, got, last, last+2)
		}
		if got > wire.MaxTS {
			t.Fatalf("the server sent ts %d, above %d", got, wire.MaxTS)
		}
		last = got
	}
	// The ledger goes on, above every timestamp sent, and verifies.
	c := e.login("456", client.Options{})
	r, err := c.Deposit(ctx(t), 100)
	if err != nil {
		t.Fatal(err)
	}
	if r.ServerApply <= last {
		t.Fatalf("deposit applied at %d, not above %d", r.ServerApply, last)
	}
	if _, err := e.bank.Verify(context.Background()); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// TestEveryAnswerIsAReceiveThenASend sends, on a logged-in connection, one
// request of every kind of answer with a timestamp far above the server's
// clock (within the jump a session may make): every answer carries a
// timestamp above the request's, and above the previous answer's by at
// least two (a receive, then a send).
func TestEveryAnswerIsAReceiveThenASend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w, _ := e.wire()
	w.write(`{"type":"login","id":"in","proc":"p","ts":1,"account":"123","pin":"1234"}`)
	last := num(t, w.read(), "ts")
	lines := []struct{ line, code string }{
		{`{"type":"deposit","id":"a1","proc":"p","ts":%d,"amount":"100"}`, "bad_request"},
		{`{"type":5,"id":"a2","proc":"p","ts":%d}`, "bad_request"},
		{`{"type":"login","id":"a3","proc":"p","ts":%d,"account":"123","pin":1234}`, "bad_request"},
		{`{"type":"teleport","id":"a4","proc":"p","ts":%d}`, "unknown_type"},
		{`{"type":"balance","proc":"p","ts":%d}`, "invalid_request_id"},
		{`{"type":"balance","id":"a5","proc":"p","ts":%d,"account":"456"}`, "forbidden"},
		{`{"type":"audit","id":"a6","proc":"p","ts":%d,"token":"guess"}`, "forbidden"},
		{`{"type":"login","id":"a7","proc":"p","ts":%d,"account":"456","pin":"1234"}`, "already_logged_in"},
		{`{"type":"withdraw","id":"a8","proc":"p","ts":%d,"amount":1.5}`, "invalid_amount"},
		{`{"type":"withdraw","id":"a9","proc":"p","ts":%d,"amount":99999999}`, "limit_exceeded"},
		{`{"type":"withdraw","id":"a10","proc":"p","ts":%d,"amount":9999999}`, "insufficient_funds"},
		{`{"type":"balance","id":"a11","proc":"p","ts":%d}`, ""},
		{`{"type":"deposit","id":"a12","proc":"p","ts":%d,"amount":100}`, ""},
		{`{"type":"deposit","id":"a12","proc":"p","ts":%d,"amount":100}`, ""},
		{`{"type":"statement","id":"a13","proc":"p","ts":%d,"limit":1}`, ""},
	}
	for i, l := range lines {
		sent := last + 1_000_000
		w.write(fmt.Sprintf(l.line, sent))
		m := w.read()
		if l.code != "" && m["code"] != l.code || l.code == "" && m["type"] != "reply" {
			t.Fatalf("line %d: got %v, want %q", i, m, l.code)
		}
		got := num(t, m, "ts")
		if got < sent+2 {
			t.Fatalf("line %d (%s): sent at %d, answered at %d: not a receive max(clock, %d)+1 then a send", i, l.code, sent, got, sent)
		}
		if r := num(t, m, "recv_ts"); r != 0 && r != sent+1 {
			t.Fatalf("line %d: recv_ts %d, want %d", i, r, sent+1)
		}
		last = got
	}
	// Lines with no timestamp to read are received too: the answer is at
	// least two ticks above the previous one.
	for _, line := range []string{`hello bank`, `null`, `[1]`, `{"type":"balance","id":"x","type":"deposit"}`} {
		w.write(line)
		m := w.read()
		if m["code"] != "malformed" {
			t.Fatalf("%s: got %v", line, m)
		}
		if got := num(t, m, "ts"); got < last+2 {
			t.Fatalf("%s: answered at %d after %d", line, got, last)
		} else {
			last = got
		}
	}
}

// TestConnectionTimestampsRiseAndBalancesNeverGoBack has B pipeline balance
// requests while A pipelines one-cent transfers to B. Along B's connection
// every message's timestamp is above the one before, and the balance B is
// shown (in replies and in pushes that carry one) never goes down, though
// B's money only ever arrives.
func TestConnectionTimestampsRiseAndBalancesNeverGoBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 300
	b, _ := e.wire()
	b.write(`{"type":"login","id":"b0","proc":"atm-b","ts":1,"account":"456","pin":"1234"}`)
	if m := b.read(); m["type"] != "reply" {
		t.Fatalf("login B: %v", m)
	}
	a, _ := e.wire()
	a.write(`{"type":"login","id":"a0","proc":"atm-a","ts":1,"account":"123","pin":"1234"}`)
	if m := a.read(); m["type"] != "reply" {
		t.Fatalf("login A: %v", m)
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		var sb strings.Builder
		for i := range n {
			fmt.Fprintf(&sb, `{"type":"transfer","id":"t%d","proc":"atm-a","ts":2,"to":"456","amount":1}`+"\n", i)
		}
		_, _ = a.c.Write([]byte(sb.String()))
	}()
	go func() {
		defer wg.Done()
		for i := range n {
			_, _ = fmt.Fprintf(b.c, `{"type":"balance","id":"q%d","proc":"atm-b","ts":2}`+"\n", i)
		}
	}()
	replies, pushes, withBalance := 0, 0, 0
	var lastTS uint64
	var lastBalance uint64
	for replies < n || pushes < n {
		m := b.read()
		ts := num(t, m, "ts")
		if ts <= lastTS {
			t.Fatalf("B received ts %d after %d: %v", ts, lastTS, m)
		}
		lastTS = ts
		switch m["type"] {
		case "reply":
			replies++
		case "push":
			pushes++
		default:
			t.Fatalf("B got %v", m)
		}
		if _, ok := m["balance"]; ok {
			if m["type"] == "push" {
				withBalance++
			}
			bal := num(t, m, "balance")
			if bal < lastBalance {
				t.Fatalf("B's balance went from %d down to %d (%v)", lastBalance, bal, m)
			}
			lastBalance = bal
		}
	}
	wg.Wait()
	for i := range n {
		if m := a.read(); m["type"] != "reply" {
			t.Fatalf("transfer %d: %v", i, m)
		}
	}
	if want := uint64(100_000 + n); lastBalance != want {
		t.Fatalf("B's last balance %d, want %d", lastBalance, want)
	}
	figures(t, "transfers=%d balance_requests=%d pushes=%d pushes_with_balance=%d", n, n, pushes, withBalance)
}

// TestDelaysKeepTheOrderOfAConnection: with the teaching delays on, every
// message waits before it leaves, and a connection still gets its answers
// in order, timestamps rising.
func TestDelaysKeepTheOrderOfAConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *server.Server) { s.MinDelay, s.MaxDelay = time.Millisecond, 8*time.Millisecond })
	w, hello := e.wire()
	if msg, _ := hello["message"].(string); !strings.Contains(msg, "delays each message") {
		t.Fatalf("the greeting does not say so: %v", hello)
	}
	var lines strings.Builder
	for i := range 20 {
		fmt.Fprintf(&lines, `{"type":"lookup","id":"q%d","proc":"p","ts":1,"account":"456"}`+"\n", i)
	}
	w.write(strings.TrimSuffix(lines.String(), "\n"))
	last := num(t, hello, "ts")
	for i := range 20 {
		m := w.read()
		if m["id"] != fmt.Sprintf("q%d", i) {
			t.Fatalf("answer %d is %v", i, m)
		}
		if ts := num(t, m, "ts"); ts <= last {
			t.Fatalf("answer %d at ts %d after %d", i, ts, last)
		} else {
			last = ts
		}
	}
}
