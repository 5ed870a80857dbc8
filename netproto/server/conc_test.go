package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/polltest"
	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/money"
)

func TestTransferPushesToLoggedInReceiver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.login("123", client.Options{ProcessID: "atm-alice"})
	bruno := e.login("456", client.Options{ProcessID: "atm-bruno"})
	bruno2 := e.login("456", client.Options{ProcessID: "atm-bruno2"})
	r, err := alice.Transfer(ctx(t), "456", 2_500)
	if err != nil {
		t.Fatalf("transfer: %v", err)
	}
	for _, c := range []*client.Client{bruno, bruno2} {
		select {
		case p := <-c.Pushes():
			if p.Account != "456" || p.From != "123" || p.FromHolder != "Ana Souza" || p.Amount != 2_500 || p.Balance != 102_500 {
				t.Fatalf("push = %+v", p)
			}
			if p.ApplyTS != r.ServerApply || p.TS <= p.ApplyTS || p.RecvTS <= p.TS {
				t.Fatalf("push timestamps: apply %d (transfer %d) push %d recv %d", p.ApplyTS, r.ServerApply, p.TS, p.RecvTS)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s got no push", c.ProcessID())
		}
	}
	// The sender gets none, and a logged-out receiver gets none.
	if _, err := bruno2.Logout(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Transfer(ctx(t), "456", 100); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-bruno.Pushes():
		if p.Amount != 100 {
			t.Fatalf("second push = %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no second push")
	}
	// A round trip on each connection orders any stray push before it.
	for _, c := range []*client.Client{alice, bruno2} {
		if _, err := c.Lookup(ctx(t), "123"); err != nil && !errors.Is(err, wire.ErrNotLoggedIn) {
			t.Fatal(err)
		}
		select {
		case p := <-c.Pushes():
			t.Fatalf("%s got an unexpected push %+v", c.ProcessID(), p)
		default:
		}
	}
}

func TestManyClientsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accounts := []string{"123", "456", "789"}
	const clients, ops = 12, 25
	var wg sync.WaitGroup
	var pushes, ownPushes atomic.Int64 // money arrived; changes by another session on the account
	errs := make(chan error, clients)
	var cs []*client.Client
	for i := 0; i < clients; i++ { // every session exists before money moves
		cs = append(cs, e.login(accounts[i%3], client.Options{ProcessID: fmt.Sprintf("atm-%02d", i)}))
	}
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < ops; j++ {
				var err error
				switch j % 3 {
				case 0:
					_, err = c.Deposit(context.Background(), 100)
				case 1:
					_, err = c.Withdraw(context.Background(), 50)
				case 2:
					_, err = c.Transfer(context.Background(), accounts[(i+1)%3], 25)
				}
				if err != nil {
					errs <- fmt.Errorf("client %d op %d: %w", i, j, err)
					return
				}
			}
		}()
		go func() {
			for p := range c.Pushes() {
				if p.Kind == wire.PushTransferIn {
					pushes.Add(1)
				} else {
					ownPushes.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	a, err := e.bank.Audit(context.Background())
	if err != nil || !a.Conserved() {
		t.Fatalf("audit %+v, %v", a, err)
	}
	perClient := money.Cents(100*9 - 50*8) // 9 deposits, 8 withdrawals each (transfers cancel out)
	if want := 300_000 + clients*perClient; a.Total != want {
		t.Fatalf("total %v, want %v", a.Total, want)
	}
	// Each transfer reaches the 4 sessions of its recipient account.
	polltest.Until(t, "every push", 10*time.Second, func() bool { return pushes.Load() == clients*8*4 })
	// And each operation reaches the 3 other sessions of its own account.
	polltest.Until(t, "every push of another session's change", 10*time.Second, func() bool { return ownPushes.Load() == clients*ops*3 })
}

func TestLostReplyRetriedWithSameIDAppliesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy := newReplyDropper(t, []string{e.addr}, []string{"bank"})
	var clocks clockLog
	c, err := client.Dial(ctx(t), proxy.addrs[0], client.Options{
		ProcessID: "atm-retry", Reconnect: true, OnEvent: clocks.add})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx(t), "123", "1234"); err != nil {
		t.Fatal(err)
	}
	r, err := c.Deposit(ctx(t), 7_00)
	if err != nil {
		t.Fatalf("deposit across a lost reply: %v", err)
	}
	if proxy.lost() != 1 || proxy.conns.Load() < 2 {
		t.Fatalf("the reply was not lost (lost %d, connections %d)", proxy.lost(), proxy.conns.Load())
	}
	if !r.Duplicate || r.Balance != 100_700 {
		t.Fatalf("retried deposit reply = %+v; want the first outcome, marked duplicate", r)
	}
	if got := e.balance("123"); got != 100_700 {
		t.Fatalf("balance %v: the deposit applied %s", got, map[bool]string{true: "twice", false: "never"}[got > 100_700])
	}
	// The session was restored: operations keep working.
	if b, err := c.Balance(ctx(t)); err != nil || b.Balance != 100_700 {
		t.Fatalf("balance after reconnect = %+v, %v", b, err)
	}
	var states []client.ConnState
	for len(states) == 0 || states[len(states)-1] != client.StateReconnected {
		select {
		case s := <-c.Status():
			states = append(states, s.State)
		case <-time.After(10 * time.Second):
			t.Fatalf("statuses so far %v, no reconnected", states)
		}
	}
	if states[0] != client.StateLost {
		t.Fatalf("statuses %v should start with lost", states)
	}
	// The same request id was sent twice, with two different timestamps.
	sends := map[string]int{}
	for _, ev := range clocks.all() {
		if ev.Dir == "send" && ev.Type == "deposit" {
			sends[ev.ReqID]++
		}
	}
	if len(sends) != 1 {
		t.Fatalf("deposit sends by id: %v", sends)
	}
	for _, n := range sends {
		if n != 2 {
			t.Fatalf("deposit sent %d times, want 2", n)
		}
	}
	e.shutdown()
	checkClocks(t, e, map[string][]client.ClockEvent{"atm-retry": clocks.all()})
}

func TestRawRetrySameIDAppliesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := 0; i < 2; i++ {
		r, _ := e.raw()
		r.req(map[string]any{"type": "login", "id": "l", "account": "456", "pin": "1234"})
		m := r.req(map[string]any{"type": "withdraw", "id": "raw-w-1", "amount": 300})
		if m["type"] != "reply" || m["balance"] != float64(99_700) || (m["duplicate"] == true) != (i == 1) {
			t.Fatalf("attempt %d: %v", i, m)
		}
		r.c.Close()
	}
	if got := e.balance("456"); got != 99_700 {
		t.Fatalf("balance %v", got)
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.login("789", client.Options{Reconnect: true})
	// Stop serving on this listener and start again on the same address.
	e.shutdown()
	polltest.Until(t, "the lost status", 10*time.Second, func() bool {
		select {
		case s := <-c.Status():
			return s.State == client.StateLost && errors.Is(s.Err, wire.ErrShuttingDown)
		default:
			return false
		}
	})
	srv2 := &server.Server{Ledger: e.bank}
	var l net.Listener
	polltest.Until(t, "listening again", 10*time.Second, func() bool {
		var err error
		l, err = net.Listen("tcp", e.addr)
		return err == nil
	})
	go srv2.Serve(l)
	defer srv2.Shutdown(context.Background())
	r, err := c.Deposit(ctx(t), 1_00)
	if err != nil || r.Balance != 100_100 {
		t.Fatalf("deposit after the restart = %+v, %v", r, err)
	}
}

func TestGracefulShutdownTellsClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.login("123", client.Options{})
	r, _ := e.raw()
	e.shutdown()
	if m := r.read(); m["type"] != "bye" || m["code"] != wire.CodeShuttingDown {
		t.Fatalf("raw client got %v, want bye", m)
	}
	var last client.ConnStatus
	for s := range c.Status() {
		last = s
	}
	if last.State != client.StateClosed || !errors.Is(last.Err, client.ErrConnectionLost) {
		t.Fatalf("last status %+v", last)
	}
	if _, err := c.Balance(ctx(t)); !errors.Is(err, client.ErrClientClosed) {
		t.Fatalf("call after the server left: %v", err)
	}
	var kinds []bank.Kind
	_ = e.bank.Events(context.Background(), func(ev bank.Event) error { kinds = append(kinds, ev.Kind); return nil })
	if kinds[len(kinds)-1] != bank.KindServerStop {
		t.Fatalf("last events %v, want server_stop last", kinds[len(kinds)-3:])
	}
}
