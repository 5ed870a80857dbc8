package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"atm/bank"
	"atm/bank/boltstore"

	bolt "go.etcd.io/bbolt"
)

// runATM runs the built binary and returns its exit code, stdout and stderr.
func runATM(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	return runATMEnv(t, bin, nil, args...)
}

// runATMEnv is runATM with the variables of env ("KEY=value") added to the
// test's environment.
func runATMEnv(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
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

// newDB creates a database with the default accounts and closes it.
func newDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bank.db")
	b, err := boltstore.Open(path, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOfflineTools runs accounts, log and verify as a person would: they
// never create or change a file they only read, report a wrong path, a file
// held by a server and a damaged file with a message and exit 1, and never
// panic.
func TestOfflineTools(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	readers := [][]string{{"accounts", "list"}, {"log"}, {"log", "--json"}, {"verify"}}

	t.Run("read only", func(t *testing.T) {
		path := newDB(t)
		before, _ := os.ReadFile(path)
		st0, _ := os.Stat(path)
		for _, args := range readers {
			code, out, errOut := runATM(t, bin, append(args, "--db", path)...)
			if code != 0 || out == "" {
				t.Fatalf("atm %v: exit %d\n%s%s", args, code, out, errOut)
			}
			after, _ := os.ReadFile(path)
			st1, _ := os.Stat(path)
			if !bytes.Equal(before, after) || !st0.ModTime().Equal(st1.ModTime()) {
				t.Fatalf("atm %v changed the database file", args)
			}
		}
	})

	t.Run("wrong path", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nowhere", "bank.db")
		for _, args := range readers {
			code, out, errOut := runATM(t, bin, append(args, "--db", missing)...)
			if code != 1 || !strings.Contains(errOut, "no database at "+missing) || strings.Contains(out, "Ana Souza") {
				t.Fatalf("atm %v on a wrong path: exit %d\n%s%s", args, code, out, errOut)
			}
			if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("atm %v on a wrong path created something: %v", args, err)
			}
		}
	})

	t.Run("add creates", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new", "bank.db")
		code, out, errOut := runATM(t, bin, "accounts", "add", "--db", path, "--id", "321", "--name", "Rui Alves", "--pin", "4321")
		if code != 0 || !strings.Contains(out, "account 321 (Rui Alves) opened") {
			t.Fatalf("accounts add: exit %d\n%s%s", code, out, errOut)
		}
		code, out, _ = runATM(t, bin, "accounts", "list", "--db", path)
		if code != 0 || !strings.Contains(out, "Rui Alves") {
			t.Fatalf("accounts list after add: exit %d\n%s", code, out)
		}
	})

	t.Run("held by a server", func(t *testing.T) {
		path := newDB(t)
		b, err := boltstore.Open(path, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		for _, args := range [][]string{{"log"}, {"verify"}} {
			code, _, errOut := runATM(t, bin, append(args, "--db", path)...)
			if code != 1 || !strings.Contains(errOut, path+" is held by a running server") ||
				!strings.Contains(errOut, "atm log --server ADDR") {
				t.Fatalf("atm %v on a held file: exit %d\n%s", args, code, errOut)
			}
		}
	})

	t.Run("from the running server", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bank.db")
		srv := startServe(t, bin, path, "127.0.0.1:0", 0)
		code, out, errOut := runATM(t, bin, "log", "--server", srv.addr, "--operator-token", crashToken)
		if code != 0 || !strings.Contains(out, "server_start") || !strings.Contains(out, `open         123 "Ana Souza"`) {
			t.Fatalf("atm log --server: exit %d\n%s%s", code, out, errOut)
		}
		code, out, _ = runATM(t, bin, "log", "--server", srv.addr, "--operator-token", crashToken, "--json")
		if n := strings.Count(out, "\n"); code != 0 || n < 7 {
			t.Fatalf("atm log --server --json: exit %d, %d lines", code, n)
		}
		code, _, errOut = runATM(t, bin, "log", "--server", srv.addr, "--operator-token", "guess")
		if code != 1 || !strings.Contains(errOut, "refused the operator token") {
			t.Fatalf("atm log --server with a wrong token: exit %d\n%s", code, errOut)
		}
	})

	t.Run("damaged", func(t *testing.T) {
		for _, key := range [][]byte{{0, 0, 0, 7}, {0, 0, 0, 0}} { // the newest key, an older one
			path := newDB(t)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("events")).Put(key, []byte{1}) })
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runATM(t, bin, "verify", "--db", path)
			want := fmt.Sprintf("key %x is 4 bytes, not 8 (damaged file)", key)
			if code != 1 || !strings.Contains(errOut, path) || !strings.Contains(errOut, want) || strings.Contains(errOut, "panic") {
				t.Fatalf("atm verify on a damaged file (key %x): exit %d, want 1 and %q naming the file\n%s%s", key, code, want, out, errOut)
			}
			if code, _, errOut := runATM(t, bin, "log", "--db", path); code != 1 || !strings.Contains(errOut, "damaged file") {
				t.Fatalf("atm log on a damaged file: exit %d\n%s", code, errOut)
			}
		}
	})
}
