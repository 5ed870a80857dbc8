package boltstore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/outcome"
)

// A damaged file is reported as such, naming the file and the damage, and
// never makes the bank panic: a short event key (the newest, read by Open;
// or an older one, read by the log's readers), a meta value of the wrong
// length, an account record that is not JSON.
func TestDamagedFileIsAnErrorNotAPanic(t *testing.T) {
	t.Parallel()
	fresh := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "bank.db")
		b := open(t, path, bank.Options{})
		if _, err := b.Deposit(ctx, meta(), "123", 100); err != nil {
			t.Fatal(err)
		}
		b.Close()
		return path
	}
	wantErr := func(t *testing.T, what string, err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s on a damaged file: no error", what)
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("%s: %q does not say %q", what, err, p)
			}
		}
	}

	t.Run("newest event key", func(t *testing.T) {
		path := fresh(t)
		damage(t, path, "events", []byte{0, 0, 0, 7}, []byte{1})
		_, err := boltstore.Open(path, boltstore.Options{})
		wantErr(t, "Open", err, "open "+path+": event log: key 00000007 is 4 bytes, not 8 (damaged file)")
		_, err = boltstore.OpenReadOnly(path, boltstore.Options{})
		wantErr(t, "OpenReadOnly", err, path, "key 00000007 is 4 bytes, not 8 (damaged file)")
	})
	t.Run("older event key", func(t *testing.T) {
		path := fresh(t)
		damage(t, path, "events", []byte{0, 0, 0, 0}, []byte{1}) // sorts first
		_, err := boltstore.Open(path, boltstore.Options{})
		wantErr(t, "Open", err, path, "event log: key 00000000 is 4 bytes, not 8 (damaged file)")
		b, err := boltstore.OpenReadOnly(path, boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		_, err = b.Verify(context.Background())
		wantErr(t, "Verify", err, "event log: key 00000000 is 4 bytes, not 8 (damaged file)")
		err = b.Events(context.Background(), func(bank.Event) error { return nil })
		wantErr(t, "Events", err, "key 00000000 is 4 bytes")
	})
	t.Run("clock", func(t *testing.T) {
		path := fresh(t)
		damage(t, path, "meta", []byte("clock"), []byte{0, 0, 1})
		_, err := boltstore.Open(path, boltstore.Options{})
		wantErr(t, "Open", err, path, "meta: clock is 3 bytes, not 8 (damaged file)")
	})
	t.Run("format", func(t *testing.T) {
		path := fresh(t)
		damage(t, path, "meta", []byte("format"), []byte{2})
		_, err := boltstore.Open(path, boltstore.Options{})
		wantErr(t, "Open", err, path, "meta: format is 1 bytes, not 8 (damaged file)")
	})
	t.Run("totals", func(t *testing.T) {
		path := fresh(t)
		damage(t, path, "meta", []byte("deposits"), []byte{0, 0, 0, 0, 0, 9})
		b := open(t, path, bank.Options{})
		_, err := b.Verify(context.Background())
		wantErr(t, "Verify", err, "meta: deposits is 6 bytes, not 8 (damaged file)")
		_, err = b.Audit(context.Background())
		wantErr(t, "Audit", err, "meta: deposits is 6 bytes")
		for range 2 { // and again: the failure is not forgotten
			_, err = b.Deposit(ctx, meta(), "123", 100)
			wantErr(t, "Deposit", err, "meta: deposits is 6 bytes")
		}
		accts, err := b.Accounts(context.Background())
		if err != nil || accts[0].Balance != 100_100 {
			t.Fatalf("accounts after refused deposits: %v %v", accts, err)
		}
	})
	t.Run("account record", func(t *testing.T) {
		path := fresh(t)
		damage(t, path, "accounts", []byte("456"), []byte("{not json"))
		b := open(t, path, bank.Options{})
		_, err := b.Accounts(context.Background())
		wantErr(t, "Accounts", err, "account 456", "damaged file")
		_, err = b.Verify(context.Background())
		wantErr(t, "Verify", err, "account 456", "damaged file")
	})
	t.Run("account state", func(t *testing.T) {
		path := fresh(t)
		damage(t, path, "balances", []byte("789"), []byte{1, 2})
		b := open(t, path, bank.Options{})
		_, err := b.Accounts(context.Background())
		wantErr(t, "Accounts", err, "account 789", "2 bytes", "damaged file")
	})
}

// OpenReadOnly never creates a file, never writes one (bytes and
// modification time unchanged, Close included), refuses every operation
// with outcome.ErrReadOnly, and reads everything the offline tools need.
func TestOpenReadOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "sub", "none.db")
	if _, err := boltstore.OpenReadOnly(missing, boltstore.Options{}); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("read-only open of a missing file: %v, want an error naming it", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only open created something: %v", err)
	}

	path := filepath.Join(dir, "bank.db")
	w := open(t, path, bank.Options{})
	if _, err := w.Deposit(ctx, meta(), "123", 500); err != nil {
		t.Fatal(err)
	}
	w.Close()
	before, _ := os.ReadFile(path)
	st0, _ := os.Stat(path)

	b, err := boltstore.OpenReadOnly(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	accts, err := b.Accounts(context.Background())
	if err != nil || len(accts) != 3 || accts[0].Balance != 100_500 {
		t.Fatalf("accounts: %v %v", accts, err)
	}
	if _, err := b.Verify(context.Background()); err != nil {
		t.Fatalf("verify: %v", err)
	}
	a, err := b.Audit(context.Background())
	if err != nil || !a.Conserved() || a.Deposits != 300_500 {
		t.Fatalf("audit: %+v %v", a, err)
	}
	n := 0
	if err := b.Events(context.Background(), func(bank.Event) error { n++; return nil }); err != nil || n == 0 {
		t.Fatalf("events: %d %v", n, err)
	}
	if b.Locked(accts[0]) {
		t.Fatal("an account reads as locked")
	}
	refused := map[string]error{}
	_, refused["deposit"] = b.Deposit(ctx, meta(), "123", 1)
	_, refused["withdraw"] = b.Withdraw(ctx, meta(), "123", 1)
	_, refused["transfer"] = b.Transfer(ctx, meta(), "123", "456", 1)
	_, refused["login"] = b.Authenticate(ctx, meta(), "123", "1234")
	_, refused["open"] = b.CreateAccount(ctx, "999", "Zé", "1234")
	_, refused["record"] = b.Record(ctx, bank.Event{Kind: bank.KindServerStart})
	_, refused["balance"] = b.Balance(ctx, meta(), "123")
	for what, err := range refused {
		if !errors.Is(err, outcome.ErrReadOnly) {
			t.Errorf("%s on a read-only bank: %v, want outcome.ErrReadOnly", what, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	after, _ := os.ReadFile(path)
	st1, _ := os.Stat(path)
	if string(before) != string(after) || !st0.ModTime().Equal(st1.ModTime()) {
		t.Fatal("the read-only bank changed the file")
	}
}

// A read-only open waits for a server holding the file and then fails with
// outcome.ErrDatabaseBusy.
func TestOpenReadOnlyWhileHeld(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	open(t, path, bank.Options{}) // held until the test ends
	_, err := boltstore.OpenReadOnly(path, boltstore.Options{OpenTimeout: 50_000_000})
	if !errors.Is(err, outcome.ErrDatabaseBusy) || !strings.Contains(err.Error(), path) {
		t.Fatalf("read-only open of a held file: %v, want outcome.ErrDatabaseBusy naming it", err)
	}
}
