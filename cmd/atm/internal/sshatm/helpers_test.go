package sshatm_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"image/color"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/bank/boltstore"
	"atm/cmd/atm/internal/sshatm"
	"atm/netproto/polltest"
	"atm/netproto/server"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"

	"atm/bank"
)

// logBuffer collects log lines for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitLog waits until the log holds every one of wants.
func waitLog(t *testing.T, l *logBuffer, wants ...string) string {
	t.Helper()
	var s string
	if !polltest.Within(15*time.Second, func() bool { s = l.String(); return containsAll(s, wants) }) {
		t.Fatalf("the log never showed %q:\n%s", wants, s)
	}
	return s
}

func containsAll(s string, wants []string) bool {
	for _, w := range wants {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// testBank is a real bank server on 127.0.0.1:0 over a bbolt file, with
// the default accounts 123, 456 and 789 (PIN 1234, R$ 1.000,00 each).
type testBank struct {
	addr string
	bank *boltstore.Bank
	log  *logBuffer // the server's log
}

// startBank starts a bank; delay, when positive, holds every message the
// server sends for that long (the teaching mode of atm serve).
func startBank(t *testing.T, delay time.Duration) *testBank {
	t.Helper()
	logs := &logBuffer{}
	srv := &server.Server{Logger: slog.New(server.NewLineHandler(logs, nil)), MinDelay: delay, MaxDelay: delay}
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost, OnEvent: srv.LogEvent}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Ledger = b
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("bank shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("bank Serve: %v", err)
		}
		if _, err := b.Verify(context.Background()); err != nil {
			t.Errorf("ledger: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("close the bank: %v", err)
		}
	})
	return &testBank{addr: l.Addr().String(), bank: b, log: logs}
}

// deposits counts the deposits applied for process proc.
func (tb *testBank) deposits(t *testing.T, proc string) int {
	t.Helper()
	n := 0
	err := tb.bank.Events(context.Background(), func(e bank.Event) error {
		if e.Kind == bank.KindDeposit && e.Client == proc && e.Outcome == "ok" {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sshFront is a real SSH front end on 127.0.0.1:0.
type sshFront struct {
	addr    string
	srv     *sshatm.Server
	hostKey gossh.PublicKey
	log     *logBuffer
	served  chan error
}

// startSSH serves cfg (BankAddr and HostKey filled in when empty) on
// 127.0.0.1:0 until the test ends; configure, if any, is applied to the
// server before it serves.
func startSSH(t *testing.T, tb *testBank, cfg sshatm.Config, configure ...func(*sshatm.Server)) *sshFront {
	t.Helper()
	if cfg.BankAddr == "" {
		cfg.BankAddr = tb.addr
	}
	if cfg.HostKey == nil {
		key, _, err := sshatm.HostKey(filepath.Join(t.TempDir(), sshatm.HostKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		cfg.HostKey = key
	}
	logs := &logBuffer{}
	cfg.Logger = slog.New(server.NewLineHandler(logs, nil))
	srv, err := sshatm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range configure {
		f(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &sshFront{addr: l.Addr().String(), srv: srv, hostKey: cfg.HostKey.PublicKey(), log: logs, served: make(chan error, 1)}
	go func() { f.served <- srv.Serve(l) }()
	t.Cleanup(func() { f.shutdown(t) })
	return f
}

// shutdown shuts the front end down (once) and checks Serve's return.
func (f *sshFront) shutdown(t *testing.T) {
	t.Helper()
	if f.served == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Errorf("ssh shutdown: %v", err)
	}
	if err := <-f.served; err == nil {
		t.Error("Serve returned nil")
	}
	f.served = nil
}

// newKey makes a client key pair.
func newKey(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialOpts is how a terminal connects.
type dialOpts struct {
	user  string
	key   gossh.Signer // nil: no authentication offered
	term  string       // default xterm-256color
	env   map[string]string
	w, h  int         // default 100×30
	bg    color.Color // the terminal's background; default black
	noPty bool
}

// terminal is a person at an SSH client: a real SSH connection with a pty,
// whose output a terminal emulator draws.
type terminal struct {
	t      *testing.T
	name   string
	client *gossh.Client
	sess   *gossh.Session
	stdin  io.WriteCloser
	stderr *logBuffer
	mu     sync.Mutex
	emu    *vt.Emulator
	done   chan error // the session's exit
}

// dial connects to the front end, or fails the test.
func (f *sshFront) dial(t *testing.T, name string, o dialOpts) *terminal {
	t.Helper()
	tm, err := f.tryDial(t, name, o)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tm
}

// tryDial connects to the front end, opens a session with a pty and
// starts the shell: what `ssh -p PORT host` does.
func (f *sshFront) tryDial(t *testing.T, name string, o dialOpts) (*terminal, error) {
	t.Helper()
	if o.user == "" {
		o.user = "student"
	}
	if o.term == "" {
		o.term = "xterm-256color"
	}
	if o.w == 0 {
		o.w, o.h = 100, 30
	}
	cfg := &gossh.ClientConfig{User: o.user, HostKeyCallback: gossh.FixedHostKey(f.hostKey), Timeout: 10 * time.Second}
	if o.key != nil {
		cfg.Auth = []gossh.AuthMethod{gossh.PublicKeys(o.key)}
	}
	client, err := gossh.Dial("tcp", f.addr, cfg)
	if err != nil {
		return nil, err
	}
	sess, err := client.NewSession()
	if err != nil {
		client.Close()
		return nil, err
	}
	for k, v := range o.env {
		if err := sess.Setenv(k, v); err != nil {
			client.Close()
			return nil, err
		}
	}
	emu := vt.NewEmulator(o.w, o.h)
	if o.bg != nil {
		emu.SetDefaultBackgroundColor(o.bg)
	}
	tm := &terminal{t: t, name: name, client: client, sess: sess, emu: emu, stderr: &logBuffer{}, done: make(chan error, 1)}
	if !o.noPty {
		if err := sess.RequestPty(o.term, o.h, o.w, gossh.TerminalModes{gossh.ECHO: 0}); err != nil {
			client.Close()
			return nil, err
		}
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		client.Close()
		return nil, err
	}
	if tm.stdin, err = sess.StdinPipe(); err != nil {
		client.Close()
		return nil, err
	}
	sess.Stderr = tm.stderr
	if err := sess.Shell(); err != nil {
		client.Close()
		return nil, err
	}
	// The screen: what the server draws goes to the emulator; what the
	// emulator answers (background colour, cursor position) goes back.
	copied := make(chan struct{})
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := stdout.Read(buf)
			if n > 0 {
				tm.mu.Lock()
				_, _ = tm.emu.Write(buf[:n])
				tm.mu.Unlock()
			}
			if err != nil {
				close(copied)
				return
			}
		}
	}()
	go func() {
		// Never stop reading: the emulator blocks on an answer nobody reads.
		buf := make([]byte, 1024)
		for {
			n, err := emu.Read(buf)
			if err != nil {
				return
			}
			_, _ = tm.stdin.Write(buf[:n])
		}
	}()
	go func() {
		err := sess.Wait()
		<-copied
		tm.done <- err
	}()
	t.Cleanup(func() { tm.client.Close() })
	return tm, nil
}

// screen is the text on the terminal's screen, without colours.
func (tm *terminal) screen() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.emu.String()
}

// waitFor waits until the screen shows every one of wants.
func (tm *terminal) waitFor(wants ...string) string {
	tm.t.Helper()
	var s string
	if !polltest.Within(15*time.Second, func() bool { s = tm.screen(); return containsAll(s, wants) }) {
		tm.t.Fatalf("%s: the screen never showed %q; last screen:\n%s", tm.name, wants, s)
	}
	return s
}

// waitMatch waits until the screen matches re.
func (tm *terminal) waitMatch(re *regexp.Regexp) string {
	tm.t.Helper()
	var s string
	if !polltest.Within(15*time.Second, func() bool { s = tm.screen(); return re.MatchString(s) }) {
		tm.t.Fatalf("%s: the screen never matched %s; last screen:\n%s", tm.name, re, s)
	}
	return s
}

// typeKeys types s: "\r" is enter.
func (tm *terminal) typeKeys(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.stdin, s); err != nil {
		tm.t.Fatalf("%s: typing %q: %v", tm.name, s, err)
	}
}

// resize changes the window's size, as a person dragging its corner.
func (tm *terminal) resize(w, h int) {
	tm.t.Helper()
	tm.mu.Lock()
	tm.emu.Resize(w, h)
	tm.mu.Unlock()
	if err := tm.sess.WindowChange(h, w); err != nil {
		tm.t.Fatalf("%s: window change: %v", tm.name, err)
	}
}

// wait waits for the session to end and returns its error (nil: exit 0).
func (tm *terminal) wait() error {
	tm.t.Helper()
	select {
	case err := <-tm.done:
		tm.done <- err
		return err
	case <-time.After(15 * time.Second):
		tm.t.Fatalf("%s: the session did not end; screen:\n%s", tm.name, tm.screen())
		return nil
	}
}

// login logs in on the ATM's login screen and waits for the menu.
func (tm *terminal) login(account, holder string) {
	tm.t.Helper()
	tm.waitFor("Please log in")
	tm.typeKeys(account + "\r1234\r")
	tm.waitFor("What would you like to do?", holder)
}

// colours counts the screen's cells with a foreground colour in 24-bit
// colour and in 256 colours, and lists the foreground colours used.
func (tm *terminal) colours() (rgb, indexed int, palette map[string]bool) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	palette = map[string]bool{}
	for y := range tm.emu.Height() {
		for x := range tm.emu.Width() {
			c := tm.emu.CellAt(x, y)
			if c == nil || c.Style.Fg == nil {
				continue
			}
			switch c.Style.Fg.(type) {
			case color.RGBA:
				rgb++
			case ansi.IndexedColor:
				indexed++
			}
			palette[fmt.Sprint(c.Style.Fg)] = true
		}
	}
	return rgb, indexed, palette
}
