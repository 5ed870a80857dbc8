package boltstore_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/money"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

var ctx = context.Background()

func open(t *testing.T, path string, opts bank.Options) *boltstore.Bank {
	t.Helper()
	if opts.PINCost == 0 {
		opts.PINCost = bcrypt.MinCost
	}
	b, err := boltstore.Open(path, boltstore.Options{Options: opts})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newBank(t *testing.T) (*boltstore.Bank, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bank.db")
	return open(t, path, bank.Options{}), path
}

var reqN atomic.Int64

func meta() bank.Meta {
	return bank.Meta{ReqID: fmt.Sprintf("r%d", reqN.Add(1)), Client: "test"}
}

func balance(t *testing.T, b *boltstore.Bank, id string) money.Cents {
	t.Helper()
	r, err := b.Balance(ctx, bank.Meta{Client: "test"}, id)
	if err != nil {
		t.Fatalf("balance %s: %v", id, err)
	}
	return r.Event.Balance
}

func TestDefaultAccounts(t *testing.T) {
	t.Parallel()
	b, path := newBank(t)
	accts, err := b.Accounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != len(bank.DefaultAccounts) {
		t.Fatalf("got %d accounts, want %d", len(accts), len(bank.DefaultAccounts))
	}
	for i, d := range bank.DefaultAccounts {
		if accts[i].ID != d.ID || accts[i].Name != d.Name || accts[i].Balance != d.Opening {
			t.Errorf("account %d = %+v, want %s %s %s", i, accts[i], d.ID, d.Name, d.Opening)
		}
		if string(accts[i].PINHash) == d.PIN || bcrypt.CompareHashAndPassword(accts[i].PINHash, []byte(d.PIN)) != nil {
			t.Errorf("account %s: PIN not stored as a bcrypt hash of the documented PIN", d.ID)
		}
	}
	// Changes survive and a reopen does not re-create or reset anything.
	if _, err := b.Deposit(ctx, meta(), "123", 555); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b2 := open(t, path, bank.Options{})
	if got := balance(t, b2, "123"); got != 100_555 {
		t.Fatalf("after reopen balance = %s, want R$ 1.005,55", got)
	}
	accts, _ = b2.Accounts(context.Background())
	if len(accts) != 3 {
		t.Fatalf("reopen created accounts: %d", len(accts))
	}
}

func TestOperationsAndErrors(t *testing.T) {
	t.Parallel()
	b, _ := newBank(t)
	r, err := b.Deposit(ctx, meta(), "123", 5_050)
	if err != nil || r.Event.Balance != 105_050 || r.Event.Outcome != "ok" {
		t.Fatalf("deposit: %+v %v", r.Event, err)
	}
	r, err = b.Withdraw(ctx, meta(), "123", 50)
	if err != nil || r.Event.Balance != 105_000 {
		t.Fatalf("withdraw: %+v %v", r.Event, err)
	}
	r, err = b.Transfer(ctx, meta(), "123", "456", 5_000)
	if err != nil || r.Event.Balance != 100_000 || r.Event.ToBalance != 105_000 || r.Event.Detail != "Bruno Lima" {
		t.Fatalf("transfer: %+v %v", r.Event, err)
	}
	r, err = b.Lookup(ctx, meta(), "789")
	if err != nil || r.Holder != "Carla Dias" {
		t.Fatalf("lookup: %+v %v", r, err)
	}
	cases := []struct {
		name string
		run  func() (bank.Receipt, error)
		want error
	}{
		{"deposit zero", func() (bank.Receipt, error) { return b.Deposit(ctx, meta(), "123", 0) }, outcome.ErrInvalidAmount},
		{"deposit negative", func() (bank.Receipt, error) { return b.Deposit(ctx, meta(), "123", -1) }, outcome.ErrInvalidAmount},
		{"deposit over limit", func() (bank.Receipt, error) { return b.Deposit(ctx, meta(), "123", 10_000_001) }, outcome.ErrLimitExceeded},
		{"withdraw too much", func() (bank.Receipt, error) { return b.Withdraw(ctx, meta(), "123", 100_001) }, outcome.ErrInsufficientFunds},
		{"withdraw missing account", func() (bank.Receipt, error) { return b.Withdraw(ctx, meta(), "999", 1) }, outcome.ErrAccountNotFound},
		{"transfer to self", func() (bank.Receipt, error) { return b.Transfer(ctx, meta(), "123", "123", 1) }, outcome.ErrSameAccount},
		{"transfer to missing", func() (bank.Receipt, error) { return b.Transfer(ctx, meta(), "123", "999", 1) }, outcome.ErrAccountNotFound},
		{"transfer too much", func() (bank.Receipt, error) { return b.Transfer(ctx, meta(), "123", "456", 100_001) }, outcome.ErrInsufficientFunds},
		{"balance missing", func() (bank.Receipt, error) { return b.Balance(ctx, meta(), "999") }, outcome.ErrAccountNotFound},
		{"lookup missing", func() (bank.Receipt, error) { return b.Lookup(ctx, meta(), "999") }, outcome.ErrAccountNotFound},
		{"no request id", func() (bank.Receipt, error) { return b.Deposit(ctx, bank.Meta{}, "123", 1) }, outcome.ErrInvalidRequestID},
		{"login missing", func() (bank.Receipt, error) { return b.Authenticate(ctx, meta(), "999", "1234") }, outcome.ErrAccountNotFound},
	}
	for _, c := range cases {
		r, err := c.run()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			continue
		}
		if r.Event.Outcome != outcome.Code(c.want) || r.ReplyTS <= r.Event.TS {
			t.Errorf("%s: logged outcome %q reply L=%d apply L=%d", c.name, r.Event.Outcome, r.ReplyTS, r.Event.TS)
		}
	}
	// Failures changed nothing.
	if got := balance(t, b, "123"); got != 100_000 {
		t.Fatalf("balance after failures = %s", got)
	}
	if _, err := b.CreateAccount(ctx, "123", "X", "1234"); !errors.Is(err, outcome.ErrAccountExists) {
		t.Errorf("create existing: %v", err)
	}
	if _, err := b.CreateAccount(ctx, "12a", "X", "1234"); !errors.Is(err, outcome.ErrInvalidAccountID) {
		t.Errorf("create bad id: %v", err)
	}
	if _, err := b.CreateAccount(ctx, "1", "X", "12"); !errors.Is(err, outcome.ErrInvalidPIN) {
		t.Errorf("create bad pin: %v", err)
	}
	if _, err := b.CreateAccount(ctx, "1", " ", "1234"); !errors.Is(err, outcome.ErrInvalidName) {
		t.Errorf("create bad name: %v", err)
	}
	if _, err := b.Verify(context.Background()); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestOverflowChecked(t *testing.T) {
	t.Parallel()
	b, _ := newBank(t)
	max := money.Cents(1<<63 - 1)
	b2 := open(t, filepath.Join(t.TempDir(), "o.db"), bank.Options{MaxAmount: max, NoDefaults: true})
	if _, err := b2.CreateAccount(ctx, "1", "A", "1234"); err != nil {
		t.Fatal(err)
	}
	if _, err := b2.Deposit(ctx, meta(), "1", max); err != nil {
		t.Fatal(err)
	}
	if _, err := b2.Deposit(ctx, meta(), "1", 1); !errors.Is(err, outcome.ErrOverflow) {
		t.Fatalf("overflowing deposit: %v", err)
	}
	if got := balance(t, b2, "1"); got != max {
		t.Fatalf("balance = %d", got)
	}
	_ = b
}

func TestAuthenticateAndLock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{Now: clock})
	r, err := b.Authenticate(ctx, meta(), "123", "1234")
	if err != nil || r.Holder != "Ana Souza" {
		t.Fatalf("login: %+v %v", r, err)
	}
	for left := 2; left >= 1; left-- {
		_, err := b.Authenticate(ctx, meta(), "123", "0000")
		var wp *outcome.WrongPINError
		if !errors.As(err, &wp) || wp.AttemptsLeft != left || !errors.Is(err, outcome.ErrWrongPIN) {
			t.Fatalf("wrong pin: %v (want %d left)", err, left)
		}
	}
	_, err = b.Authenticate(ctx, meta(), "123", "0000")
	var le *outcome.LockedError
	if !errors.As(err, &le) || !le.Until.Equal(now.Add(15*time.Minute)) {
		t.Fatalf("third wrong pin: %v", err)
	}
	// Locked: even the right PIN is refused, and the lock survives a restart.
	b.Close()
	b = open(t, path, bank.Options{Now: clock})
	if _, err := b.Authenticate(ctx, meta(), "123", "1234"); !errors.Is(err, outcome.ErrAccountLocked) {
		t.Fatalf("locked login after restart: %v", err)
	}
	mu.Lock()
	now = now.Add(16 * time.Minute)
	mu.Unlock()
	if _, err := b.Authenticate(ctx, meta(), "123", "1234"); err != nil {
		t.Fatalf("login after lock expired: %v", err)
	}
	var kinds []string
	b.Events(context.Background(), func(e bank.Event) error {
		if e.Account == "123" && (e.Kind == bank.KindLogin || e.Kind == bank.KindLock) {
			kinds = append(kinds, string(e.Kind)+":"+e.Outcome)
		}
		return nil
	})
	// The lock is logged before the refusal that announces it.
	want := "login:ok login:wrong_pin login:wrong_pin lock:ok login:account_locked login:account_locked login:ok"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("log:\n got %s\nwant %s", got, want)
	}
}

func TestIdempotentRequests(t *testing.T) {
	t.Parallel()
	b, _ := newBank(t)
	m := meta()
	r1, err := b.Transfer(ctx, m, "123", "456", 1_000)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.Transfer(ctx, m, "123", "456", 1_000)
	if err != nil || !r2.Duplicate || r2.Event.TS != r1.Event.TS || r2.ReplyTS <= r1.ReplyTS {
		t.Fatalf("retry: %+v %v", r2, err)
	}
	if got := balance(t, b, "123"); got != 99_000 {
		t.Fatalf("applied twice: balance %s", got)
	}
	// A failed first outcome is returned again, even once funds would allow it.
	m = meta()
	if _, err := b.Withdraw(ctx, m, "789", 200_000); !errors.Is(err, outcome.ErrInsufficientFunds) {
		t.Fatal(err)
	}
	b.Deposit(ctx, meta(), "789", 200_000)
	if r, err := b.Withdraw(ctx, m, "789", 200_000); !errors.Is(err, outcome.ErrInsufficientFunds) || !r.Duplicate {
		t.Fatalf("retry of failed withdraw: %v", err)
	}
	// Same id on another account is another request.
	if r, err := b.Deposit(ctx, m, "456", 1); err != nil || r.Duplicate {
		t.Fatalf("same id other account: %+v %v", r, err)
	}
}

func TestRememberedRequestsAreBounded(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{RememberRequests: 3})
	for i := range 5 {
		if _, err := b.Deposit(ctx, bank.Meta{ReqID: fmt.Sprint("d", i)}, "123", 1); err != nil {
			t.Fatal(err)
		}
	}
	// The newest three ids are remembered; the oldest were forgotten.
	for i := 4; i >= 0; i-- {
		r, err := b.Deposit(ctx, bank.Meta{ReqID: fmt.Sprint("d", i)}, "123", 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := i >= 2; r.Duplicate != want {
			t.Errorf("id d%d: duplicate=%v want %v", i, r.Duplicate, want)
		}
	}
}

func TestStatementNewestFirstPaginated(t *testing.T) {
	t.Parallel()
	b, _ := newBank(t)
	for i := 1; i <= 5; i++ {
		b.Deposit(ctx, meta(), "456", money.Cents(i))
	}
	b.Transfer(ctx, meta(), "123", "456", 100)
	b.Withdraw(ctx, meta(), "456", 1_000_000_000) // fails: not an entry
	page, _, err := b.Statement(ctx, meta(), "456", 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Entries {
		got = append(got, fmt.Sprintf("%s:%d", e.Kind, e.Amount))
	}
	if strings.Join(got, " ") != "transfer:100 deposit:5 deposit:4 deposit:3" || page.Next == 0 {
		t.Fatalf("page 1: %v next=%d", got, page.Next)
	}
	page2, _, err := b.Statement(ctx, meta(), "456", page.Next, 4)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, e := range page2.Entries {
		got = append(got, fmt.Sprintf("%s:%d", e.Kind, e.Amount))
	}
	if strings.Join(got, " ") != "deposit:2 deposit:1 deposit:100000 open:0" || page2.Next != 0 {
		t.Fatalf("page 2: %v next=%d", got, page2.Next)
	}
	if _, _, err := b.Statement(ctx, meta(), "999", 0, 4); !errors.Is(err, outcome.ErrAccountNotFound) {
		t.Fatalf("statement of missing account: %v", err)
	}
}

func TestClockResumesAboveRecorded(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	b.Clock().Receive(1_000) // a message from a fast client
	r, err := b.Deposit(ctx, meta(), "123", 1)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = open(t, path, bank.Options{})
	if now := b.Clock().Now(); now < r.ReplyTS {
		t.Fatalf("clock resumed at %d, below recorded %d", now, r.ReplyTS)
	}
	e, err := b.Record(ctx, bank.Event{Kind: bank.KindServerStart})
	if err != nil || e.TS <= r.ReplyTS {
		t.Fatalf("first event after reopen L=%d, last before L=%d (%v)", e.TS, r.ReplyTS, err)
	}
}

func TestDatabaseBusy(t *testing.T) {
	t.Parallel()
	_, path := newBank(t)
	_, err := boltstore.Open(path, boltstore.Options{OpenTimeout: 50 * time.Millisecond})
	if !errors.Is(err, outcome.ErrDatabaseBusy) {
		t.Fatalf("second open: %v", err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				m := bank.Meta{ReqID: fmt.Sprintf("g%d-%d", i, j)}
				switch j % 3 {
				case 0:
					b.Deposit(ctx, m, "123", 100)
				case 1:
					b.Transfer(ctx, m, "123", "789", 70)
				case 2:
					b.Withdraw(ctx, m, "789", 30)
				}
			}
		}()
	}
	wg.Wait()
	rep, err := b.Verify(context.Background())
	if err != nil {
		t.Fatalf("verify after concurrent use: %v", err)
	}
	if rep.Total != rep.Deposits-rep.Withdrawals || rep.Events < 160 {
		t.Fatalf("report %+v", rep)
	}
	b.Close()

	// Alter a balance behind the ledger's back.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		// The balance is the first 8 bytes (big-endian cents) of the
		// account's state record.
		bk := tx.Bucket([]byte("balances"))
		v := append([]byte(nil), bk.Get([]byte("456"))...)
		binary.BigEndian.PutUint64(v, binary.BigEndian.Uint64(v)+100)
		return bk.Put([]byte("456"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	b = open(t, path, bank.Options{})
	_, err = b.Verify(context.Background())
	if err == nil || !strings.Contains(err.Error(), "account 456") {
		t.Fatalf("verify after tampering: %v", err)
	}
}

func TestMoneyFormat(t *testing.T) {
	t.Parallel()
	for c, want := range map[money.Cents]string{
		0: "R$ 0,00", 5: "R$ 0,05", 100: "R$ 1,00", 123456: "R$ 1.234,56", -50: "-R$ 0,50",
		100_000_000: "R$ 1.000.000,00", -1 << 63: "-R$ 92.233.720.368.547.758,08",
	} {
		if got := c.String(); got != want {
			t.Errorf("%d: %q want %q", c, got, want)
		}
	}
}
