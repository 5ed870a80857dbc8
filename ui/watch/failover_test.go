package watch

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/netproto/client"
	"atm/netproto/server"

	tea "charm.land/bubbletea/v2"
	"golang.org/x/crypto/bcrypt"
)

const failoverToken = "watch-token"

// serveOn serves the bank file at path on l until the returned stop.
func serveOn(t *testing.T, l net.Listener, path, proc string) (stop func()) {
	t.Helper()
	srv := &server.Server{OperatorToken: failoverToken}
	b, err := boltstore.Open(path, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost, ProcessID: proc, OnEvent: srv.LogEvent}})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	srv.Ledger = b
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	return func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown %s: %v", proc, err)
		}
		if err := <-done; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve %s: %v", proc, err)
		}
		if _, err := b.Verify(context.Background()); err != nil {
			t.Errorf("verify: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("close %s: %v", proc, err)
		}
	}
}

// atm watch --server a,b: the watcher reads the log from server A; A stops
// and B starts on the same bank file at the second address. The client
// fails over, the watcher reads on from where it was and its title names B.
func TestWatchFailsOverToAnotherServer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	la, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrA, addrB := la.Addr().String(), lb.Addr().String()
	stopA := serveOn(t, la, path, "bank-a")
	c, err := client.Dial(context.Background(), addrA+","+addrB, client.Options{ProcessID: "atm-watch", Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	m := New(Config{Source: c, Token: failoverToken, Addr: addrA + "," + addrB})
	send(m, tea.WindowSizeMsg{Width: 120, Height: 40})
	// Each read goes as the program's would once a wait is over: the
	// timer's readMsg, then the read it starts.
	read := func() {
		t.Helper()
		_, cmd := m.Update(readMsg{after: m.after})
		msg, ok := cmd().(EntriesMsg)
		if !ok || msg.Err != nil {
			t.Fatalf("read the log: %v", msg.Err)
		}
		m.Update(msg)
	}
	read()
	before := m.d.Len()
	mustContain(t, screen(t, m), "bank "+addrA)

	stopA()
	stopB := serveOn(t, lb, path, "bank-b")
	defer stopB()
	for {
		var s client.ConnStatus
		select {
		case s = <-c.Status():
		case <-time.After(20 * time.Second):
			t.Fatal("the client did not reconnect in 20s")
		}
		if s.State == client.StateClosed {
			t.Fatalf("the client closed: %v", s.Err)
		}
		if s.State == client.StateReconnected {
			break
		}
	}
	read()
	out := screen(t, m)
	mustContain(t, out, "bank "+addrB)
	mustNotContain(t, out, "bank "+addrA)
	if m.d.Len() <= before {
		t.Errorf("%d events after the failover, %d before: B's start is not there", m.d.Len(), before)
	}
}
