package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/polltest"
	"atm/netproto/server"
	"atm/netproto/wire"
)

// hostileCase is one bad request sent over a raw connection.
type hostileCase struct {
	name   string
	login  bool   // log the connection in to account 123 first
	line   string // sent as is, followed by "\n"
	code   string // the error code documented for it
	closes bool   // the server closes the connection after the error
}

func hostileCases() []hostileCase {
	const maxInt = "9223372036854775807"
	deep := strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000)
	cases := []hostileCase{
		// Not JSON, or not an object.
		{name: "truncated JSON", line: `{"type":"deposit","id":"h1","amount":100`, code: "malformed"},
		{name: "truncated JSON logged in", login: true, line: `{"type":"deposit","id":"h1","amount":100`, code: "malformed"},
		{name: "array", login: true, line: `[{"type":"deposit","id":"h2","amount":100}]`, code: "malformed"},
		{name: "string", login: true, line: `"deposit"`, code: "malformed"},
		{name: "number", login: true, line: `42`, code: "malformed"},
		{name: "binary garbage", login: true, line: "\x00\x01\xfe\xff\x7f\x80garbage\x1b[2J", code: "malformed"},
		{name: "two objects on a line", login: true, line: `{"type":"deposit","id":"h3","amount":100}{"type":"deposit","id":"h4","amount":100}`, code: "malformed"},
		{name: "deep nesting", login: true, line: `{"type":"deposit","id":"h5","amount":100,"x":` + deep + `}`, code: "malformed"},
		{name: "line too long", login: true, line: `{"type":"deposit","id":"h6","amount":100,"pad":"` + strings.Repeat("x", wire.DefaultMaxLineBytes) + `"}`, code: "line_too_long", closes: true},
		{name: "line too long garbage", line: strings.Repeat("\xff", wire.DefaultMaxLineBytes+1), code: "line_too_long", closes: true},
		// Wrong types.
		{name: "type is a number", login: true, line: `{"type":7,"id":"h7"}`, code: "bad_request"},
		{name: "id is a number", login: true, line: `{"type":"deposit","id":7,"amount":100}`, code: "bad_request"},
		{name: "amount is a bool", login: true, line: `{"type":"deposit","id":"h8","amount":true}`, code: "bad_request"},
		{name: "amount is an object", login: true, line: `{"type":"deposit","id":"h9","amount":{"cents":100}}`, code: "bad_request"},
		{name: "amount is text", login: true, line: `{"type":"deposit","id":"h10","amount":"lots"}`, code: "bad_request"},
		{name: "amount is a number in text", login: true, line: `{"type":"deposit","id":"h10b","amount":"100"}`, code: "bad_request"},
		{name: "ts is negative", login: true, line: `{"type":"deposit","id":"h11","ts":-1,"amount":100}`, code: "bad_request"},
		{name: "to is a number", login: true, line: `{"type":"transfer","id":"h12","to":456,"amount":100}`, code: "bad_request"},
		{name: "pin is a number", line: `{"type":"login","id":"h13","account":"123","pin":1234}`, code: "bad_request"},
		// Missing fields.
		{name: "empty object", login: true, line: `{}`, code: "bad_request"},
		{name: "null", login: true, line: `null`, code: "malformed"},
		{name: "no type", login: true, line: `{"id":"h14","amount":100}`, code: "bad_request"},
		{name: "no id", login: true, line: `{"type":"deposit","amount":100}`, code: "invalid_request_id"},
		{name: "id too long", login: true, line: `{"type":"deposit","id":"` + strings.Repeat("i", 129) + `","amount":100}`, code: "invalid_request_id"},
		{name: "deposit without amount", login: true, line: `{"type":"deposit","id":"h15"}`, code: "invalid_amount"},
		{name: "transfer without to", login: true, line: `{"type":"transfer","id":"h16","amount":100}`, code: "bad_request"},
		{name: "lookup without account", login: true, line: `{"type":"lookup","id":"h17"}`, code: "bad_request"},
		// Unknown types, including the server's own message types.
		{name: "unknown type", login: true, line: `{"type":"steal","id":"h18","amount":100}`, code: "unknown_type"},
		{name: "type reply", login: true, line: `{"type":"reply","id":"h19","op":"deposit","amount":100,"balance":999999}`, code: "unknown_type"},
		{name: "type push", login: true, line: `{"type":"push","id":"h20","account":"123","amount":100}`, code: "unknown_type"},
		{name: "type with NUL", login: true, line: `{"type":"deposit\u0000","id":"h21","amount":100}`, code: "unknown_type"},
		// Another account's id inside an operation.
		{name: "deposit to another account", login: true, line: `{"type":"deposit","id":"h22","account":"456","amount":100}`, code: "forbidden"},
		{name: "withdraw from another account", login: true, line: `{"type":"withdraw","id":"h23","account":"456","amount":100}`, code: "forbidden"},
		{name: "transfer from another account", login: true, line: `{"type":"transfer","id":"h24","account":"456","to":"123","amount":100}`, code: "forbidden"},
		{name: "balance of another account", login: true, line: `{"type":"balance","id":"h25","account":"456"}`, code: "forbidden"},
		{name: "statement of another account", login: true, line: `{"type":"statement","id":"h26","account":"456"}`, code: "forbidden"},
		{name: "logout of another account", login: true, line: `{"type":"logout","id":"h27","account":"456"}`, code: "forbidden"},
		// Amounts.
		{name: "zero", login: true, line: `{"type":"deposit","id":"h28","amount":0}`, code: "invalid_amount"},
		{name: "negative deposit", login: true, line: `{"type":"deposit","id":"h29","amount":-100}`, code: "invalid_amount"},
		{name: "negative withdrawal", login: true, line: `{"type":"withdraw","id":"h30","amount":-100}`, code: "invalid_amount"},
		{name: "negative transfer", login: true, line: `{"type":"transfer","id":"h31","to":"456","amount":-100}`, code: "invalid_amount"},
		{name: "min int", login: true, line: `{"type":"withdraw","id":"h32","amount":-9223372036854775808}`, code: "invalid_amount"},
		{name: "max int deposit", login: true, line: `{"type":"deposit","id":"h33","amount":` + maxInt + `}`, code: "limit_exceeded"},
		{name: "max int withdrawal", login: true, line: `{"type":"withdraw","id":"h34","amount":` + maxInt + `}`, code: "limit_exceeded"},
		{name: "max int transfer", login: true, line: `{"type":"transfer","id":"h35","to":"456","amount":` + maxInt + `}`, code: "limit_exceeded"},
		{name: "above int64", login: true, line: `{"type":"deposit","id":"h36","amount":9223372036854775808}`, code: "invalid_amount"},
		{name: "huge", login: true, line: `{"type":"deposit","id":"h37","amount":1` + strings.Repeat("0", 400) + `}`, code: "invalid_amount"},
		{name: "fraction", login: true, line: `{"type":"deposit","id":"h38","amount":1.5}`, code: "invalid_amount"},
		{name: "exponent", login: true, line: `{"type":"deposit","id":"h39","amount":1e3}`, code: "invalid_amount"},
		{name: "just above the limit", login: true, line: `{"type":"deposit","id":"h40","amount":10000001}`, code: "limit_exceeded"},
		{name: "more than the balance", login: true, line: `{"type":"withdraw","id":"h41","amount":100001}`, code: "insufficient_funds"},
		{name: "transfer more than the balance", login: true, line: `{"type":"transfer","id":"h42","to":"456","amount":100001}`, code: "insufficient_funds"},
		{name: "transfer to self", login: true, line: `{"type":"transfer","id":"h43","to":"123","amount":100}`, code: "same_account"},
		{name: "transfer to nobody", login: true, line: `{"type":"transfer","id":"h44","to":"999999","amount":100}`, code: "account_not_found"},
		{name: "transfer to a bad id", login: true, line: `{"type":"transfer","id":"h45","to":"../456","amount":100}`, code: "invalid_account_id"},
		{name: "transfer to letters", login: true, line: `{"type":"transfer","id":"h45b","to":"abc","amount":100}`, code: "invalid_account_id"},
		{name: "lookup of letters", login: true, line: `{"type":"lookup","id":"h45c","account":"abc"}`, code: "invalid_account_id"},
		// Sessions.
		{name: "second login", login: true, line: `{"type":"login","id":"h46","account":"456","pin":"1234"}`, code: "already_logged_in"},
		{name: "second login same account", login: true, line: `{"type":"login","id":"h47","account":"123","pin":"1234"}`, code: "already_logged_in"},
		{name: "audit from a session", login: true, line: `{"type":"audit","id":"h48"}`, code: "forbidden"},
		{name: "audit with a wrong token", line: `{"type":"audit","id":"h49","token":"guess"}`, code: "forbidden"},
		{name: "open account without token", line: `{"type":"open_account","id":"h50","account":"666","name":"Mallory","pin":"1234"}`, code: "forbidden"},
		{name: "login to nobody", line: `{"type":"login","id":"h51","account":"999999","pin":"1234"}`, code: "account_not_found"},
		{name: "login without account", line: `{"type":"login","id":"h52","pin":"1234"}`, code: "invalid_account_id"},
	}
	// Objects that are not I-JSON, or names that are not the protocol's.
	cases = append(cases,
		hostileCase{name: "repeated type", login: true, line: `{"type":"balance","type":"deposit","id":"j1","amount":100}`, code: "malformed"},
		hostileCase{name: "repeated amount", login: true, line: `{"type":"deposit","id":"j2","amount":1,"amount":100000}`, code: "malformed"},
		hostileCase{name: "repeated through an escape", login: true, line: `{"type":"balance","\u0074ype":"deposit","id":"j3","amount":100}`, code: "malformed"},
		hostileCase{name: "upper-case name", login: true, line: `{"TYPE":"deposit","id":"j4","amount":100}`, code: "bad_request"},
		hostileCase{name: "name in other case beside the real one", login: true, line: `{"type":"balance","Type":"deposit","id":"j5","amount":100}`, code: "bad_request"},
		hostileCase{name: "invalid UTF-8 in a string", login: true, line: "{\"type\":\"lookup\",\"id\":\"j6\",\"account\":\"45\xff6\"}", code: "malformed"},
		hostileCase{name: "invalid UTF-8 in a name", login: true, line: "{\"type\":\"balance\",\"id\":\"j7\",\"x\xc3\":1}", code: "malformed"},
	)
	// Timestamps outside the range, or jumps too far ahead of the server.
	for _, ts := range []string{"18446744073709551614", "18446744073709551615", "9223372036854775808", "9223372036854775807", "9007199254740992"} {
		cases = append(cases,
			hostileCase{name: "ts " + ts, line: `{"type":"balance","id":"t1","proc":"p","ts":` + ts + `}`, code: "invalid_timestamp"},
			hostileCase{name: "ts " + ts + " logged in", login: true, line: `{"type":"deposit","id":"t2","proc":"p","ts":` + ts + `,"amount":100}`, code: "invalid_timestamp"})
	}
	cases = append(cases,
		hostileCase{name: "ts above uint64", line: `{"type":"balance","id":"t3","ts":18446744073709551616}`, code: "bad_request"},
		hostileCase{name: "ts a fraction", line: `{"type":"balance","id":"t4","ts":1.5}`, code: "bad_request"},
		hostileCase{name: "ts as text", line: `{"type":"balance","id":"t5","ts":"7"}`, code: "bad_request"},
		hostileCase{name: "jump before login", line: `{"type":"login","id":"t6","account":"123","pin":"1234","ts":1099511627776}`, code: "invalid_timestamp"},
		hostileCase{name: "jump in a session", login: true, line: `{"type":"deposit","id":"t7","amount":100,"ts":1099511627776}`, code: "invalid_timestamp"},
	)
	// Fields printed in the server's output or stored in its log.
	cases = append(cases,
		hostileCase{name: "proc with a newline", line: `{"type":"balance","id":"f1","proc":"p\nL=999999 apply deposit 8801 +R$ 1.000.000,00 ok"}`, code: "bad_request"},
		hostileCase{name: "proc with a space", line: `{"type":"balance","id":"f2","proc":"atm 1"}`, code: "bad_request"},
		hostileCase{name: "proc too long", line: `{"type":"balance","id":"f3","proc":"` + strings.Repeat("p", 65) + `"}`, code: "bad_request"},
		hostileCase{name: "id with a newline", line: `{"type":"balance","id":"f4\nL=999999 apply","proc":"p"}`, code: "invalid_request_id"},
		hostileCase{name: "id with a space", login: true, line: `{"type":"deposit","id":"f5 x","amount":100}`, code: "invalid_request_id"},
		hostileCase{name: "id with an escape character", login: true, line: `{"type":"deposit","id":"f6\u001b[2J","amount":100}`, code: "invalid_request_id"},
		hostileCase{name: "login account with a newline", line: `{"type":"login","id":"f7","account":"123\nL=999999 apply","pin":"1234"}`, code: "invalid_account_id"},
		hostileCase{name: "type with a newline", login: true, line: `{"type":"balance\nL=999999 apply","id":"f8"}`, code: "unknown_type"},
	)
	// Every operation before login.
	for _, op := range []string{
		`{"type":"balance","id":"p1"}`,
		`{"type":"deposit","id":"p2","amount":100}`,
		`{"type":"withdraw","id":"p3","amount":100}`,
		`{"type":"transfer","id":"p4","to":"456","amount":100}`,
		`{"type":"statement","id":"p5"}`,
		`{"type":"lookup","id":"p6","account":"456"}`,
		`{"type":"logout","id":"p7"}`,
		`{"type":"deposit","id":"p8","account":"123","amount":100}`,
	} {
		var m map[string]any
		_ = json.Unmarshal([]byte(op), &m)
		cases = append(cases, hostileCase{name: fmt.Sprintf("%s before login", m["type"]), line: op, code: "not_logged_in"})
	}
	return cases
}

// TestHostileInput sends each bad request of the table on a connection of
// its own and checks that it gets its documented error, that the connection
// stays usable (or is closed, where documented) and that no balance, total
// or PIN counter changed.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	eachBackend(t, testHostileInput)
}

func testHostileInput(t *testing.T, b *testBank) {
	appliedNow := func() int { // money events of the log that applied
		n := 0
		for _, evs := range moneyEvents(t, b.ledger) {
			for _, e := range evs {
				if e.Outcome == "ok" {
					n++
				}
			}
		}
		return n
	}
	cases := hostileCases()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, hello := b.raw(t, i)
			if hello["type"] != "hello" {
				t.Fatalf("greeting %v", hello)
			}
			if tc.login {
				if m := r.req(map[string]any{"type": "login", "id": "in", "account": "123", "pin": "1234"}); m["type"] != "reply" {
					t.Fatalf("login: %v", m)
				}
			}
			before, beforeApplied := snapshot(t, b.ledger), appliedNow()
			if _, err := r.c.Write([]byte(tc.line + "\n")); err != nil {
				t.Fatalf("write: %v", err)
			}
			m := r.read()
			if m["type"] != "error" || m["code"] != tc.code {
				t.Fatalf("got %v, want error %s", m, tc.code)
			}
			if msg, _ := m["message"].(string); msg == "" {
				t.Errorf("error %s has no message", tc.code)
			}
			// Every error but those about the line itself names the request.
			var sent map[string]any
			if json.Unmarshal([]byte(tc.line), &sent) == nil && tc.code != "malformed" && tc.code != "line_too_long" {
				if id, ok := sent["id"].(string); ok && tc.code != "invalid_request_id" && m["id"] != id {
					t.Errorf("error %s answers id %v, want %q", tc.code, m["id"], id)
				}
			}
			if tc.closes {
				_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if extra, err := r.br.ReadBytes('\n'); err == nil {
					t.Fatalf("connection still open after %s: %q", tc.code, extra)
				}
			} else {
				// Still served: a lookup answers (or says the session is not logged in).
				m := r.req(map[string]any{"type": "lookup", "id": "after", "account": "456"})
				want := "reply"
				if !tc.login {
					want = "error"
				}
				if m["type"] != want || m["id"] != "after" {
					t.Fatalf("after %s the connection answers %v", tc.name, m)
				}
			}
			if d := before.diff(snapshot(t, b.ledger)); d != "" {
				t.Fatalf("state changed: %s", d)
			}
			if n := appliedNow(); n != beforeApplied {
				t.Fatalf("applied money events in the log went from %d to %d", beforeApplied, n)
			}
		})
	}
	rep := b.verify(t)
	figures(t, "servers=%d bad_inputs=%d events_replayed=%d", len(b.addrs), len(cases), rep.Events)
}

// TestSlowlorisCutByIdleTimeout trickles a request one byte at a time: the
// idle timeout bounds the whole line, not the gap between bytes, so the
// connection is cut long before the line could be complete.
func TestSlowlorisCutByIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 400 * time.Millisecond
	e := newEnv(t, func(s *server.Server) { s.IdleTimeout = idle })
	r, _ := e.raw()
	line := []byte(`{"type":"lookup","id":"slow","proc":"slowloris","ts":1,"account":"123","padding":"` + strings.Repeat("z", 200) + `"}` + "\n")
	// Each byte comes well within the idle timeout of the one before it.
	const gap = 50 * time.Millisecond
	var sent atomic.Int64
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		t := time.NewTicker(gap)
		defer t.Stop()
		for _, b := range line {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if _, err := r.c.Write([]byte{b}); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	_ = r.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := r.br.ReadBytes('\n')
	close(stop)
	<-writerDone
	if err != nil {
		t.Fatalf("no answer to the slow client: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil || m["code"] != "idle_timeout" {
		t.Fatalf("got %q, want an idle_timeout error", got)
	}
	if n := sent.Load(); n >= int64(len(line)) {
		t.Fatalf("the whole line (%d bytes) went through before the cut", n)
	}
	if _, err := r.br.ReadBytes('\n'); err == nil {
		t.Fatal("connection still open after idle_timeout")
	}
	figures(t, "idle_timeout=%s byte_gap=%s bytes_sent_before_cut=%d of %d", idle, gap, sent.Load(), len(line))
}

// TestTwoThousandConnections opens 2,000 connections at once against a
// server limited to 500: each is greeted or told server_busy, and a session
// opened before the flood keeps being answered throughout.
//
// It does not run in parallel with the other tests: raiseFileLimit may
// change the limit on open files of the whole process, and lowers it
// again at the end.
func TestTwoThousandConnections(t *testing.T) {
	const total, limit = 2000, 500
	raiseFileLimit(t, 2*total+256)
	e := newEnv(t, func(s *server.Server) { s.MaxConns = limit })
	keeper := e.login("123", client.Options{ProcessID: "atm-keeper"})

	var hellos, busy, failed atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	var firstErr atomic.Value
	var wg sync.WaitGroup
	work := make(chan int)
	const dialers = 64
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				c, err := net.DialTimeout("tcp", e.addr, 20*time.Second)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				line, err := bufio.NewReader(c).ReadBytes('\n')
				var m map[string]any
				switch {
				case err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("read the first line: %w", err))
				case json.Unmarshal(line, &m) != nil:
					failed.Add(1)
				case m["type"] == "hello":
					hellos.Add(1)
				case m["type"] == "error" && m["code"] == "server_busy":
					busy.Add(1)
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("first line %q", line))
				}
			}
		}()
	}
	// The established session is answered while the flood goes on.
	floodDone := make(chan struct{})
	var keeperOps atomic.Int64
	keeperErr := make(chan error, 1)
	go func() {
		defer close(keeperErr)
		for {
			select {
			case <-floodDone:
				return
			default:
			}
			if _, err := keeper.Balance(context.Background()); err != nil {
				keeperErr <- err
				return
			}
			keeperOps.Add(1)
		}
	}()
	for i := range total {
		work <- i
	}
	close(work)
	wg.Wait()
	close(floodDone)
	if err := <-keeperErr; err != nil {
		t.Fatalf("the established session failed during the flood: %v", err)
	}
	if v := firstErr.Load(); v != nil {
		t.Errorf("first failure: %v", v)
	}
	if failed.Load() != 0 || hellos.Load()+busy.Load() != total {
		t.Fatalf("greeted %d, busy %d, failed %d of %d", hellos.Load(), busy.Load(), failed.Load(), total)
	}
	if hellos.Load() > limit-1 || busy.Load() < total-limit+1 {
		t.Fatalf("greeted %d (limit %d with one session open), busy %d", hellos.Load(), limit, busy.Load())
	}
	// With all of them still open, the old session is answered.
	if _, err := keeper.Deposit(ctx(t), 100); err != nil {
		t.Fatalf("deposit at the connection limit: %v", err)
	}
	for _, c := range conns {
		c.Close()
	}
	// Once they are gone, newcomers are greeted again.
	polltest.Until(t, "a new connection to be greeted", 10*time.Second, func() bool {
		c, err := client.Dial(context.Background(), e.addr, client.Options{})
		if err != nil {
			if !errors.Is(err, wire.ErrServerBusy) {
				t.Fatalf("dial: %v", err)
			}
			return false
		}
		c.Close()
		return true
	})
	figures(t, "connections=%d max_conns=%d greeted=%d busy=%d keeper_requests_during_flood=%d",
		total, limit, hellos.Load(), busy.Load(), keeperOps.Load())
}
