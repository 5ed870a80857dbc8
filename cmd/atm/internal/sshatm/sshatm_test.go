package sshatm_test

import (
	"regexp"
	"strings"
	"testing"

	"atm/cmd/atm/internal/sshatm"
)

// A person connects with an SSH client, gets an ATM of their own (its
// process id on screen and in the bank's log), logs in, deposits and reads
// the receipt; quitting ends the session with exit status 0.
func TestDepositOverSSH(t *testing.T) {
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
	s := ana.waitFor("✓ Deposit done", "R$ 1.050,50", "sent by atm-ssh-1", "received by bank", "applied by bank")
	if !regexp.MustCompile(`received here\s+max\(\d+,\d+\)\+1 = \d+`).MatchString(s) {
		t.Errorf("the receipt lacks the receive step:\n%s", s)
	}
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
