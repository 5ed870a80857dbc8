package netproto_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"atm/bank"
	"atm/netproto"
)

// TestPrintedLogCannotBeForged sends, without logging in, requests whose
// fields carry a line of the server's output after a newline, and others
// after control characters, into a server printing its text log: every
// record stays on one line, no line of the output is the forged one, and no
// raw control character reaches the terminal.
func TestPrintedLogCannotBeForged(t *testing.T) {
	out := &syncBuffer{}
	e := newEnv(t, func(s *netproto.Server) { s.Logger = slog.New(netproto.NewLineHandler(out, nil)) })
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
	out := &syncBuffer{}
	bw := &blockedWriter{release: make(chan struct{}), w: out}
	async := netproto.NewAsyncHandler(netproto.NewLineHandler(bw, nil), 64)
	e := newEnv(t, func(s *netproto.Server) { s.Logger = slog.New(async) })
	c := e.login("123", netproto.ClientOptions{})
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
	s := startServer(t, filepath.Join(t.TempDir(), "bank.db"), bank.Options{OnEvent: hook}, nil)
	c, err := netproto.Dial(context.Background(), s.addr, netproto.ClientOptions{RequestTimeout: -1})
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
	if err := <-s.done; !errors.Is(err, netproto.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if err := s.bank.Close(); err != nil {
		t.Fatal(err)
	}
}
