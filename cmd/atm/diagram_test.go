package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"atm/netproto/client"
	"atm/netproto/wire"
	"atm/ui/spacetime"
	"atm/ui/watch"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// TestTransferAndPushInTheDiagram runs atm serve and two ATMs (the client
// library, which reports its receives): A transfers to B, then each asks
// its balance. The log read over the protocol holds every send and receive
// of the three processes for the transfer and its push, and atm log draws
// them as text, SVG and a ShiViz log.
func TestTransferAndPushInTheDiagram(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	db := filepath.Join(t.TempDir(), "bank.db")
	srv := startServe(t, bin, db, "127.0.0.1:0", 0)
	ctx := context.Background()
	dial := func(proc, account string) *client.Client {
		c, err := client.Dial(ctx, srv.addr, client.Options{ProcessID: proc})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Login(ctx, account, "1234"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := dial("atm-a", "123"), dial("atm-b", "456")
	tr, err := a.Transfer(ctx, "456", 2500)
	if err != nil {
		t.Fatal(err)
	}
	var push client.Push
	select {
	case push = <-b.Pushes():
	case <-ctx.Done():
	}
	if push.TS == 0 {
		t.Fatal("no push")
	}
	for _, c := range []*client.Client{a, b} { // they report their receives
		if _, err := c.Balance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	op, err := client.Dial(ctx, srv.addr, client.Options{ProcessID: "op"})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	var entries []wire.Entry
	for after := wire.Cursor(""); ; {
		page, err := op.Log(ctx, crashToken, after, wire.MaxLogLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			break
		}
		entries, after = append(entries, page.Events...), page.Next
	}
	trace := spacetime.Build(entries)
	proc := map[string]int{}
	for i, p := range trace.Procs {
		proc[p.ID] = i
	}
	for _, id := range []string{"bank", "atm-a", "atm-b"} {
		if _, ok := proc[id]; !ok {
			t.Fatalf("no lifeline for %s among %+v", id, trace.Procs)
		}
	}
	// event finds the event of process id at Lamport time l.
	event := func(id string, l uint64) int {
		for _, e := range trace.Events {
			if e.Proc == proc[id] && e.L == l {
				return e.ID
			}
		}
		t.Fatalf("no event of %s at L=%d", id, l)
		return -1
	}
	checkMsg := func(what string, from string, sl uint64, to string, rl uint64) {
		t.Helper()
		s, r := event(from, sl), event(to, rl)
		m := trace.Events[s].Msg
		if m < 0 || trace.Messages[m].Recv != r {
			t.Fatalf("%s: the send at %s L=%d is not the message received at %s L=%d", what, from, sl, to, rl)
		}
		if !trace.HappenedBefore(s, r) {
			t.Fatalf("%s: send does not happen before its receive", what)
		}
	}
	checkMsg("transfer request", "atm-a", tr.SentTS, "bank", tr.ServerRecv)
	checkMsg("transfer reply", "bank", tr.TS, "atm-a", tr.RecvTS)
	checkMsg("push", "bank", push.TS, "atm-b", push.RecvTS)
	if !trace.HappenedBefore(event("atm-a", tr.SentTS), event("atm-b", push.RecvTS)) {
		t.Fatal("A's transfer does not happen before B's receipt of the push")
	}

	// The watcher follows the same log through its own loop and draws the
	// transfer, its reply and its push reaching both ATMs' lanes: its
	// first page holds the whole log so far.
	w := watch.New(watch.Config{Source: op, Token: crashToken, Addr: srv.addr})
	w.Update(tea.WindowSizeMsg{Width: 120, Height: 60})
	var msgs []tea.Msg
	if batch, ok := w.Init()().(tea.BatchMsg); ok {
		for _, c := range batch {
			if c != nil {
				msgs = append(msgs, c())
			}
		}
	}
	for len(msgs) > 0 {
		msg := msgs[0]
		msgs = msgs[1:]
		if em, ok := msg.(watch.EntriesMsg); ok {
			if em.Err != nil {
				t.Fatalf("the watcher's subscription: %v", em.Err)
			}
			w.Update(em)
			break
		}
		if _, next := w.Update(msg); next != nil {
			msgs = append(msgs, next())
		}
	}
	screen := ansi.Strip(w.View().Content)
	for _, want := range []string{"atm-a · 123", "atm-b · 456",
		fmt.Sprintf("●%d transfer", tr.SentTS), fmt.Sprintf("◆%d◀", tr.ServerRecv),
		fmt.Sprintf("◆%d recv reply", tr.RecvTS), fmt.Sprintf("●%d ──▷%d push", push.TS, push.RecvTS),
		fmt.Sprintf("◆%d recv push", push.RecvTS)} {
		if !strings.Contains(screen, want) {
			t.Fatalf("the watcher lacks %q:\n%s", want, screen)
		}
	}

	code, out, errOut := runATM(t, bin, "log", "--server", srv.addr, "--operator-token", crashToken, "--diagram", "--width", "100")
	if code != 0 || !strings.Contains(out, "atm-a") || !strings.Contains(out, "atm-b") || !strings.Contains(out, "bank") {
		t.Fatalf("atm log --diagram: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runATM(t, bin, "log", "--server", srv.addr, "--operator-token", crashToken, "--svg")
	if code != 0 {
		t.Fatalf("atm log --svg: exit %d", code)
	}
	dec := xml.NewDecoder(strings.NewReader(out))
	for {
		if _, err := dec.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the SVG is not well-formed XML: %v", err)
			}
			break
		}
	}
	code, out, _ = runATM(t, bin, "log", "--server", srv.addr, "--operator-token", crashToken, "--shiviz", "--proc", "atm-b")
	pairs := regexp.MustCompile(`(?m)^(.*)\n(\S*) (\{.*\})$`).FindAllStringSubmatch(out, -1)
	if code != 0 || len(pairs) == 0 || !bytes.Contains([]byte(out), []byte("atm-b {")) {
		t.Fatalf("atm log --shiviz: exit %d\n%s", code, out)
	}
}
