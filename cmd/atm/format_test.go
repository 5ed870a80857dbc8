package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"atm/bank/boltstore"
	"atm/netproto/server"

	"golang.org/x/crypto/bcrypt"

	"atm/bank"
)

// The log line of a refused account opening shows the refusal once and no
// holder's name; a refused over-long name is not repeated in it at all.
func TestFormatRefusedOpen(t *testing.T) {
	t.Parallel()
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost, NoDefaults: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, err := b.CreateAccount(ctx, "321", "Rui Alves", "4321"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateAccount(ctx, "321", "Rui Alves", "4321"); err == nil {
		t.Fatal("a second account 321 was opened")
	}
	long := strings.Repeat("x", 300)
	if _, err := b.CreateAccount(ctx, "322", long, "4321"); err == nil {
		t.Fatal("a 300-character name was accepted")
	}
	var lines []string
	err = b.Events(context.Background(), func(e bank.Event) error {
		if e.Kind == bank.KindOpen {
			lines = append(lines, formatEvent(e))
		}
		return nil
	})
	if err != nil || len(lines) != 3 {
		t.Fatalf("open events: %q %v", lines, err)
	}
	if !strings.Contains(lines[0], `open         321 "Rui Alves" ok`) {
		t.Errorf("successful open: %q", lines[0])
	}
	const exists = "account 321: account already exists"
	if strings.Count(lines[1], exists) != 1 || strings.Contains(lines[1], `"`) || !strings.Contains(lines[1], "account_exists") {
		t.Errorf("refused open: %q, want the refusal once and no name", lines[1])
	}
	const tooLong = "holder name of 300 characters: use 1 to 80 characters on one line"
	if strings.Count(lines[2], tooLong) != 1 || strings.Contains(lines[2], strings.Repeat("x", 81)) || len(lines[2]) > 250 {
		t.Errorf("refused long name: %q, want %q once and not the name", lines[2], tooLong)
	}
}

// The log line of a lock says who is locked out and until when.
func TestFormatLock(t *testing.T) {
	t.Parallel()
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := bank.Meta{Client: "atm-bad1", Source: "atm-bad1@10.1.2.3"}
	for range 3 {
		b.Authenticate(context.Background(), m, "123", "0000")
	}
	var line string
	b.Events(context.Background(), func(e bank.Event) error {
		if e.Kind == bank.KindLock {
			line = formatEvent(e)
		}
		return nil
	})
	if !strings.Contains(line, "lock         123 atm-bad1@10.1.2.3 locked out until ") {
		t.Fatalf("lock line %q does not say who is locked out and until when", line)
	}
}

// TestLogLinesCannotBeForged prints events whose strings came from a client
// with newlines and escape sequences in them: each stays one line.
func TestLogLinesCannotBeForged(t *testing.T) {
	t.Parallel()
	e := bank.Event{TS: 7, Kind: bank.KindLogin, Outcome: "invalid_account_id",
		Account: "123\nL=999999 apply deposit 8801 +R$ 1.000.000,00 ok", Client: "p\x1b[2J", Detail: "x\ry"}
	line := server.EscapeControl(formatEvent(e))
	if strings.ContainsAny(line, "\n\r\x1b") {
		t.Fatalf("a control character reached the line: %q", line)
	}
	if !strings.Contains(line, `123\nL=999999`) {
		t.Fatalf("the newline is not shown escaped: %q", line)
	}
}

// TestFormatPushKinds prints each kind of push as what it told the ATM.
func TestFormatPushKinds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		detail, to, want string
	}{
		{"transfer applied at 51", "456", "R$ 25,00 from 456 → R$ 1.025,00"},
		{"deposit applied at 51", "", "R$ 25,00 deposit at another ATM → R$ 1.025,00"},
		{"withdrawal applied at 51", "", "R$ 25,00 withdrawal at another ATM → R$ 1.025,00"},
		{"transfer out applied at 51", "789", "R$ 25,00 transfer to 789 at another ATM → R$ 1.025,00"},
	} {
		line := formatEvent(bank.Event{TS: 53, Kind: bank.KindPush, Outcome: "ok", Account: "123", To: c.to,
			Amount: 2500, Balance: 102500, Detail: c.detail})
		if !strings.Contains(line, c.want) {
			t.Errorf("%s: %q lacks %q", c.detail, line, c.want)
		}
	}
}
