package watch

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"atm/netproto/client"

	tea "charm.land/bubbletea/v2"
)

// The watcher does not poll: after a page it waits for the bank's next
// one. A deposit made while that command waits comes back from it, with
// the deposit in it, and the screen draws it.
func TestWatchWaitsForTheNextPage(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := serveOn(t, l, filepath.Join(t.TempDir(), "bank.db"), "bank")
	defer stop()
	op, err := client.Dial(context.Background(), l.Addr().String(), client.Options{ProcessID: "atm-watch"})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	atm, err := client.Dial(context.Background(), l.Addr().String(), client.Options{ProcessID: "atm-7f3a"})
	if err != nil {
		t.Fatal(err)
	}
	defer atm.Close()
	if _, err := atm.Login(context.Background(), "123", "1234"); err != nil {
		t.Fatal(err)
	}

	m := New(Config{Source: op, Token: failoverToken, Addr: l.Addr().String()})
	send(m, tea.WindowSizeMsg{Width: 120, Height: 40})
	next := startFollowing(t, m)
	got := make(chan tea.Msg, 1)
	go func() { got <- next() }()
	select {
	case msg := <-got:
		t.Fatalf("the command answered %#v while nothing was committed", msg)
	default:
	}
	rep, err := atm.Deposit(context.Background(), 5000)
	if err != nil {
		t.Fatal(err)
	}
	msg, ok := (<-got).(EntriesMsg)
	if !ok || msg.Err != nil {
		t.Fatalf("the command's answer: %#v", msg)
	}
	found := false
	for _, e := range msg.Entries {
		found = found || e.ReqID == rep.ID && e.TS == rep.ServerApply
	}
	if !found {
		t.Fatalf("the page after the deposit at L=%d does not hold it: %+v", rep.ServerApply, msg.Entries)
	}
	_, cmd := m.Update(msg)
	if cmd == nil {
		t.Fatal("no command waits for the page after")
	}
	mustContain(t, screen(t, m), fmt.Sprintf("■%d apply deposit", rep.ServerApply))
}
