package boltstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"atm/bank"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
)

// A request id sent again with another request (another kind, amount or
// recipient) is refused with request_id_reused and logged as a retry with
// that outcome; nothing is applied and the first outcome is not relabelled.
// The same request again is still a duplicate.
func TestRequestIDReusedForAnotherRequest(t *testing.T) {
	t.Parallel()
	b, _ := newBank(t)
	m := bank.Meta{ReqID: "same-id", Client: "test"}
	first, err := b.Deposit(ctx, m, "123", 5_000)
	if err != nil {
		t.Fatal(err)
	}
	before := balance(t, b, "123")
	cases := []struct {
		name string
		run  func() (bank.Receipt, error)
	}{
		{"withdraw", func() (bank.Receipt, error) { return b.Withdraw(ctx, m, "123", 5_000) }},
		{"other amount", func() (bank.Receipt, error) { return b.Deposit(ctx, m, "123", 5_001) }},
		{"transfer", func() (bank.Receipt, error) { return b.Transfer(ctx, m, "123", "456", 5_000) }},
	}
	for _, c := range cases {
		r, err := c.run()
		if !errors.Is(err, outcome.ErrRequestIDReused) || outcome.Code(err) != "request_id_reused" {
			t.Fatalf("%s with a deposit's id: %v, want request_id_reused", c.name, err)
		}
		want := "request id same-id was already used for a deposit of R$ 50,00; use a new id for a new request"
		if err.Error() != want {
			t.Errorf("%s: message %q, want %q", c.name, err, want)
		}
		if r.Duplicate || r.Event.Kind != bank.KindRetry || r.Event.Outcome != "request_id_reused" || r.Event.OrigTS != first.Event.TS {
			t.Errorf("%s: receipt %+v, want a retry event refused with request_id_reused", c.name, r)
		}
	}
	if got := balance(t, b, "123"); got != before {
		t.Fatalf("balance %s after reused ids, want %s", got, before)
	}
	if got := balance(t, b, "456"); got != 100_000 {
		t.Fatalf("recipient balance %s after a reused id", got)
	}
	r, err := b.Deposit(ctx, m, "123", 5_000)
	if err != nil || !r.Duplicate || r.Event.TS != first.Event.TS {
		t.Fatalf("the same deposit again: %+v %v, want the first outcome as a duplicate", r, err)
	}
	// The log holds each refusal as a retry, with the new request's content.
	var retries []string
	b.Events(context.Background(), func(e bank.Event) error {
		if e.Kind == bank.KindRetry && e.ReqID == "same-id" {
			retries = append(retries, e.Outcome+":"+e.Amount.String()+":"+e.To)
		}
		return nil
	})
	want := "request_id_reused:R$ 50,00: request_id_reused:R$ 50,01: request_id_reused:R$ 50,00:456 ok:R$ 50,00:"
	if got := strings.Join(retries, " "); got != want {
		t.Fatalf("retry events:\n got %s\nwant %s", got, want)
	}
	if _, err := b.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A money request whose first outcome was an internal failure (here: the
// account's stored state is damaged) is answered with an error when it is
// repeated, never with success.
func TestRepeatedInternalFailureIsNotSuccess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	b.Close()
	damage(t, path, "balances", []byte("123"), []byte{1, 2, 3})

	b = open(t, path, bank.Options{})
	m := bank.Meta{ReqID: "dep-1", Client: "test"}
	_, err := b.Deposit(ctx, m, "123", 100)
	if outcome.Code(err) != "internal" {
		t.Fatalf("deposit on a damaged account: %v, want an internal error", err)
	}
	r, err := b.Deposit(ctx, m, "123", 100)
	if err == nil || !errors.Is(err, outcome.ErrInternal) {
		t.Fatalf("repeated deposit whose first outcome was internal: %v (duplicate=%v), want outcome.ErrInternal", err, r.Duplicate)
	}
	if !r.Duplicate || r.Event.Outcome != "internal" {
		t.Fatalf("repeat: %+v, want the first outcome as a duplicate", r)
	}
	// After a restart, from the log, too.
	b.Close()
	b = open(t, path, bank.Options{})
	if _, err := b.Deposit(ctx, m, "123", 100); !errors.Is(err, outcome.ErrInternal) {
		t.Fatalf("repeat after a restart: %v, want outcome.ErrInternal", err)
	}
}

// damage writes val under key in bucket of the closed bbolt file at path.
func damage(t *testing.T, path, bucket string, key, val []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).Put(key, val)
	})
	if err != nil {
		t.Fatal(err)
	}
}
