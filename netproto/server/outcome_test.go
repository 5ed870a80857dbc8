package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank/outcome"
)

// replyGate is a TCP proxy in front of the server that holds back the
// replies to money requests (all replies with holdAll) until it is opened,
// as a congested or partitioned network would. cut breaks every connection
// through it, losing whatever it holds.
type replyGate struct {
	l       net.Listener
	target  string
	holdAll bool

	open     chan struct{} // closed by release
	openOnce sync.Once
	held     chan string // the id of each reply held back

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newReplyGate(t *testing.T, target string, holdAll bool) *replyGate {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &replyGate{l: l, target: target, holdAll: holdAll, open: make(chan struct{}), held: make(chan string, 16)}
	g.wg.Add(1)
	go g.run()
	t.Cleanup(func() {
		l.Close()
		g.cut()
		g.wg.Wait()
	})
	return g
}

func (g *replyGate) addr() string { return g.l.Addr().String() }

// release lets held and later replies through.
func (g *replyGate) release() { g.openOnce.Do(func() { close(g.open) }) }

// cut closes every connection through the proxy.
func (g *replyGate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

// waitHeld waits until a reply is held back and returns its request id.
func (g *replyGate) waitHeld(t *testing.T) string {
	t.Helper()
	select {
	case id := <-g.held:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("no reply reached the proxy")
		return ""
	}
}

func (g *replyGate) run() {
	defer g.wg.Done()
	for {
		c, err := g.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", g.target)
		if err != nil {
			c.Close()
			continue
		}
		clientGone := make(chan struct{}) // the client side failed: closed or cut
		g.mu.Lock()
		g.conns = append(g.conns, c, s)
		g.mu.Unlock()
		g.wg.Add(2)
		go func() {
			defer g.wg.Done()
			defer s.Close()
			defer close(clientGone)
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, err := s.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() {
			defer g.wg.Done()
			defer c.Close()
			br := bufio.NewReader(s)
			for {
				line, err := br.ReadBytes('\n')
				if err != nil {
					return
				}
				var m struct{ Type, ID, Op string }
				_ = json.Unmarshal(line, &m)
				money := m.Op == "deposit" || m.Op == "withdraw" || m.Op == "transfer"
				if (m.Type == "reply" || m.Type == "error") && m.ID != "" && (money || g.holdAll) {
					select {
					case <-g.open:
					default:
						g.held <- m.ID
						select {
						case <-g.open:
						case <-clientGone:
							return // lost with the connection
						}
					}
				}
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}()
	}
}

// A withdrawal whose reply is held past the client's deadline is not a
// refusal: its outcome is unknown. The client keeps it, and once the reply
// gets through Resolve returns the bank's real answer; the money moved once.
func TestOutcomeUnknownAfterDeadlineThenResolved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := newReplyGate(t, e.addr, false)
	c, err := client.Dial(ctx(t), g.addr(), client.Options{ProcessID: "atm-slow", RequestTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx(t), "123", "1234"); err != nil {
		t.Fatal(err)
	}
	other := e.login("123", client.Options{ProcessID: "atm-other"})
	start, err := other.Balance(ctx(t))
	if err != nil {
		t.Fatal(err)
	}

	_, err = c.Withdraw(ctx(t), 2_500)
	if !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("withdraw past the deadline: %v, want ErrOutcomeUnknown", err)
	}
	var ue *client.OutcomeUnknownError
	if !errors.As(err, &ue) || ue.Op != "withdraw" || ue.ID == "" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %#v: want an *OutcomeUnknownError for the withdrawal, caused by the deadline", err)
	}
	var pe *wire.Error
	if errors.As(err, &pe) || errors.Is(err, outcome.ErrInsufficientFunds) {
		t.Fatalf("an unknown outcome passes for a bank error: %v", err)
	}
	if id := g.waitHeld(t); id != ue.ID {
		t.Fatalf("the proxy holds the reply to %s, the error names %s", id, ue.ID)
	}

	// Still held: Resolve with a short deadline says it is still unknown.
	short, cancel := context.WithTimeout(ctx(t), 20*time.Millisecond)
	_, err = c.Resolve(short, ue.ID)
	cancel()
	if !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("resolve while the reply is held: %v, want ErrOutcomeUnknown", err)
	}

	g.release()
	r, err := c.Resolve(ctx(t), ue.ID)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if r.ID != ue.ID || r.Op != "withdraw" || r.Balance != start.Balance-2_500 || r.Duplicate {
		t.Fatalf("resolved reply %+v, want the first outcome: balance %v", r, start.Balance-2_500)
	}
	now, err := other.Balance(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if now.Balance != start.Balance-2_500 {
		t.Fatalf("balance %v after one withdrawal of 25,00 from %v", now.Balance, start.Balance)
	}
	if n := len(moneyEvents(t, e.bank)[ue.ID]); n != 1 {
		t.Fatalf("request %s is in the log %d times, want once", ue.ID, n)
	}
	if _, err := c.Resolve(ctx(t), ue.ID); !errors.Is(err, client.ErrNotPending) {
		t.Fatalf("resolve after the outcome was returned: %v, want ErrNotPending", err)
	}
	// The client goes on working.
	if r, err := c.Deposit(ctx(t), 100); err != nil || r.Balance != start.Balance-2_400 {
		t.Fatalf("deposit after resolve: %+v, %v", r, err)
	}
}

// A withdrawal whose reply is lost with its connection is kept across the
// reconnect: the client resends it with the same id and Resolve returns the
// first outcome, marked duplicate. The account is debited once.
func TestOutcomeUnknownResolvedAfterReconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := newReplyGate(t, e.addr, false)
	c, err := client.Dial(ctx(t), g.addr(), client.Options{ProcessID: "atm-lossy", RequestTimeout: 300 * time.Millisecond, Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx(t), "456", "1234"); err != nil {
		t.Fatal(err)
	}
	before := e.balance("456")

	_, err = c.Withdraw(ctx(t), 7_000)
	var ue *client.OutcomeUnknownError
	if !errors.As(err, &ue) || !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("withdraw past the deadline: %v, want an *OutcomeUnknownError", err)
	}
	g.waitHeld(t)
	g.cut() // the held reply is lost
	g.release()

	r, err := c.Resolve(ctx(t), ue.ID)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if !r.Duplicate || r.ID != ue.ID || r.Balance != before-7_000 {
		t.Fatalf("resolved reply %+v: want the first outcome (balance %v) as a duplicate", r, before-7_000)
	}
	other := e.login("456", client.Options{ProcessID: "atm-other"})
	now, err := other.Balance(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if now.Balance != before-7_000 {
		t.Fatalf("balance %v after one withdrawal of 70,00 from %v", now.Balance, before)
	}
	if n := len(moneyEvents(t, e.bank)[ue.ID]); n != 1 {
		t.Fatalf("request %s is in the log %d times, want once", ue.ID, n)
	}
}

// A refusal that comes late is still the bank's refusal once resolved.
func TestOutcomeUnknownResolvesToRefusal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := newReplyGate(t, e.addr, false)
	c, err := client.Dial(ctx(t), g.addr(), client.Options{ProcessID: "atm-slow", RequestTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx(t), "789", "1234"); err != nil {
		t.Fatal(err)
	}
	before := e.balance("789")
	_, err = c.Transfer(ctx(t), "123", before+1)
	var ue *client.OutcomeUnknownError
	if !errors.As(err, &ue) || ue.Op != "transfer" {
		t.Fatalf("transfer past the deadline: %v, want an *OutcomeUnknownError", err)
	}
	g.waitHeld(t)
	g.release()
	_, err = c.Resolve(ctx(t), ue.ID)
	var pe *wire.Error
	if !errors.Is(err, outcome.ErrInsufficientFunds) || !errors.As(err, &pe) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("resolve: %v, want the bank's insufficient_funds", err)
	}
	if got := e.balance("789"); got != before {
		t.Fatalf("a refused transfer moved the balance from %v to %v", before, got)
	}
}

// Without Reconnect, a money request whose connection breaks before the
// answer has an unknown outcome (it may have been applied), and no other
// client error says so; Resolve cannot learn it any more and says that.
func TestOutcomeUnknownConnectionLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := newReplyGate(t, e.addr, false)
	c, err := client.Dial(ctx(t), g.addr(), client.Options{ProcessID: "atm-cut"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx(t), "123", "1234"); err != nil {
		t.Fatal(err)
	}
	before := e.balance("123")
	errc := make(chan error, 1)
	go func() {
		_, err := c.Deposit(context.Background(), 999)
		errc <- err
	}()
	g.waitHeld(t)
	g.cut()
	err = <-errc
	var ue *client.OutcomeUnknownError
	if !errors.As(err, &ue) || !errors.Is(err, client.ErrConnectionLost) {
		t.Fatalf("deposit on a broken connection: %v, want an *OutcomeUnknownError caused by ErrConnectionLost", err)
	}
	if got := e.balance("123"); got != before+999 {
		t.Fatalf("balance %v: the proxy held a reply, so the deposit was applied (%v)", got, before+999)
	}
	_, err = c.Resolve(ctx(t), ue.ID)
	if !errors.Is(err, client.ErrOutcomeUnknown) || !errors.Is(err, client.ErrConnectionLost) {
		t.Fatalf("resolve on a dead client: %v, want ErrOutcomeUnknown (connection lost)", err)
	}
	// A request that was never sent fails as before.
	if _, err := c.Withdraw(ctx(t), 1); !errors.Is(err, client.ErrClientClosed) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("withdraw on a closed client: %v, want ErrClientClosed", err)
	}
}

// Only money requests that reached a connection have an unknown outcome: a
// read past its deadline, or a withdrawal queued while the connection is
// down and never sent, fail with the deadline as before; Resolve knows
// nothing of them.
func TestOutcomeUnknownOnlyForSentMoney(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := newReplyGate(t, e.addr, true)
	c, err := client.Dial(ctx(t), g.addr(), client.Options{ProcessID: "atm-read", RequestTimeout: 200 * time.Millisecond, Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Everything is held, the login too.
	_, err = c.Login(ctx(t), "123", "1234")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("login past the deadline: %v, want the deadline only", err)
	}
	_, err = c.Balance(ctx(t))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("balance past the deadline: %v, want the deadline only", err)
	}
	if _, err := c.Resolve(ctx(t), "no-such-id"); !errors.Is(err, client.ErrNotPending) {
		t.Fatalf("resolve of an unknown id: %v, want ErrNotPending", err)
	}

	e.shutdown()
	g.cut()
	for s := range c.Status() {
		if s.State == client.StateReconnecting {
			break
		}
	}
	_, err = c.Withdraw(ctx(t), 100)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("withdraw never sent: %v, want the deadline only", err)
	}
}
