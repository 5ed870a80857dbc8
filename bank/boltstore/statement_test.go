package boltstore_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/money"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
	"pgregory.net/rapid"
)

// logEntries reads every account's statement entries from the log, newest
// first: its open event and its successful money events, a transfer being
// an entry of both its accounts.
func logEntries(t interface {
	Helper()
	Fatal(...any)
}, b *boltstore.Bank) map[string][]bank.Event {
	t.Helper()
	entries := map[string][]bank.Event{}
	err := b.Events(ctx, func(e bank.Event) error {
		if e.Outcome != outcome.OutcomeOK || (e.Kind != bank.KindOpen && !e.Kind.IsMoney()) {
			return nil
		}
		entries[e.Account] = append(entries[e.Account], e)
		if e.Kind == bank.KindTransfer && e.To != e.Account {
			entries[e.To] = append(entries[e.To], e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, es := range entries {
		slices.Reverse(es)
	}
	return entries
}

// wantPage is the page of account id's entries (newest first) below
// before, by brute force.
func wantPage(entries []bank.Event, id string, before uint64, limit int) bank.StatementPage {
	var p bank.StatementPage
	for _, e := range entries {
		if (before == 0 || e.TS < before) && !p.Add(e, id, limit) {
			break
		}
	}
	return p
}

func pageTS(p bank.StatementPage) string {
	ts := make([]uint64, len(p.Entries))
	for i, e := range p.Entries {
		ts[i] = e.TS
	}
	return fmt.Sprintf("%v next=%d", ts, p.Next)
}

// cursors returns the cursors worth trying on entries (newest first): 0,
// every entry's timestamp, the one above it (a page's cursor), the two
// below it and the one two above (between entries: an entry's TS+1 is its
// reply's tick), below the oldest entry, above the newest and huge.
func cursors(entries []bank.Event) []uint64 {
	c := []uint64{0, 1, 2, 1 << 53, math.MaxUint64 - 1, math.MaxUint64}
	for _, e := range entries {
		c = append(c, e.TS-2, e.TS-1, e.TS, e.TS+1, e.TS+2)
	}
	if len(entries) > 0 {
		c = append(c, entries[0].TS+3, entries[0].TS+1000)
	}
	slices.Sort(c)
	return slices.Compact(c)
}

// checkStatements asks for a page of every account in entries from every
// cursor, at several page sizes, from 16 callers at once, and compares each
// with the page by brute force.
func checkStatements(t *testing.T, b *boltstore.Bank, entries map[string][]bank.Event) {
	t.Helper()
	type query struct {
		id     string
		before uint64
		limit  int
	}
	queries := make(chan query)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for q := range queries {
				got, _, err := b.Statement(ctx, bank.Meta{Client: "test"}, q.id, q.before, q.limit)
				if err != nil {
					t.Errorf("statement of %s before %d: %v", q.id, q.before, err)
					continue
				}
				want := wantPage(entries[q.id], q.id, q.before, q.limit)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("statement of %s before %d, %d entries:\n got %s\nwant %s", q.id, q.before, q.limit, pageTS(got), pageTS(want))
				}
			}
		})
	}
	for _, id := range slices.Sorted(maps.Keys(entries)) {
		for _, before := range cursors(entries[id]) {
			for _, limit := range []int{1, 5, 20, 100} {
				queries <- query{id, before, limit}
			}
		}
	}
	close(queries)
	wg.Wait()
}

// fill gives account "1" 162 statement entries, "2" 82 and "3" 14, among
// refused operations and reads that are none, from several callers at
// once; "4" has its open event only.
func fill(t *testing.T, b *boltstore.Bank) {
	t.Helper()
	for _, id := range []string{"1", "2", "3", "4"} {
		if _, err := b.CreateAccount(ctx, id, "Holder "+id, "1234"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"1", "2"} {
		if _, err := b.Deposit(ctx, bank.Meta{ReqID: "first"}, id, 1_000); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < 200; i += 8 {
				m := func(kind string) bank.Meta { return bank.Meta{ReqID: fmt.Sprint(kind, i), Client: "fill"} }
				done := func(_ bank.Receipt, err error) {
					if err != nil {
						t.Error(err)
					}
				}
				refused := func(_ bank.Receipt, err error) {
					if err == nil {
						t.Error("not refused")
					}
				}
				switch i % 5 {
				case 0, 1:
					done(b.Deposit(ctx, m("d"), "1", money.Cents(100+i)))
				case 2:
					done(b.Transfer(ctx, m("t"), "1", "2", 3))
				case 3:
					refused(b.Withdraw(ctx, m("w"), "2", 1_000_000))
					refused(b.Transfer(ctx, m("s"), "3", "3", 1)) // to itself
					if i%3 == 0 {
						done(b.Deposit(ctx, m("d"), "3", 5))
					}
				case 4:
					done(b.Balance(ctx, m("b"), "1"))
					done(b.Transfer(ctx, m("t"), "2", "1", 1))
				}
			}
		})
	}
	wg.Wait()
}

// Every cursor gives the page the log gives by brute force: 0, an entry's
// timestamp, a page's cursor, a timestamp between entries, below the
// oldest, above the newest and huge, on accounts with many entries, with
// few and with their open event only.
func TestStatementFromAnyCursor(t *testing.T) {
	t.Parallel()
	b := open(t, filepath.Join(t.TempDir(), "bank.db"), bank.Options{NoDefaults: true})
	fill(t, b)
	entries := logEntries(t, b)
	if n := len(entries["1"]); n < 150 {
		t.Fatalf("account 1 has %d entries; the test wants many", n)
	}
	checkStatements(t, b, entries)
}

// A statement from a cursor between entries reads at most 32 entries above
// it, whatever the account's length: with every entry of the account above
// those 32 taken out of the file's log, the page below the cursor is still
// whole.
func TestStatementReadsFewEntriesAboveItsCursor(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{NoDefaults: true})
	fill(t, b)
	entries := logEntries(t, b)
	b.Close()
	checkShortWalks(t, path, "1", entries["1"])
}

// checkShortWalks checks that statements of account id (with these
// entries, newest first, in the closed file at path) from cursors between
// entries read at most 32 entries above the cursor: it takes the others
// above it out of the log, reads the page below the cursor, and puts them
// back.
func checkShortWalks(t *testing.T, path, id string, entries []bank.Event) {
	t.Helper()
	for i := 1; i < len(entries); i += 3 {
		// Below entries[i-1], above entries[i]: TS+1 is entries[i]'s
		// reply tick, so TS+2 is not the cursor of a page.
		before := entries[i].TS + 2
		far := entries[:max(0, i-32)]
		var saved [][]byte
		edit(t, path, func(events *bolt.Bucket) error {
			for _, e := range far {
				k := binary.BigEndian.AppendUint64(nil, e.TS)
				saved = append(saved, slices.Clone(events.Get(k)))
				if err := events.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		b, err := boltstore.Open(path, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := b.Statement(ctx, bank.Meta{}, id, before, 5)
		b.Close()
		if err != nil {
			t.Fatalf("statement of %s before %d, with the %d entries above the 32 nearest taken out: %v", id, before, len(far), err)
		}
		if want := wantPage(entries, id, before, 5); !reflect.DeepEqual(got, want) {
			t.Fatalf("statement of %s before %d:\n got %s\nwant %s", id, before, pageTS(got), pageTS(want))
		}
		edit(t, path, func(events *bolt.Bucket) error {
			for j, e := range far {
				if err := events.Put(binary.BigEndian.AppendUint64(nil, e.TS), saved[j]); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// edit changes the events of the closed bank file at path with fn.
func edit(t *testing.T, path string, fn func(events *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte("events"))) }); err != nil {
		t.Fatal(err)
	}
}

// A statement sees exactly the entries applied before it, whatever its
// cursor, while other operations (and their marks) are still on their way
// to the disk: random operations and statements, some from several
// callers at once, on a bank reopened with a random batch size; each page
// is checked against the log, cut at the statement's own timestamp.
func TestStatementProperties(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		path := filepath.Join(dir, fmt.Sprintf("s%d.db", run))
		opts := boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost, NoDefaults: true}}
		b, err := boltstore.Open(path, opts)
		if err != nil {
			rt.Fatal(err)
		}
		ids := []string{"1", "2", "3"}
		for _, id := range ids {
			if _, err := b.CreateAccount(ctx, id, "Holder "+id, "1234"); err != nil {
				rt.Fatal(err)
			}
		}
		// Enough entries for a few marks, deposited at once.
		var wg sync.WaitGroup
		for i, id := range ids[:2] {
			for j := range rapid.IntRange(0, 90).Draw(rt, "entries of "+id) {
				wg.Go(func() {
					if _, err := b.Deposit(ctx, bank.Meta{ReqID: fmt.Sprint("seed", i, "-", j)}, id, 1_000); err != nil {
						rt.Error(err)
					}
				})
			}
		}
		wg.Wait()
		b.Close()
		opts.MaxBatch = rapid.IntRange(1, 16).Draw(rt, "maxBatch")
		if b, err = boltstore.Open(path, opts); err != nil {
			rt.Fatal(err)
		}
		defer b.Close()

		type stmt struct {
			id     string
			before uint64
			limit  int
			at     uint64 // the statement's own timestamp
			page   bank.StatementPage
		}
		var mu sync.Mutex
		var stmts []stmt
		genOp := rapid.Custom(func(rt *rapid.T) func(req string) {
			kind := rapid.IntRange(0, 4).Draw(rt, "kind")
			id := rapid.SampledFrom(ids).Draw(rt, "id")
			to := rapid.SampledFrom(ids).Draw(rt, "to")
			amount := money.Cents(rapid.Int64Range(1, 3_000).Draw(rt, "amount"))
			cursor := rapid.IntRange(0, 4).Draw(rt, "cursor")
			near := rapid.Int64Range(-3, 3).Draw(rt, "near")
			limit := rapid.IntRange(1, 30).Draw(rt, "limit")
			return func(req string) {
				m := bank.Meta{ReqID: req, Client: "prop"}
				var err error
				switch kind {
				case 0:
					_, err = b.Deposit(ctx, m, id, amount)
				case 1:
					_, err = b.Withdraw(ctx, m, id, amount)
				case 2:
					_, err = b.Transfer(ctx, m, id, to, amount)
				default:
					now := int64(b.Clock().Now())
					var before uint64
					switch cursor {
					case 1: // near an earlier timestamp
						before = uint64(max(0, now/2+near))
					case 2: // near the newest
						before = uint64(max(0, now+near))
					case 3:
						before = math.MaxUint64 - uint64(3+near)
					case 4: // a page's cursor
						mu.Lock()
						if len(stmts) > 0 {
							before = stmts[len(stmts)-1].page.Next
						}
						mu.Unlock()
					}
					var page bank.StatementPage
					var r bank.Receipt
					page, r, err = b.Statement(ctx, m, id, before, limit)
					if err == nil {
						mu.Lock()
						stmts = append(stmts, stmt{id, before, limit, r.Event.TS, page})
						mu.Unlock()
					}
				}
				if err != nil && !errors.Is(err, outcome.ErrInsufficientFunds) && !errors.Is(err, outcome.ErrSameAccount) {
					rt.Errorf("%v", err)
				}
			}
		})
		for s := range rapid.IntRange(1, 10).Draw(rt, "steps") {
			ops := rapid.SliceOfN(genOp, 1, 12).Draw(rt, "ops")
			if rapid.Bool().Draw(rt, "concurrent") {
				var wg sync.WaitGroup
				for i, o := range ops {
					wg.Go(func() { o(fmt.Sprintf("s%d-%d", s, i)) })
				}
				wg.Wait()
			} else {
				for i, o := range ops {
					o(fmt.Sprintf("s%d-%d", s, i))
				}
			}
		}
		entries := logEntries(rt, b)
		for _, s := range stmts {
			var applied []bank.Event // the entries applied before the statement
			for _, e := range entries[s.id] {
				if e.TS < s.at {
					applied = append(applied, e)
				}
			}
			want := wantPage(applied, s.id, s.before, s.limit)
			if !reflect.DeepEqual(s.page, want) {
				rt.Fatalf("statement of %s before %d, %d entries, at %d:\n got %s\nwant %s", s.id, s.before, s.limit, s.at, pageTS(s.page), pageTS(want))
			}
		}
	})
}

// downgrade rewrites a closed bank file in storage format 2, the layout of
// the version before statement marks: no marks bucket, account states
// without their entry count (balance, newest entry, name), format 2.
func downgrade(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("marks")); err != nil {
			return err
		}
		st := tx.Bucket([]byte("balances"))
		old := map[string][]byte{}
		st.ForEach(func(k, v []byte) error {
			old[string(k)] = append(slices.Clip(v[:16:16]), v[24:]...)
			return nil
		})
		for k, v := range old {
			if err := st.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("format"), binary.BigEndian.AppendUint64(nil, 2))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fileFormat reads the storage format of a closed bank file, and whether
// it has statement marks.
func fileFormat(t *testing.T, path string) (format uint64, marks int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		format = binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("format")))
		if m := tx.Bucket([]byte("marks")); m != nil {
			marks = m.Stats().KeyN
		}
		return nil
	})
	return format, marks
}

// allPages reads every page of every account from every cursor worth
// trying, one caller.
func allPages(t *testing.T, b *boltstore.Bank, entries map[string][]bank.Event) []bank.StatementPage {
	t.Helper()
	var pages []bank.StatementPage
	for _, id := range slices.Sorted(maps.Keys(entries)) {
		for _, before := range cursors(entries[id]) {
			p, _, err := b.Statement(ctx, bank.Meta{}, id, before, 7)
			if err != nil {
				t.Fatalf("statement of %s before %d: %v", id, before, err)
			}
			pages = append(pages, p)
		}
	}
	return pages
}

// A file of the format before statement marks is upgraded when opened
// for writing, once: its statements are the same from every cursor, it
// verifies, and new entries are marked on from where the upgrade left
// off. OpenReadOnly reads such a file as it is, without writing to it.
func TestUpgradeFromFormat2(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{NoDefaults: true})
	fill(t, b)
	entries := logEntries(t, b)
	before := allPages(t, b, entries)
	b.Close()
	if _, m := fileFormat(t, path); m != wantMarks(entries) {
		t.Fatalf("%d marks; want %d", m, wantMarks(entries))
	}
	downgrade(t, path)

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := boltstore.OpenReadOnly(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("OpenReadOnly of format 2: %v", err)
	}
	accts, err := ro.Accounts(ctx)
	if err != nil || len(accts) != 4 || accts[0].ID != "1" || accts[0].Balance != balanceOf(entries["1"], "1") {
		t.Fatalf("accounts of format 2, read only: %v %v", accts, err)
	}
	if _, err := ro.Verify(ctx); err != nil {
		t.Fatalf("verify format 2, read only: %v", err)
	}
	ro.Close()
	if after, _ := os.ReadFile(path); !bytes.Equal(after, raw) {
		t.Fatal("OpenReadOnly changed a file of format 2")
	}

	b = open(t, path, bank.Options{NoDefaults: true})
	if _, err := b.Verify(ctx); err != nil {
		t.Fatalf("verify after the upgrade: %v", err)
	}
	if after := allPages(t, b, entries); !reflect.DeepEqual(after, before) {
		t.Fatal("statements differ after the upgrade")
	}
	checkStatements(t, b, entries)
	// New entries, past the next marks of account 1 and 2.
	for i := range 70 {
		if _, err := b.Transfer(ctx, bank.Meta{ReqID: fmt.Sprint("n", i)}, "1", "2", 1); err != nil {
			t.Fatal(err)
		}
	}
	entries = logEntries(t, b)
	checkStatements(t, b, entries)
	b.Close()
	if f, m := fileFormat(t, path); f != 3 || m != wantMarks(entries) {
		t.Fatalf("after the upgrade and 70 transfers: format %d, %d marks; want 3 and %d", f, m, wantMarks(entries))
	}
	checkShortWalks(t, path, "1", entries["1"])
	checkShortWalks(t, path, "2", entries["2"])
}

// wantMarks is the number of marks of accounts with these entries: one
// every 32 entries of each.
func wantMarks(entries map[string][]bank.Event) int {
	n := 0
	for _, es := range entries {
		n += len(es) / 32
	}
	return n
}

// balanceOf is account id's balance after its newest entry.
func balanceOf(entries []bank.Event, id string) money.Cents {
	if entries[0].Account == id {
		return entries[0].Balance
	}
	return entries[0].ToBalance
}

// A bank file written by the version before statement marks (testdata/
// format2.db.gz: the default accounts and 1001, then 240 deposits,
// transfers (some refused: to the account itself), withdrawals refused and
// not, balances and statements, by that version's boltstore.Open; 123 has
// 122 entries and 1001 11, too few for a mark) is upgraded and gives every
// statement the log gives.
func TestUpgradeOfAFileOfFormat2(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	gunzip(t, "testdata/format2.db.gz", path)
	if f, m := fileFormat(t, path); f != 2 || m != 0 {
		t.Fatalf("testdata: format %d with %d marks", f, m)
	}
	b := open(t, path, bank.Options{})
	if _, err := b.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	entries := logEntries(t, b)
	if len(entries["123"]) < 100 || len(entries["1001"]) >= 32 {
		t.Fatalf("testdata: %d entries of 123, %d of 1001", len(entries["123"]), len(entries["1001"]))
	}
	checkStatements(t, b, entries)
	b.Close()
	if f, m := fileFormat(t, path); f != 3 || m != wantMarks(entries) {
		t.Fatalf("after the upgrade: format %d with %d marks; want 3 and %d", f, m, wantMarks(entries))
	}
}

func gunzip(t *testing.T, from, to string) {
	t.Helper()
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, z); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// An upgrade that finds damage fails Open naming it and writes nothing:
// the file stays of format 2, and OpenReadOnly still reads it. An older
// format, or a newer one, is refused naming it.
func TestUpgradeOfADamagedFileChangesNothing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	for i := range 40 {
		if _, err := b.Deposit(ctx, meta(), "456", money.Cents(1+i)); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	downgrade(t, path)
	// 456's newest entry now names an entry that is not in the log.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		st := tx.Bucket([]byte("balances"))
		v := slices.Clone(st.Get([]byte("456")))
		binary.BigEndian.PutUint64(v[8:], binary.BigEndian.Uint64(v[8:])+1)
		return st.Put([]byte("456"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	_, err = boltstore.Open(path, boltstore.Options{})
	want := "upgrade from storage format 2 to 3: account 456: statement entry"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "(damaged file)") {
		t.Fatalf("Open of a damaged file of format 2: %v; want it to say %q", err, want)
	}
	if f, m := fileFormat(t, path); f != 2 || m != 0 {
		t.Fatalf("after a failed upgrade: format %d with %d marks", f, m)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, raw) {
		t.Fatal("a failed upgrade changed the file")
	}
	ro, err := boltstore.OpenReadOnly(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()

	for _, f := range []uint64{1, 4} {
		damage(t, path, "meta", []byte("format"), binary.BigEndian.AppendUint64(nil, f))
		want := fmt.Sprintf("the file is in storage format %d; this version reads format 3, and format 2", f)
		if _, err := boltstore.Open(path, boltstore.Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Open of format %d: %v", f, err)
		}
		if _, err := boltstore.OpenReadOnly(path, boltstore.Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("OpenReadOnly of format %d: %v", f, err)
		}
	}
}

// A damaged mark is reported by the statements that read it, naming the
// damage.
func TestDamagedMarkIsAnError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	for i := range 40 {
		if _, err := b.Deposit(ctx, meta(), "456", money.Cents(1+i)); err != nil {
			t.Fatal(err)
		}
	}
	es := logEntries(t, b)["456"]
	oldest := es[len(es)-1].TS // 456's open event
	b.Close()
	// A key of 456's marks (the length of the id, the id, a timestamp) one
	// byte too long, the first at or above 456's oldest entry.
	key := binary.BigEndian.AppendUint64([]byte("\x03456"), oldest)
	damage(t, path, "marks", append(key, 0xff), []byte{})
	b = open(t, path, bank.Options{})
	_, _, err := b.Statement(ctx, bank.Meta{}, "456", oldest, 5)
	want := fmt.Sprintf("statement marks: key %xff is 13 bytes, not 12 (damaged file)", key)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("statement through a damaged mark: %v; want it to say %q", err, want)
	}
	// The bank carries on: an operation alone after the failed one, and
	// after batches of several, is applied at once.
	for i := range 20 {
		var wg sync.WaitGroup
		for j := range 16 {
			wg.Go(func() {
				if _, err := b.Deposit(ctx, bank.Meta{ReqID: fmt.Sprint("b", i, "-", j)}, "123", 1); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if _, _, err := b.Statement(ctx, bank.Meta{}, "456", oldest, 5); err == nil {
			t.Fatal("statement through a damaged mark: no error")
		}
		alone, cancel := context.WithTimeout(ctx, 30*time.Second) // not a measure: a bound on a hang
		_, err := b.Deposit(alone, bank.Meta{ReqID: fmt.Sprint("a", i)}, "123", 1)
		cancel()
		if err != nil {
			t.Fatalf("deposit alone after a failed operation: %v", err)
		}
	}
}
