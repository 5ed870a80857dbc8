package server_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/polltest"
	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank/outcome"
)

func TestEveryOperationEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(client.Options{ProcessID: "atm-test"})
	h := c.Hello()
	if h.Server != "bank" || h.Version != wire.Version || h.TS == 0 || h.Message != "connection established" ||
		h.MaxAmount != e.bank.MaxAmount() {
		t.Fatalf("greeting = %+v", h)
	}
	cx := ctx(t)

	r, err := c.Login(cx, "123", "1234")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if r.Account != "123" || r.Holder != "Ana Souza" || r.Balance != 100_000 {
		t.Fatalf("login reply = %+v", r)
	}
	if !(r.SentTS < r.ServerRecv && r.ServerRecv < r.ServerApply && r.ServerApply < r.TS && r.TS < r.RecvTS) {
		t.Fatalf("timestamps out of order: sent %d recv %d apply %d reply %d got %d", r.SentTS, r.ServerRecv, r.ServerApply, r.TS, r.RecvTS)
	}
	if r, err = c.Balance(cx); err != nil || r.Balance != 100_000 {
		t.Fatalf("balance = %+v, %v", r, err)
	}
	if r, err = c.Deposit(cx, 5_000); err != nil || r.Balance != 105_000 || r.Amount != 5_000 || r.Duplicate {
		t.Fatalf("deposit = %+v, %v", r, err)
	}
	if r, err = c.Withdraw(cx, 2_000); err != nil || r.Balance != 103_000 {
		t.Fatalf("withdraw = %+v, %v", r, err)
	}
	if r, err = c.Lookup(cx, "456"); err != nil || r.Holder != "Bruno Lima" || r.Account != "456" {
		t.Fatalf("lookup = %+v, %v", r, err)
	}
	if r, err = c.Transfer(cx, "456", 3_000); err != nil || r.Balance != 100_000 || r.To != "456" || r.ToHolder != "Bruno Lima" {
		t.Fatalf("transfer = %+v, %v", r, err)
	}
	if got := e.balance("456"); got != 103_000 {
		t.Fatalf("recipient balance = %v", got)
	}
	r, err = c.Statement(cx, 0, 2)
	if err != nil || len(r.Entries) != 2 || r.Next == 0 {
		t.Fatalf("statement page 1 = %+v, %v", r, err)
	}
	if r.Entries[0].Kind != wire.KindTransfer || r.Entries[1].Kind != wire.KindWithdraw {
		t.Fatalf("statement not newest first: %s, %s", r.Entries[0].Kind, r.Entries[1].Kind)
	}
	r, err = c.Statement(cx, r.Next, 10)
	if err != nil || len(r.Entries) != 3 || r.Next != 0 || r.Entries[0].Kind != wire.KindDeposit || r.Entries[2].Kind != wire.KindOpen {
		t.Fatalf("statement page 2 = %+v, %v", r, err)
	}
	if _, err = c.Logout(cx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if _, err = c.Balance(cx); !errors.Is(err, wire.ErrNotLoggedIn) {
		t.Fatalf("balance after logout: %v, want not_logged_in", err)
	}
	// The connection stays usable: log in again.
	if _, err = c.Login(cx, "456", "1234"); err != nil {
		t.Fatalf("second login: %v", err)
	}
}

// wantCode checks that err is an *Error with code and matches the sentinel.
func wantCode(t *testing.T, what string, err error, code string, sentinel error) *wire.Error {
	t.Helper()
	var pe *wire.Error
	if !errors.As(err, &pe) {
		t.Fatalf("%s: error %v (%T), want code %s", what, err, err, code)
	}
	if pe.Code != code {
		t.Fatalf("%s: code %s (%s), want %s", what, pe.Code, pe.Message, code)
	}
	if pe.Message == "" || pe.TS == 0 {
		t.Fatalf("%s: error without message or timestamp: %+v", what, pe)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("%s: %v does not match %v", what, err, sentinel)
	}
	return pe
}

func TestEveryErrorEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *server.Server) { s.LoginBackoff = time.Nanosecond })
	c := e.dial(client.Options{})
	cx := ctx(t)

	_, err := c.Deposit(cx, 100)
	wantCode(t, "deposit before login", err, wire.CodeNotLoggedIn, wire.ErrNotLoggedIn)
	_, err = c.Login(cx, "999", "1234")
	pe := wantCode(t, "unknown account", err, "account_not_found", outcome.ErrAccountNotFound)
	if !strings.Contains(pe.Message, "999") || !strings.Contains(pe.Message, "try again") {
		t.Fatalf("unknown account message %q should name it and invite another try", pe.Message)
	}
	_, err = c.Login(cx, "123", "0000")
	pe = wantCode(t, "wrong PIN", err, "wrong_pin", outcome.ErrWrongPIN)
	if pe.AttemptsLeft != 2 {
		t.Fatalf("attempts left = %d, want 2", pe.AttemptsLeft)
	}
	if _, err = c.Login(cx, "123", "1234"); err != nil {
		t.Fatalf("login: %v", err)
	}
	_, err = c.Login(cx, "456", "1234")
	wantCode(t, "second login", err, wire.CodeAlreadyLoggedIn, wire.ErrAlreadyLoggedIn)

	_, err = c.Deposit(cx, 0)
	wantCode(t, "zero deposit", err, "invalid_amount", outcome.ErrInvalidAmount)
	_, err = c.Withdraw(cx, -5)
	wantCode(t, "negative withdrawal", err, "invalid_amount", outcome.ErrInvalidAmount)
	_, err = c.Deposit(cx, 1<<62)
	wantCode(t, "deposit above the limit", err, "limit_exceeded", outcome.ErrLimitExceeded)
	_, err = c.Withdraw(cx, 200_000)
	wantCode(t, "overdraft", err, "insufficient_funds", outcome.ErrInsufficientFunds)
	_, err = c.Transfer(cx, "123", 100)
	wantCode(t, "transfer to self", err, "same_account", outcome.ErrSameAccount)
	_, err = c.Transfer(cx, "999", 100)
	pe = wantCode(t, "transfer to a missing account", err, "account_not_found", outcome.ErrAccountNotFound)
	if !strings.Contains(pe.Message, "999") {
		t.Fatalf("message %q should name the recipient", pe.Message)
	}
	_, err = c.Lookup(cx, "999")
	wantCode(t, "lookup of a missing account", err, "account_not_found", outcome.ErrAccountNotFound)
	_, err = c.Audit(cx, "wrong")
	wantCode(t, "audit without the token", err, wire.CodeForbidden, wire.ErrForbidden)
	if got := e.balance("123"); got != 100_000 {
		t.Fatalf("balance changed by failed operations: %v", got)
	}

	// Three wrong PINs lock the account.
	c2 := e.dial(client.Options{})
	for i := 0; i < 2; i++ {
		_, err = c2.Login(cx, "789", "9999")
		wantCode(t, "wrong PIN", err, "wrong_pin", outcome.ErrWrongPIN)
	}
	_, err = c2.Login(cx, "789", "9999")
	pe = wantCode(t, "third wrong PIN", err, "account_locked", outcome.ErrAccountLocked)
	if pe.Until.Before(time.Now()) {
		t.Fatalf("lock until %v is not in the future", pe.Until)
	}
	_, err = c2.Login(cx, "789", "1234")
	wantCode(t, "right PIN on a locked account", err, "account_locked", outcome.ErrAccountLocked)
}

func TestRawProtocolErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Another client keeps being served throughout.
	other := e.login("456", client.Options{})
	alive := func() {
		t.Helper()
		if _, err := other.Balance(ctx(t)); err != nil {
			t.Fatalf("the other client is no longer served: %v", err)
		}
	}

	r, hello := e.raw()
	if hello["type"] != "hello" {
		t.Fatalf("greeting = %v", hello)
	}
	code := func(m map[string]any) string { s, _ := m["code"].(string); return s }

	r.writeLine(`{"type":"login",`)
	if m := r.read(); m["type"] != "error" || code(m) != wire.CodeMalformed {
		t.Fatalf("malformed JSON: %v", m)
	}
	r.writeLine(`[1,2,3]`)
	if m := r.read(); code(m) != wire.CodeMalformed {
		t.Fatalf("JSON array: %v", m)
	}
	r.writeLine(`{"type":"deposit","id":"x","amount":"abc"}`)
	if m := r.read(); code(m) == "" {
		t.Fatalf("string amount: %v", m)
	}
	if m := r.req(map[string]any{"type": "teleport", "id": "t1"}); code(m) != wire.CodeUnknownType || m["id"] != "t1" {
		t.Fatalf("unknown type: %v", m)
	}
	if m := r.req(map[string]any{"id": "t2"}); code(m) != wire.CodeBadRequest {
		t.Fatalf("missing type: %v", m)
	}
	if m := r.req(map[string]any{"type": "balance", "id": "t3"}); code(m) != wire.CodeNotLoggedIn {
		t.Fatalf("balance before login: %v", m)
	}
	if m := r.req(map[string]any{"type": "transfer", "id": "t4", "to": "456", "amount": 100}); code(m) != wire.CodeNotLoggedIn {
		t.Fatalf("transfer before login: %v", m)
	}
	if m := r.req(map[string]any{"type": "login"}); code(m) != "invalid_request_id" {
		t.Fatalf("request without id: %v", m)
	}
	alive()
	if m := r.req(map[string]any{"type": "login", "id": "l1", "account": "123", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login: %v", m)
	}
	// The session is bound: an account id inside an operation is never trusted.
	if m := r.req(map[string]any{"type": "withdraw", "id": "w1", "account": "456", "amount": 100}); code(m) != wire.CodeForbidden {
		t.Fatalf("withdraw from a foreign account: %v", m)
	}
	for _, amt := range []string{"99999999999999999999", "1.5", "1e3", "-0.1"} {
		r.writeLine(`{"type":"deposit","id":"d-` + amt + `","proc":"raw","amount":` + amt + `}`)
		if m := r.read(); code(m) != "invalid_amount" {
			t.Fatalf("amount %s: %v", amt, m)
		}
	}
	r.writeLine(`{"type":"deposit","id":"d-big","proc":"raw","amount":9223372036854775807}`)
	if m := r.read(); code(m) != "limit_exceeded" {
		t.Fatalf("max int64 amount: %v", m)
	}
	r.writeLine("   ") // blank lines are ignored
	if m := r.req(map[string]any{"type": "balance", "id": "b1"}); m["balance"] != float64(100_000) {
		t.Fatalf("balance after bad amounts: %v", m)
	}
	alive()

	// An oversized line gets an error, then the connection closes.
	r.writeLine(`{"type":"balance","id":"` + strings.Repeat("x", wire.DefaultMaxLineBytes) + `"}`)
	if m := r.read(); code(m) != wire.CodeLineTooLong {
		t.Fatalf("oversized line: %v", m)
	}
	if _, err := r.br.ReadBytes('\n'); err == nil {
		t.Fatal("connection still open after an oversized line")
	}
	alive()
	if got := e.balance("123"); got != 100_000 {
		t.Fatalf("bad input changed a balance: %v", got)
	}
}

func TestPipelinedRepliesInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.raw()
	var b strings.Builder
	b.WriteString(`{"type":"login","id":"p0","proc":"raw","ts":1,"account":"123","pin":"1234"}` + "\n")
	for i := 1; i <= 50; i++ {
		b.WriteString(`{"type":"deposit","id":"p` + itoa(i) + `","proc":"raw","ts":1,"amount":1}` + "\n")
	}
	b.WriteString(`{"type":"balance","id":"p51","proc":"raw","ts":1}` + "\n")
	r.writeLine(strings.TrimSuffix(b.String(), "\n"))
	var last float64
	for i := 0; i <= 51; i++ {
		m := r.read()
		if m["id"] != "p"+itoa(i) || m["type"] != "reply" {
			t.Fatalf("reply %d = %v", i, m)
		}
		ts := m["ts"].(float64)
		if ts <= last {
			t.Fatalf("reply %d timestamp %v not above %v", i, ts, last)
		}
		last = ts
		if i == 51 && m["balance"] != float64(100_050) {
			t.Fatalf("final balance %v", m["balance"])
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestOperatorOperations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(client.Options{})
	cx := ctx(t)
	if _, err := c.OpenAccount(cx, "", "555", "Dora Reis", "4321"); !errors.Is(err, wire.ErrForbidden) {
		t.Fatalf("open_account without token: %v", err)
	}
	r, err := c.OpenAccount(cx, opToken, "555", "Dora Reis", "4321")
	if err != nil || r.Account != "555" || r.Holder != "Dora Reis" || r.Balance != 0 {
		t.Fatalf("open_account = %+v, %v", r, err)
	}
	if _, err := c.OpenAccount(cx, opToken, "555", "Dora Reis", "4321"); !errors.Is(err, outcome.ErrAccountExists) {
		t.Fatalf("open_account twice: %v", err)
	}
	if _, err := c.OpenAccount(cx, opToken, "556", "Eva", "12"); !errors.Is(err, outcome.ErrInvalidPIN) {
		t.Fatalf("open_account with a short PIN: %v", err)
	}
	a, err := c.Audit(cx, opToken)
	if err != nil || len(a.Accounts) != 4 || a.Total != 300_000 || a.Deposits != 300_000 || !a.Conserved {
		t.Fatalf("audit = %+v, %v", a, err)
	}
	// Operator operations are not a way around login.
	if _, err := c.Balance(cx); !errors.Is(err, wire.ErrNotLoggedIn) {
		t.Fatalf("balance with no login after operator ops: %v", err)
	}
	if _, err := c.Login(cx, "555", "4321"); err != nil {
		t.Fatalf("login to the new account: %v", err)
	}
	// Without a token configured, the operations do not exist for anyone.
	e2 := newEnv(t, func(s *server.Server) { s.OperatorToken = "" })
	c2 := e2.dial(client.Options{})
	if _, err := c2.Audit(cx, ""); !errors.Is(err, wire.ErrForbidden) {
		t.Fatalf("audit with no token configured: %v", err)
	}
}

func TestLoginBackoffPerConnection(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	clock := func() time.Time { <-mu; defer func() { mu <- struct{}{} }(); return now }
	advance := func(d time.Duration) { <-mu; now = now.Add(d); mu <- struct{}{} }
	e := newEnv(t, func(s *server.Server) { s.Now = clock; s.LoginBackoff = time.Second })
	c := e.dial(client.Options{})
	cx := ctx(t)
	_, err := c.Login(cx, "999", "1234")
	wantCode(t, "unknown account", err, "account_not_found", outcome.ErrAccountNotFound)
	_, err = c.Login(cx, "123", "1234")
	pe := wantCode(t, "login right after a failure", err, wire.CodeTooManyAttempts, wire.ErrTooManyAttempts)
	if pe.Until.IsZero() {
		t.Fatal("too_many_attempts without until")
	}
	// Another connection is not affected.
	if _, err := e.dial(client.Options{}).Login(cx, "456", "1234"); err != nil {
		t.Fatalf("login on another connection: %v", err)
	}
	advance(time.Second)
	_, err = c.Login(cx, "123", "0000")
	wantCode(t, "wrong PIN after the wait", err, "wrong_pin", outcome.ErrWrongPIN)
	advance(time.Second) // the second failure doubles the wait
	_, err = c.Login(cx, "123", "1234")
	wantCode(t, "login before the doubled wait", err, wire.CodeTooManyAttempts, nil)
	advance(time.Second)
	if _, err := c.Login(cx, "123", "1234"); err != nil {
		t.Fatalf("login after the doubled wait: %v", err)
	}
}

func TestServerBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *server.Server) { s.MaxConns = 1 })
	c := e.login("123", client.Options{})
	_, err := client.Dial(ctx(t), e.addr, client.Options{})
	if !errors.Is(err, wire.ErrServerBusy) {
		t.Fatalf("second connection: %v, want server_busy", err)
	}
	if _, err := c.Balance(ctx(t)); err != nil {
		t.Fatalf("first client after the refusal: %v", err)
	}
	c.Close()
	polltest.Until(t, "a free connection slot", 10*time.Second, func() bool {
		c2, err := client.Dial(ctx(t), e.addr, client.Options{})
		if err != nil {
			return false
		}
		c2.Close()
		return true
	})
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *server.Server) { s.IdleTimeout = 50 * time.Millisecond })
	r, _ := e.raw()
	m := r.read() // no request: the server gives up on us
	if m["code"] != wire.CodeIdleTimeout {
		t.Fatalf("idle connection got %v", m)
	}
	if _, err := r.br.ReadBytes('\n'); err == nil {
		t.Fatal("idle connection not closed")
	}

	// A reconnecting client comes back, logged in again.
	c := e.login("123", client.Options{Reconnect: true})
	for s := range c.Status() {
		if s.State == client.StateLost && !errors.Is(s.Err, wire.ErrIdleTimeout) {
			t.Fatalf("lost the connection for %v, want idle timeout", s.Err)
		}
		if s.State == client.StateReconnected {
			if s.Err != nil {
				t.Fatalf("session not restored: %v", s.Err)
			}
			break
		}
	}
	if r, err := c.Balance(ctx(t)); err != nil || r.Account != "123" {
		t.Fatalf("balance after the idle reconnect = %+v, %v", r, err)
	}
}
