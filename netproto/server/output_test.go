package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/money"
)

// TestPrintedLogCannotBeForged sends, without logging in, requests whose
// fields carry a line of the server's output after a newline, and others
// after control characters, into a server printing its text log: every
// record stays on one line, no line of the output is the forged one, and no
// raw control character reaches the terminal.
func TestPrintedLogCannotBeForged(t *testing.T) {
	t.Parallel()
	out := &syncBuffer{}
	e := newEnv(t, func(s *server.Server) { s.Logger = slog.New(server.NewLineHandler(out, nil)) })
	const forged = "L=999999 apply deposit 8801 +R$ 1.000.000,00 ok"
	w, _ := e.wire()
	for _, line := range []string{
		`{"type":"balance","id":"f1","proc":"p\n` + forged + `","ts":1}`,
		`{"type":"balance","id":"f2\n` + forged + `","proc":"p","ts":1}`,
		`{"type":"login","id":"f3","proc":"p","ts":1,"account":"123\n` + forged + `","pin":"1"}`,
		`{"type":"balance\n` + forged + `","id":"f4","proc":"p","ts":1}`,
		`{"type":"lookup","id":"f5","proc":"p","ts":1,"account":"1\u001b[2J\r` + forged + `"}`,
		`{"type":"open_account","id":"f6","proc":"p","ts":1,"token":"` + opToken + `","account":"777","name":"Eve\n` + forged + `","pin":"1234"}`,
		`{"type":"open_account","id":"f7","proc":"p","ts":1,"token":"` + opToken + `","account":"778\u2028` + forged + `","name":"Eve","pin":"1234"}`,
	} {
		w.write(line)
		if m := w.read(); m["type"] != "error" {
			t.Fatalf("%s: got %v", line, m)
		}
	}
	e.shutdown()
	sc := bufio.NewScanner(strings.NewReader(string(out.Bytes())))
	lines := 0
	for sc.Scan() {
		l := sc.Text()
		lines++
		if strings.HasPrefix(l, "L=999999") || l == forged {
			t.Fatalf("forged line in the output: %q", l)
		}
		if !strings.HasPrefix(l, "L=") {
			t.Errorf("a line that is not a record: %q", l)
		}
		if strings.ContainsAny(l, "\r\x1b\u2028") {
			t.Errorf("a raw control character reached the output: %q", l)
		}
	}
	if lines == 0 {
		t.Fatal("no output")
	}
}

// blockedWriter blocks every Write until released.
type blockedWriter struct {
	release chan struct{}
	w       io.Writer
}

func (b *blockedWriter) Write(p []byte) (int, error) {
	<-b.release
	return b.w.Write(p)
}

// TestStalledOutputDoesNotStallTheBank prints the server's log through an
// AsyncHandler to an output that never takes a byte (a terminal paused with
// Ctrl+S, a pipe nobody reads): operations keep being answered, what could
// not be printed is counted, and once the output moves again a warning says
// how many lines were dropped.
func TestStalledOutputDoesNotStallTheBank(t *testing.T) {
	t.Parallel()
	out := &syncBuffer{}
	bw := &blockedWriter{release: make(chan struct{}), w: out}
	async := server.NewAsyncHandler(server.NewLineHandler(bw, nil), 64)
	e := newEnv(t, func(s *server.Server) { s.Logger = slog.New(async) })
	c := e.login("123", client.Options{})
	const ops = 300
	for i := range ops {
		if _, err := c.Deposit(ctx(t), 1); err != nil {
			t.Fatalf("deposit %d with the output stalled: %v", i, err)
		}
	}
	if async.Dropped() == 0 {
		t.Fatal("nothing dropped with the output stalled")
	}
	close(bw.release)
	e.shutdown()
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := async.Close(cctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	text := string(out.Bytes())
	if !strings.Contains(text, "log lines dropped") {
		t.Fatalf("no report of the dropped lines in:\n%s", text)
	}
	if got := e.balance("123"); got != 100_000+ops {
		t.Fatalf("balance %d, want %d", got, 100_000+ops)
	}
	figures(t, "operations=%d queue=64 dropped=%d", ops, async.Dropped())
}

// TestShutdownHonoursItsContext stalls the ledger (its event hook blocks, as
// a stuck disk would) with a request in hand: Shutdown returns when its
// context ends, with the context's error, instead of waiting for the ledger.
func TestShutdownHonoursItsContext(t *testing.T) {
	t.Parallel()
	var armed atomic.Bool
	release := make(chan struct{})
	stalled := make(chan struct{})
	var once sync.Once
	hook := func(bank.Event) {
		if armed.Load() {
			once.Do(func() { close(stalled) })
			<-release
		}
	}
	s := startServer(t, filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{OnEvent: hook}}, nil)
	c, err := client.Dial(context.Background(), s.addr, client.Options{RequestTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx(t), "123", "1234"); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	go func() { _, _ = c.Deposit(context.Background(), 100) }()
	<-stalled
	sctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.srv.Shutdown(sctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown returned %v, want the context's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return after its context ended")
	}
	// Let the ledger go on, and close it: the deposit is on disk, once.
	armed.Store(false)
	close(release)
	if err := <-s.done; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if err := s.bank.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPushQueueIsBounded stops reading on B's connection until the server
// can no longer write to it, then sends B a hundred transfers: only the
// newest MaxPushQueue pushes wait for B, the older ones are dropped and the
// drop is logged, and once B reads again it gets those pushes, in order.
//
// It does not run in parallel with the other tests: it takes a second in
// which the server reads nothing from B as the sign that the server's
// writes to B are blocked, and on a machine busy with other tests a
// server that is merely slow can pass for blocked.
func TestPushQueueIsBounded(t *testing.T) {
	const queue, transfers = 10, 100
	e := newEnv(t, func(s *server.Server) { s.MaxPushQueue = queue; s.WriteTimeout = time.Minute })
	b, _ := e.wire()
	b.write(`{"type":"login","id":"b0","proc":"atm-b","ts":1,"account":"456","pin":"1234"}`)
	if m := b.read(); m["type"] != "reply" {
		t.Fatalf("login: %v", m)
	}
	// Pipeline requests the server answers at once by itself, without
	// reading the answers, until the server stops taking them altogether
	// (a whole second without a byte taken): its writes to B are then
	// blocked, and stay so until B reads.
	line := `{"type":"teleport","id":"q","proc":"atm-b","ts":2}` + "\n"
	chunk := []byte(strings.Repeat(line, 1000))
	sent := 0
	for off := 0; ; {
		_ = b.c.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := b.c.Write(chunk[off:])
		sent += n
		off = (off + n) % len(chunk)
		if err != nil {
			var ne interface{ Timeout() bool }
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("write: %v", err)
			}
			if n == 0 {
				break
			}
		}
		if sent > 1<<30 {
			t.Fatal("the server never stopped reading")
		}
	}
	a := e.login("123", client.Options{})
	for i := range transfers {
		if _, err := a.Transfer(ctx(t), "456", money.Cents(i+1)); err != nil {
			t.Fatalf("transfer %d: %v", i, err)
		}
	}
	// B reads everything: the answers, with the pushes that were kept.
	_ = b.c.SetWriteDeadline(time.Time{})
	go func() {
		if rest := sent % len(line); rest != 0 { // finish the cut line
			_, _ = b.c.Write([]byte(line[rest:]))
		}
		_, _ = b.c.Write([]byte(`{"type":"balance","id":"end","proc":"atm-b","ts":3}` + "\n" +
			`{"type":"balance","id":"end2","proc":"atm-b","ts":4}` + "\n"))
	}()
	var amounts []uint64
	for {
		m := b.read()
		if m["type"] == "push" {
			amounts = append(amounts, num(t, m, "amount"))
		}
		if m["id"] == "end2" {
			break
		}
	}
	// The queue holds the newest; one push may have been on its way out
	// (recorded, its write blocked) when the queue filled.
	if len(amounts) != queue && len(amounts) != queue+1 {
		t.Fatalf("B got %d pushes, want the %d kept (and at most one on its way)", len(amounts), queue)
	}
	kept := amounts[len(amounts)-queue:]
	for i, a := range kept {
		if want := uint64(transfers - queue + 1 + i); a != want {
			t.Fatalf("push %d was of %d cents, want %d: %v", i, a, want, amounts)
		}
	}
	if want := fmt.Sprintf("dropped the %d oldest pushes", transfers-len(amounts)); !strings.Contains(string(e.log.Bytes()), want) {
		t.Fatalf("the drop is not logged (%q)", want)
	}
	figures(t, "bytes_unread_by_B=%d transfers=%d kept=%d", sent, transfers, len(amounts))
}
