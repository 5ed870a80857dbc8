package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"atm/netproto/client"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/money"
)

// downAddr returns an address on 127.0.0.1 where nothing listens: a port
// the system handed out and that was closed again.
func downAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestDialSkipsAServerThatIsDown: of two addresses of the bank, the first
// refuses connections; the client connects to the second and says so.
func TestDialSkipsAServerThatIsDown(t *testing.T) {
	t.Parallel()
	s := startServer(t, filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{ProcessID: "bank-up"}}, nil)
	defer s.stop(t)
	openAccounts(t, s.addr, []string{"900"}, 5_000)
	down := downAddr(t)

	for _, dial := range []struct {
		name string
		do   func() (*client.Client, error)
	}{
		{"Dial with a list", func() (*client.Client, error) {
			return client.Dial(ctx(t), down+", "+s.addr, client.Options{ProcessID: "atm-list"})
		}},
		{"DialServers", func() (*client.Client, error) {
			return client.DialServers(ctx(t), []string{down, s.addr}, client.Options{ProcessID: "atm-servers"})
		}},
	} {
		c, err := dial.do()
		if err != nil {
			t.Fatalf("%s: %v", dial.name, err)
		}
		if h := c.Hello(); h.Addr != s.addr || h.Server != "bank-up" || c.Addr() != s.addr {
			t.Errorf("%s: connected to %s (%s), Addr() %s; want %s (bank-up)", dial.name, h.Addr, h.Server, c.Addr(), s.addr)
		}
		if got := c.Addrs(); len(got) != 2 || got[0] != down || got[1] != s.addr {
			t.Errorf("%s: Addrs() = %q", dial.name, got)
		}
		if _, err := c.Login(ctx(t), "900", "1234"); err != nil {
			t.Fatalf("%s: login: %v", dial.name, err)
		}
		if r, err := c.Balance(ctx(t)); err != nil || r.Balance != 5_000 {
			t.Errorf("%s: balance %v, %v; want 5000", dial.name, r.Balance, err)
		}
		c.Close()
	}

	down2 := downAddr(t)
	_, err := client.DialServers(ctx(t), []string{down, down2}, client.Options{})
	if err == nil {
		t.Fatal("dialing two addresses where nothing listens succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), down) || !strings.Contains(err.Error(), down2) {
		t.Errorf("error %q: want connection refused, naming %s and %s", err, down, down2)
	}
	if _, err := client.DialServers(ctx(t), nil, client.Options{}); err == nil {
		t.Error("DialServers without an address succeeded")
	}
}

// replyStaller is a TCP proxy in front of a server that holds back the
// first reply to a money request, and everything after it, and reports
// its request id on stalled: the server applied the request, the client
// waits. When the server closes the connection, so does the proxy.
type replyStaller struct {
	l       net.Listener
	target  string
	stalled chan string
	wg      sync.WaitGroup
}

func newReplyStaller(t *testing.T, target string) *replyStaller {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyStaller{l: l, target: target, stalled: make(chan string, 16)}
	p.wg.Add(1)
	go p.run()
	t.Cleanup(func() {
		l.Close()
		p.wg.Wait()
	})
	return p
}

func (p *replyStaller) addr() string { return p.l.Addr().String() }

func (p *replyStaller) run() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(s, c)
			s.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			defer s.Close()
			br := bufio.NewReader(s)
			holding := false
			for {
				line, err := br.ReadBytes('\n')
				if err != nil {
					return
				}
				if holding {
					continue
				}
				var m struct{ Type, ID, Op string }
				_ = json.Unmarshal(line, &m)
				if m.Type == "reply" && (m.Op == "deposit" || m.Op == "withdraw" || m.Op == "transfer") {
					holding = true
					p.stalled <- m.ID
					continue
				}
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}()
	}
}

// nextStatus returns the client's next connection status.
func nextStatus(t *testing.T, c *client.Client) client.ConnStatus {
	t.Helper()
	select {
	case s, ok := <-c.Status():
		if !ok {
			t.Fatal("the status channel closed")
		}
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("no connection status in 20s")
	}
	return client.ConnStatus{}
}

// TestFailoverResendsPendingDepositToAnotherServer: server A applies a
// deposit but its reply never reaches the ATM; A stops and server B starts
// on the same bank file at another address. The client, which knows both
// addresses, fails over to B, logs in again and resends the deposit with
// its id: B answers with the first outcome, and the money is there once.
func TestFailoverResendsPendingDepositToAnotherServer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	a := startServer(t, path, boltstore.Options{Options: bank.Options{ProcessID: "bank-a"}}, nil)
	aUp := true
	defer func() {
		if aUp {
			a.stop(t)
		}
	}()
	openAccounts(t, a.addr, []string{"900"}, 10_000)
	proxy := newReplyStaller(t, a.addr)
	lb, err := net.Listen("tcp", "127.0.0.1:0") // B's address, served once A is gone
	if err != nil {
		t.Fatal(err)
	}
	bAddr := lb.Addr().String()

	c, err := client.DialServers(ctx(t), []string{proxy.addr(), bAddr}, client.Options{ProcessID: "atm-failover", Reconnect: true})
	if err != nil {
		lb.Close()
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if h := c.Hello(); h.Server != "bank-a" || h.Addr != proxy.addr() {
		t.Errorf("connected to %s at %s, want bank-a at %s", h.Server, h.Addr, proxy.addr())
	}
	if _, err := c.Login(ctx(t), "900", "1234"); err != nil {
		t.Fatalf("login: %v", err)
	}

	type result struct {
		rep client.Reply
		err error
	}
	const amount = money.Cents(2_500)
	done := make(chan result, 1)
	go func() {
		r, err := c.Deposit(context.Background(), amount)
		done <- result{r, err}
	}()
	var id string
	select {
	case id = <-proxy.stalled:
	case <-time.After(20 * time.Second):
		t.Fatal("the deposit's reply never came from server A")
	}
	if n := len(moneyEvents(t, a.bank)[id]); n != 1 {
		t.Fatalf("server A holds %d events of deposit %s, want 1", n, id)
	}
	aUp = false
	a.stop(t)
	b := startServerOn(t, lb, path, boltstore.Options{Options: bank.Options{ProcessID: "bank-b"}}, nil)
	defer b.stop(t)

	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the deposit got no answer after the failover")
	}
	if r.err != nil {
		t.Fatalf("deposit: %v", r.err)
	}
	if r.rep.ID != id || !r.rep.Duplicate || r.rep.Balance != 10_000+amount {
		t.Errorf("deposit answered id %s duplicate %v balance %v; want %s, the first outcome (duplicate), %v",
			r.rep.ID, r.rep.Duplicate, r.rep.Balance, id, 10_000+amount)
	}
	if h := c.Hello(); h.Server != "bank-b" || h.Addr != bAddr || c.Addr() != bAddr {
		t.Errorf("after the failover: on %s at %s, Addr() %s; want bank-b at %s", h.Server, h.Addr, c.Addr(), bAddr)
	}
	var lost, back client.ConnStatus
	for back.State != client.StateReconnected {
		s := nextStatus(t, c)
		switch s.State {
		case client.StateLost:
			lost = s
		case client.StateReconnected:
			back = s
		case client.StateClosed:
			t.Fatalf("client closed: %v", s.Err)
		}
	}
	if lost.Addr != proxy.addr() || back.Addr != bAddr || back.Err != nil {
		t.Errorf("lost %s, reconnected to %s (%v); want lost %s, reconnected to %s", lost.Addr, back.Addr, back.Err, proxy.addr(), bAddr)
	}

	// Another ATM, on B, sees the deposit once; so do B's log and checks.
	other, err := client.Dial(ctx(t), bAddr, client.Options{ProcessID: "atm-other"})
	if err != nil {
		t.Fatalf("dial B: %v", err)
	}
	defer other.Close()
	if _, err := other.Login(ctx(t), "900", "1234"); err != nil {
		t.Fatalf("login on B: %v", err)
	}
	if got, err := other.Balance(ctx(t)); err != nil || got.Balance != 10_000+amount {
		t.Errorf("balance on B %v, %v; want %v", got.Balance, err, 10_000+amount)
	}
	if n := len(moneyEvents(t, b.bank)[id]); n != 1 {
		t.Errorf("the log holds %d events of deposit %s, want 1", n, id)
	}
	if _, err := b.bank.Verify(context.Background()); err != nil {
		t.Errorf("verify: %v", err)
	}
}
