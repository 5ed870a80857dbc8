package ui

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/bank/boltstore"
	"atm/netproto/polltest"
	"atm/netproto/server"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"golang.org/x/crypto/bcrypt"

	"atm/bank"
)

// startServer runs a real bank server on 127.0.0.1:0 over a bbolt file in
// a temporary directory, with the default accounts 123, 456 and 789.
func startServer(t *testing.T) (addr string, stop func()) {
	t.Helper()
	srv := &server.Server{}
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
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := <-done; !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
			if _, err := b.Verify(context.Background()); err != nil {
				t.Errorf("ledger: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Errorf("close the bank: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return l.Addr().String(), stop
}

// recorder wraps the root model and keeps the last frame the program drew,
// without ANSI, for the test to read.
type recorder struct {
	*Model
	mu    sync.Mutex
	frame string
}

func (r *recorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := r.Model.Update(msg)
	return r, cmd
}

func (r *recorder) View() tea.View {
	v := r.Model.View()
	r.mu.Lock()
	r.frame = ansi.Strip(v.Content)
	r.mu.Unlock()
	return v
}

func (r *recorder) screen() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frame
}

// atm is one running ATM program with a keyboard.
type atm struct {
	t    *testing.T
	name string
	rec  *recorder
	keys *io.PipeWriter
	done chan error
}

func startATM(t *testing.T, name, addr string) *atm {
	t.Helper()
	return startATMConfig(t, Config{Addr: addr, ProcessID: name, RequestTimeout: 10 * time.Second})
}

func startATMConfig(t *testing.T, cfg Config) *atm {
	t.Helper()
	name := cfg.ProcessID
	inR, inW := io.Pipe()
	m := New(cfg)
	rec := &recorder{Model: m}
	p := tea.NewProgram(rec,
		tea.WithInput(inR),
		tea.WithOutput(io.Discard),
		tea.WithWindowSize(100, 30),
		tea.WithColorProfile(colorprofile.ANSI256),
		tea.WithEnvironment([]string{"TERM=xterm-256color"}),
		tea.WithoutSignalHandler(),
	)
	a := &atm{t: t, name: name, rec: rec, keys: inW, done: make(chan error, 1)}
	go func() {
		_, err := p.Run()
		a.done <- errors.Join(err, m.Close())
	}()
	t.Cleanup(func() {
		p.Kill()
		inW.Close()
		<-a.done
	})
	return a
}

// typeKeys writes to the ATM's keyboard: "\r" is enter.
func (a *atm) typeKeys(s string) {
	a.t.Helper()
	if _, err := io.WriteString(a.keys, s); err != nil {
		a.t.Fatalf("%s: typing %q: %v", a.name, s, err)
	}
}

// waitFor waits until the screen shows every one of wants.
func (a *atm) waitFor(wants ...string) string {
	a.t.Helper()
	var s string
	shown := polltest.Within(15*time.Second, func() bool {
		s = a.rec.screen()
		for _, w := range wants {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	})
	if !shown {
		a.t.Fatalf("%s: the screen never showed %q; last frame:\n%s", a.name, wants, s)
	}
	return s
}

// waitMatch waits until the screen matches re.
func (a *atm) waitMatch(re *regexp.Regexp) string {
	a.t.Helper()
	var s string
	if !polltest.Within(15*time.Second, func() bool { s = a.rec.screen(); return re.MatchString(s) }) {
		a.t.Fatalf("%s: the screen never matched %s; last frame:\n%s", a.name, re, s)
	}
	return s
}

// receiptDone matches a receipt whose receive step is known.
var receiptDone = regexp.MustCompile(`received here\s+max\(`)

func (a *atm) quit() {
	a.t.Helper()
	a.typeKeys("\x03") // ctrl+c
	select {
	case err := <-a.done:
		if err != nil {
			a.t.Errorf("%s: %v", a.name, err)
		}
		a.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		a.t.Fatalf("%s did not quit", a.name)
	}
}

var (
	ruleRecv = regexp.MustCompile(`max\((\d+),(\d+)\)\+1 ?= ?(\d+)`)
	ruleSend = regexp.MustCompile(`(?:^|[^(\d,])(\d+)\+1 ?= ?(\d+)`)
	clockNow = regexp.MustCompile(`L = (\d+)`)
)

// checkClockRules checks every clock step visible on the screen: a send is
// L+1, a receive is max(L, T)+1; and the panel's value is the newest step's.
func checkClockRules(t *testing.T, who, screen string) uint64 {
	t.Helper()
	atoi := func(s string) uint64 { n, _ := strconv.ParseUint(s, 10, 64); return n }
	steps := 0
	for _, m := range ruleRecv.FindAllStringSubmatch(screen, -1) {
		l, ts, got := atoi(m[1]), atoi(m[2]), atoi(m[3])
		if got != max(l, ts)+1 {
			t.Errorf("%s shows %q: max(%d,%d)+1 is %d", who, m[0], l, ts, max(l, ts)+1)
		}
		steps++
	}
	for _, m := range ruleSend.FindAllStringSubmatch(screen, -1) {
		l, got := atoi(m[1]), atoi(m[2])
		if got != l+1 {
			t.Errorf("%s shows %q: %d+1 is %d", who, m[0], l, l+1)
		}
		steps++
	}
	if steps == 0 {
		t.Errorf("%s shows no clock steps:\n%s", who, screen)
	}
	m := clockNow.FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("%s shows no clock value:\n%s", who, screen)
	}
	return atoi(m[1])
}

// receiptStamps reads the Lamport timestamps of a receipt.
func receiptStamps(t *testing.T, screen, proc string) (sent, recv, applied, answered, here uint64) {
	t.Helper()
	num := func(label string) uint64 {
		re := regexp.MustCompile(regexp.QuoteMeta(label) + `\s+(\d+)`)
		m := re.FindStringSubmatch(screen)
		if m == nil {
			t.Fatalf("receipt lacks %q:\n%s", label, screen)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		return n
	}
	sent, recv, applied, answered = num("sent by "+proc), num("received by bank"), num("applied by bank"), num("answered by bank")
	m := regexp.MustCompile(`received here\s+max\((\d+),(\d+)\)\+1 = (\d+)`).FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("receipt lacks the receive rule:\n%s", screen)
	}
	if m[2] != strconv.FormatUint(answered, 10) {
		t.Errorf("received here observes T=%s, but the bank answered at %d", m[2], answered)
	}
	here, _ = strconv.ParseUint(m[3], 10, 64)
	return
}

// The whole path through two real ATM programs on one real server: log in,
// deposit, transfer to a second logged-in session that sees the push, and
// its balance; every clock on screen obeys Lamport's rules.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	addr, stop := startServer(t)
	ana := startATM(t, "atm-ana1", addr)
	bruno := startATM(t, "atm-bru2", addr)

	ana.waitFor("Please log in", "atm-ana1", "↓ hello")
	bruno.waitFor("Please log in", "atm-bru2", "↓ hello")

	ana.typeKeys("123\r1234\r")
	ana.waitFor("What would you like to do?", "Ana Souza", "R$ 1.000,00", "↓ login ✓")

	bruno.typeKeys("456\r1234\r")
	bruno.waitFor("What would you like to do?", "Bruno Lima", "R$ 1.000,00")

	// Deposit R$ 50,50, typed the Brazilian way.
	ana.typeKeys("2")
	ana.waitFor("Amount to deposit")
	ana.typeKeys("50,5")
	ana.waitFor("= R$ 50,50")
	ana.typeKeys("\r")
	ana.waitFor("Confirm the deposit", "Deposit R$ 50,50 into your account?", "Press y to confirm")
	ana.typeKeys("y")
	ana.waitFor("✓ Deposit done", "R$ 1.050,50")
	s := ana.waitMatch(receiptDone)
	sent, recv, applied, answered, here := receiptStamps(t, s, "atm-ana1")
	if !(sent < recv && recv < applied && applied < answered && answered < here) {
		t.Errorf("deposit stamps out of Lamport order: sent %d, bank recv %d, applied %d, answered %d, here %d", sent, recv, applied, answered, here)
	}
	if now := checkClockRules(t, "ana", s); now != here {
		t.Errorf("ana's clock shows L = %d after the deposit, the receipt says %d", now, here)
	}

	// Transfer R$ 25,00 to Bruno, who is logged in on the other ATM.
	ana.typeKeys("\r")
	ana.waitFor("What would you like to do?")
	ana.typeKeys("4")
	ana.waitFor("Recipient's account")
	ana.typeKeys("456\r")
	ana.waitFor("456 · Bruno Lima", "Amount to transfer")
	ana.typeKeys("25\r")
	ana.waitFor("Confirm the transfer", "Send R$ 25,00 to Bruno Lima?", "Press y to confirm")
	ana.typeKeys("y")
	ana.waitFor("✓ Transfer done", "R$ 1.025,50")
	s = ana.waitMatch(receiptDone)
	_, _, tApplied, _, _ := receiptStamps(t, s, "atm-ana1")
	checkClockRules(t, "ana", s)

	// Bruno sees the money arrive at once.
	s = bruno.waitFor("Money arrived: +R$ 25,00", "from 123 · Ana Souza", "R$ 1.025,00", "↓ push")
	pm := regexp.MustCompile(`push sent at T=(\d+) · here L=(\d+)`).FindStringSubmatch(s)
	if pm == nil {
		t.Fatalf("push box lacks its timestamps:\n%s", s)
	}
	pushTS, _ := strconv.ParseUint(pm[1], 10, 64)
	pushHere, _ := strconv.ParseUint(pm[2], 10, 64)
	if !(tApplied < pushTS && pushTS < pushHere) {
		t.Errorf("push out of Lamport order: transfer applied at %d, push sent at %d, received at %d", tApplied, pushTS, pushHere)
	}
	checkClockRules(t, "bruno", s)

	// And asks for the balance.
	bruno.typeKeys("1")
	bruno.waitFor("✓ Balance")
	s = bruno.waitMatch(receiptDone)
	if !strings.Contains(s, "Balance") || strings.Count(s, "R$ 1.025,00") < 2 {
		t.Errorf("bruno's balance receipt:\n%s", s)
	}
	_, _, _, _, bHere := receiptStamps(t, s, "atm-bru2")
	if bHere <= pushHere {
		t.Errorf("bruno's clock went from %d (push) to %d (balance reply)", pushHere, bHere)
	}
	checkClockRules(t, "bruno", s)

	ana.quit()
	bruno.quit()
	stop()
}

// The server goes away mid-session and comes back on the same address: the
// ATM shows a banner, reconnects by itself and asks for a new login.
func TestEndToEndServerRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "bank.db")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	start := func() func() {
		t.Helper()
		srv, err := startTestServer(addr, db)
		if err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := srv.Close(); err != nil {
				t.Errorf("stop: %v", err)
			}
		}
	}
	stop := start()
	a := startATM(t, "atm-rst1", addr)
	a.waitFor("Please log in")
	a.typeKeys("789\r1234\r")
	a.waitFor("Carla Dias", "What would you like to do?")

	stop()
	a.waitFor("Connection to the bank lost")
	stop = start()
	defer stop()
	a.waitFor("Reconnected to the bank", "Please log in", "dropped and came back")
	a.typeKeys("789\r1234\r")
	a.waitFor("Carla Dias", "R$ 1.000,00")
	a.quit()
}

// freeAddr returns a local address nobody listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Without --server: the first ATM finds nobody and starts the server inside
// itself, the second one uses it; when the first quits, the second takes the
// server over on the same database and the person logs in again.
func TestEndToEndEmbeddedServer(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	db := filepath.Join(t.TempDir(), "atm", "bank.db")
	cfg := func(name string) Config {
		return Config{Addr: addr, Embedded: true, DBPath: db, ProcessID: name, RequestTimeout: 10 * time.Second, StartServer: startTestServer}
	}
	first := startATMConfig(t, cfg("atm-one1"))
	first.waitFor("No bank server was answering", "Please log in", "server in this ATM")
	second := startATMConfig(t, cfg("atm-two2"))
	s := second.waitFor("Please log in", "Connected to bank")
	if strings.Contains(s, "server in this ATM") {
		t.Fatalf("the second ATM started a server although one was running:\n%s", s)
	}
	second.typeKeys("456\r1234\r")
	second.waitFor("Bruno Lima", "What would you like to do?")
	first.typeKeys("123\r1234\r")
	first.waitFor("Ana Souza", "What would you like to do?")
	first.typeKeys("2")
	first.waitFor("Amount to deposit")
	first.typeKeys("10\r")
	first.waitFor("Confirm the deposit", "Press y to confirm")
	first.typeKeys("y")
	first.waitFor("✓ Deposit done", "R$ 1.010,00")

	first.quit()
	second.waitFor("Connection to the bank lost")
	second.waitFor("server in this ATM", "Please log in")
	second.typeKeys("123\r1234\r")
	second.waitFor("Ana Souza", "R$ 1.010,00") // the same database, the deposit kept
	second.quit()
}
