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

// atm watch --server a,b: the watcher follows the log on server A; A stops
// and B starts on the same bank file at the second address. The client
// fails over and follows on from where it was, and the title names B.
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
	next := startFollowing(t, m)
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
	// The client follows on B from where it was: the next page holds B's
	// start.
	msg, ok := next().(EntriesMsg)
	if !ok || msg.Err != nil {
		t.Fatalf("the page after the failover: %v", msg.Err)
	}
	m.Update(msg)
	out := screen(t, m)
	mustContain(t, out, "bank "+addrB)
	mustNotContain(t, out, "bank "+addrA)
	if m.d.Len() <= before {
		t.Errorf("%d events after the failover, %d before: B's start is not there", m.d.Len(), before)
	}
}

// startFollowing runs the model's first commands as the program would:
// the subscription, then its first page. It returns the command that
// waits for the next page.
func startFollowing(t *testing.T, m *Model) tea.Cmd {
	t.Helper()
	var cmd tea.Cmd
	for _, c := range m.Init()().(tea.BatchMsg) {
		if msg, ok := c().(followingMsg); ok {
			_, cmd = m.Update(msg)
		}
	}
	if cmd == nil {
		t.Fatal("the watcher did not follow the log")
	}
	msg, ok := cmd().(EntriesMsg)
	if !ok || msg.Err != nil || len(msg.Entries) == 0 {
		t.Fatalf("the first page: %v", msg)
	}
	_, next := m.Update(msg)
	if next == nil {
		t.Fatal("no command waits for the next page")
	}
	return next
}
