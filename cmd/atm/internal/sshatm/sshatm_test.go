package sshatm_test

import (
	"errors"
	"image/color"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"atm/cmd/atm/internal/sshatm"
	"atm/netproto/polltest"

	gossh "golang.org/x/crypto/ssh"
)

// A person connects with an SSH client, gets an ATM of their own (its
// process id on screen and in the bank's log), logs in, deposits and reads
// the receipt; quitting ends the session with exit status 0.
func TestDepositOverSSH(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	f := startSSH(t, tb, sshatm.Config{})
	ana := f.dial(t, "ana", dialOpts{user: "ana"})
	ana.waitFor("Please log in", "atm-ssh-1", "↓ hello")
	ana.login("123", "Ana Souza")
	ana.typeKeys("2")
	ana.waitFor("Amount to deposit")
	ana.typeKeys("50,5\r")
	ana.waitFor("Confirm the deposit", "Deposit R$ 50,50 into your account?", "Press y to confirm")
	ana.typeKeys("y")
	ana.waitFor("✓ Deposit done", "R$ 1.050,50", "sent by atm-ssh-1", "received by bank", "applied by bank")
	ana.waitMatch(regexp.MustCompile(`received here\s+max\(\d+,\d+\)\+1 = \d+`))
	if n := tb.deposits(t, "atm-ssh-1"); n != 1 {
		t.Errorf("the bank applied %d deposits of atm-ssh-1, want 1", n)
	}
	waitLog(t, tb.log, "atm-ssh-1")
	waitLog(t, f.log, "ssh: atm-ssh-1 for ana@127.0.0.1:")

	ana.typeKeys("\r")
	ana.waitFor("What would you like to do?")
	ana.typeKeys("q")
	if err := ana.wait(); err != nil {
		t.Fatalf("the session ended with %v, want exit status 0", err)
	}
	waitLog(t, f.log, "atm-ssh-1 for ana@", "ended: the person quit")
	if strings.Contains(f.log.String(), "leaving the bank") {
		t.Errorf("the ATM did not leave the bank cleanly:\n%s", f.log)
	}
}

// Two students on two SSH sessions: a transfer from one shows up at once on
// the other's screen as a push, and each ATM is its own process.
func TestTransferAndPushBetweenSessions(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	f := startSSH(t, tb, sshatm.Config{})
	ana := f.dial(t, "ana", dialOpts{})
	ana.waitFor("atm-ssh-1")
	bruno := f.dial(t, "bruno", dialOpts{})
	bruno.waitFor("atm-ssh-2")
	ana.login("123", "Ana Souza")
	bruno.login("456", "Bruno Lima")

	ana.typeKeys("4")
	ana.waitFor("Recipient's account")
	ana.typeKeys("456\r")
	ana.waitFor("456 · Bruno Lima", "Amount to transfer")
	ana.typeKeys("25\r")
	ana.waitFor("Send R$ 25,00 to Bruno Lima?", "Press y to confirm")
	ana.typeKeys("y")
	ana.waitFor("✓ Transfer done", "R$ 975,00")
	bruno.waitFor("Money arrived: +R$ 25,00", "from 123 · Ana Souza", "R$ 1.025,00", "↓ push")
	waitLog(t, tb.log, "atm-ssh-1", "atm-ssh-2")
}

// The ATM follows the client's window: a smaller window than the layout
// needs shows what size it needs, a larger one is used to its width.
func TestWindowResize(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	f := startSSH(t, tb, sshatm.Config{})
	a := f.dial(t, "ana", dialOpts{w: 100, h: 30})
	a.waitFor("Please log in")
	if w := widest(a.screen()); w > 100 {
		t.Fatalf("a line is %d cells wide in a 100-column window", w)
	}
	a.resize(70, 20)
	a.waitFor("Terminal too small: need 80×24, have 70×20.")
	a.resize(140, 40)
	s := a.waitFor("Please log in")
	if w := widest(s); w <= 100 || w > 140 {
		t.Fatalf("in a 140-column window the widest line is %d cells:\n%s", w, s)
	}
	if n := strings.Count(s, "\n") + 1; n < 35 {
		t.Fatalf("in a 40-line window the ATM uses %d lines:\n%s", n, s)
	}
}

// widest is the width of the widest line of a screen, in cells.
func widest(screen string) int {
	w := 0
	for _, l := range strings.Split(screen, "\n") {
		w = max(w, ansi.StringWidth(strings.TrimRight(l, " ")))
	}
	return w
}

// With authorized keys, a key not among them gets no session (and the log
// says whose key was refused); an authorized key gets the ATM.
func TestRefusedKey(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	allowed, other := newKey(t), newKey(t)
	f := startSSH(t, tb, sshatm.Config{AuthorizedKeys: []gossh.PublicKey{allowed.PublicKey()}})
	if _, err := f.tryDial(t, "intruder", dialOpts{user: "mallory", key: other}); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("a key not authorized: %v, want unable to authenticate", err)
	}
	waitLog(t, f.log, "refused key "+sshatm.Fingerprint(other.PublicKey())+" of mallory@127.0.0.1:")
	if _, err := f.tryDial(t, "anonymous", dialOpts{}); err == nil {
		t.Fatal("a client without a key got in")
	}
	a := f.dial(t, "ana", dialOpts{key: allowed})
	a.waitFor("Please log in", "atm-ssh-1")
	if strings.Contains(f.log.String(), "atm-ssh-2") {
		t.Fatalf("a refused client got an ATM:\n%s", f.log)
	}
}

// Beyond MaxSessions, a session is told that every ATM is in use and ends
// with exit status 1; once a session ends, its place is free again.
func TestSessionLimit(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	f := startSSH(t, tb, sshatm.Config{MaxSessions: 2})
	a := f.dial(t, "a", dialOpts{})
	a.waitFor("Please log in", "atm-ssh-1")
	b := f.dial(t, "b", dialOpts{})
	b.waitFor("Please log in", "atm-ssh-2")
	c := f.dial(t, "c", dialOpts{})
	var exit *gossh.ExitError
	if err := c.wait(); !errors.As(err, &exit) || exit.ExitStatus() != 1 {
		t.Fatalf("the third session ended with %v, want exit status 1", err)
	}
	if got := c.stderr.String(); !strings.Contains(got, "Sorry, all 2 ATMs of this bank are in use; try again later.") {
		t.Fatalf("the third session was told %q", got)
	}
	waitLog(t, f.log, "refused a session of student@127.0.0.1:", "all 2 ATMs of this bank are in use")

	a.typeKeys("\x03") // ctrl+c
	if err := a.wait(); err != nil {
		t.Fatalf("quitting: %v", err)
	}
	d := f.dial(t, "d", dialOpts{})
	d.waitFor("Please log in", "atm-ssh-3")
}

// A session without a pty gets a sentence, not an ATM drawn on a pipe.
func TestNoTerminal(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	f := startSSH(t, tb, sshatm.Config{})
	a := f.dial(t, "pipe", dialOpts{noPty: true})
	var exit *gossh.ExitError
	if err := a.wait(); !errors.As(err, &exit) || exit.ExitStatus() != 1 {
		t.Fatalf("a session without a pty ended with %v, want exit status 1", err)
	}
	if got := a.stderr.String(); !strings.Contains(got, "The ATM needs a terminal: connect with ssh -t.") {
		t.Fatalf("a session without a pty was told %q", got)
	}
}

// A session without a key for IdleTimeout is logged out and closed with a
// goodbye on the terminal; the keys of the login put the close off.
func TestIdleSessionCloses(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	f := startSSH(t, tb, sshatm.Config{IdleTimeout: 2 * time.Second})
	a := f.dial(t, "ana", dialOpts{})
	a.login("123", "Ana Souza")
	if err := a.wait(); err != nil {
		t.Fatalf("the idle session ended with %v, want exit status 0", err)
	}
	a.waitFor("No key for 2s: this ATM has logged out. Goodbye!")
	waitLog(t, tb.log, "logout 123 by atm-ssh-1")
	waitLog(t, f.log, "atm-ssh-1 for student@", "ended: no key for 2s")
}

// An SSH session that drops while its deposit is in flight is an ATM that
// vanished: the bank applies the deposit once, nobody applies it again, and
// the money is there at the next login.
func TestDroppedSessionAppliesAtMostOnce(t *testing.T) {
	t.Parallel()
	tb := startBank(t, time.Second) // every answer of the bank is late
	f := startSSH(t, tb, sshatm.Config{})
	a := f.dial(t, "ana", dialOpts{})
	a.login("123", "Ana Souza")
	a.typeKeys("2")
	a.waitFor("Amount to deposit")
	a.typeKeys("10\r")
	a.waitFor("Deposit R$ 10,00 into your account?", "Press y to confirm")
	a.typeKeys("y")
	a.waitFor("↑ deposit") // on its way; the answer is a second away
	if strings.Contains(a.screen(), "✓ Deposit done") {
		t.Fatal("the answer came before the session could drop")
	}
	a.client.Close() // the student's laptop lid closes
	waitLog(t, f.log, "atm-ssh-1 for student@", "ended: the connection dropped")
	waitLog(t, tb.log, "deposit")

	b := f.dial(t, "ana again", dialOpts{})
	b.login("123", "Ana Souza")
	b.waitFor("R$ 1.010,00")
	if n := tb.deposits(t, "atm-ssh-1"); n != 1 {
		t.Fatalf("the bank applied %d deposits of the vanished ATM, want 1", n)
	}
}

// Shutdown ends every ATM: each logs out, and every terminal gets a
// goodbye instead of a frozen screen; later connections are refused.
func TestShutdownSaysGoodbye(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	f := startSSH(t, tb, sshatm.Config{})
	a := f.dial(t, "ana", dialOpts{})
	a.login("123", "Ana Souza")
	b := f.dial(t, "bruno", dialOpts{})
	b.waitFor("Please log in", "atm-ssh-2")
	f.shutdown(t)
	for _, tm := range []*terminal{a, b} {
		if err := tm.wait(); err != nil {
			t.Errorf("%s: the session ended with %v, want exit status 0", tm.name, err)
		}
		tm.waitFor("Banco Lamport is closing: this ATM has logged out. Goodbye!")
	}
	waitLog(t, f.log, "atm-ssh-1 for student@", "atm-ssh-2 for student@", "ended: the bank is closing")
	waitLog(t, tb.log, "logout")
	if _, err := f.tryDial(t, "late", dialOpts{}); err == nil {
		t.Fatal("a connection after the shutdown got in")
	}
}

// Colours follow the client: a 256-colour terminal gets the ATM's palette
// in 256 colours, one that says COLORTERM=truecolor gets 24-bit colour;
// and the ATM asks the terminal for its background: a light one gets other
// colours than a dark one.
func TestColoursFollowTheClient(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	f := startSSH(t, tb, sshatm.Config{})
	black, white := color.RGBA{A: 0xff}, color.RGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}

	dark := f.dial(t, "256 colours", dialOpts{bg: black})
	dark.waitFor("Please log in", "Connected to bank")
	rgb, indexed, darkPalette := dark.colours()
	if rgb != 0 || indexed == 0 {
		t.Errorf("xterm-256color: %d cells in 24-bit colour, %d in 256 colours; want none and some", rgb, indexed)
	}
	truecolor := f.dial(t, "truecolor", dialOpts{bg: black, env: map[string]string{"COLORTERM": "truecolor"}})
	truecolor.waitFor("Please log in", "Connected to bank")
	if rgb, indexed, _ := truecolor.colours(); rgb == 0 || indexed != 0 {
		t.Errorf("COLORTERM=truecolor: %d cells in 24-bit colour, %d in 256 colours; want some and none", rgb, indexed)
	}
	light := f.dial(t, "light", dialOpts{bg: white})
	light.waitFor("Please log in", "Connected to bank")
	// The answer to the ATM's question about the background comes when it
	// comes: wait for the colours to change.
	var p map[string]bool
	if !polltest.Within(15*time.Second, func() bool { _, _, p = light.colours(); return !reflect.DeepEqual(p, darkPalette) }) {
		t.Fatalf("the same colours on a light background as on a dark one: %v", p)
	}
}

// The sessions' process ids take the server's prefix and number on from
// the sessions earlier runs opened, and each new number is handed to
// OnSession to keep.
func TestProcessIDsNumberOnWithTheirPrefix(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	var mu sync.Mutex
	var kept []uint64
	f := startSSH(t, tb, sshatm.Config{ProcessPrefix: "atm-ssh-bank-2-", Sessions: 41, OnSession: func(n uint64) {
		mu.Lock()
		kept = append(kept, n)
		mu.Unlock()
	}})
	ana := f.dial(t, "ana", dialOpts{user: "ana"})
	ana.waitFor("Please log in", "atm-ssh-bank-2-42")
	bruno := f.dial(t, "bruno", dialOpts{user: "bruno"})
	bruno.waitFor("Please log in", "atm-ssh-bank-2-43")
	waitLog(t, f.log, "ssh: atm-ssh-bank-2-42 for ana@", "ssh: atm-ssh-bank-2-43 for bruno@")
	mu.Lock()
	defer mu.Unlock()
	if len(kept) != 2 || kept[0] != 42 || kept[1] != 43 {
		t.Fatalf("OnSession got %v, want [42 43]", kept)
	}
}
