package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"atm/bank"
	"atm/bank/boltstore"
)

// runATMInput is runATM with the given standard input (not a terminal).
func runATMInput(t *testing.T, bin, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run atm %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// TestHelpGoesToStandardOutput: help asked for is printed on standard
// output with exit 0; a mistake goes to standard error with exit 2.
func TestHelpGoesToStandardOutput(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"serve", "-h"}, {"log", "--help"},
		{"verify", "-h"}, {"checkpoint", "-h"}, {"watch", "-h"}, {"accounts", "-h"}, {"accounts", "add", "-h"}, {"bench", "-h"}} {
		code, out, errOut := runATM(t, bin, args...)
		if code != 0 || !strings.Contains(out, "usage: atm") || errOut != "" {
			t.Fatalf("atm %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"nosuch"}, {"serve", "--nosuch"}, {"accounts"}} {
		code, out, errOut := runATM(t, bin, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "usage") && !strings.Contains(errOut, "flag provided but not defined") {
			t.Fatalf("atm %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
}

// TestAccountsAddReadsThePINFromInput opens an account without --pin, the
// PIN coming on standard input (as from a pipe): it is not in the command
// line, and it is the account's PIN.
func TestAccountsAddReadsThePINFromInput(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	path := filepath.Join(t.TempDir(), "bank.db")
	code, out, errOut := runATMInput(t, bin, "4321\n", "accounts", "add", "--db", path, "--id", "321", "--name", "Rui Alves")
	if code != 0 || !strings.Contains(out, "account 321 (Rui Alves) opened") {
		t.Fatalf("accounts add: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runATMInput(t, bin, "", "accounts", "add", "--db", path, "--id", "322", "--name", "Sem Pin")
	if code != 1 || !strings.Contains(errOut, "no PIN") {
		t.Fatalf("accounts add with no PIN at all: exit %d\n%s", code, errOut)
	}
	b, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Authenticate(context.Background(), bank.Meta{Client: "t", Source: "t"}, "321", "4321"); err != nil {
		t.Fatalf("the PIN from standard input does not open account 321: %v", err)
	}
}
