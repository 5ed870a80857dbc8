package boltstore_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"testing"

	"atm/bank"
	"atm/bank/archive"
	"atm/bank/boltstore"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

// eventsOf lists the live log of b as JSON texts.
func eventsOf(t *testing.T, b interface {
	Events(context.Context, func(bank.Event) error) error
}) []string {
	t.Helper()
	var out []string
	if err := b.Events(ctx, func(e bank.Event) error {
		j, _ := json.Marshal(e)
		out = append(out, string(j))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// archived lists every event of the archive in dir as JSON texts.
func archived(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := archive.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		if _, err := archive.Read(dir, s.Name, boltstore.Codec, func(e bank.Event) error {
			j, _ := json.Marshal(e)
			out = append(out, string(j))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Archiving moves the oldest events into segments and deletes them from
// the file: the archive followed by the live log is the log as it was,
// each event once; at least Keep events and every remembered request stay
// live; a repeated request is still recognised; and a segment written
// before a crash stopped its events' deletion is finished by the next run,
// not written again.
func TestArchiveMovesTheOldestEvents(t *testing.T) {
	t.Parallel()
	b := open(t, filepath.Join(t.TempDir(), "bank.db"), bank.Options{RememberRequests: 10})
	for i := range 300 {
		m := meta()
		if i == 295 {
			m.ReqID = "late"
		}
		if _, err := b.Deposit(ctx, m, "123", 1); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	// Nothing is archived before a checkpoint: verify starts from one.
	if res, err := archive.Run(ctx, b, archive.Options{Dir: dir, Keep: 40, Per: 100}); err != nil || res.Records != 0 {
		t.Fatalf("archive without a checkpoint: %+v %v", res, err)
	}
	if _, _, err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	before := eventsOf(t, b)
	res, err := archive.Run(ctx, b, archive.Options{Dir: dir, Keep: 40, Per: 100})
	if err != nil {
		t.Fatal(err)
	}
	live := eventsOf(t, b)
	if got := append(archived(t, dir), live...); len(got) != len(before) || res.Records != len(before)-len(live) {
		t.Fatalf("archive (%d) + live (%d) = %d events, the log had %d", res.Records, len(live), len(got), len(before))
	} else {
		for i := range got {
			if got[i] != before[i] {
				t.Fatalf("event %d: %s, want %s", i, got[i], before[i])
			}
		}
	}
	if len(live) < 40 || len(live) > 41 || len(res.Segments) != 3 {
		t.Fatalf("%d events live, %d segments", len(live), len(res.Segments))
	}
	if _, err := b.Verify(ctx); err != nil {
		t.Fatalf("verify after archiving: %v", err)
	}
	again, err := archive.Run(ctx, b, archive.Options{Dir: dir, Keep: 40, Per: 100})
	if err != nil || again.Records != 0 {
		t.Fatalf("a second run: %+v %v", again, err)
	}
	// A statement pages down to where the online history ends, and says so.
	marks, _ := b.Live(ctx)
	var entries int
	var cursor uint64
	for {
		page, _, err := b.Statement(ctx, meta(), "123", cursor, 7)
		if err != nil {
			t.Fatalf("statement before %d after archiving: %v", cursor, err)
		}
		for _, e := range page.Entries {
			if e.TS <= marks["bank"].Through {
				t.Fatalf("an archived entry L=%d in the statement", e.TS)
			}
		}
		entries += len(page.Entries)
		if page.Next == 0 {
			if !page.Archived {
				t.Fatalf("the last page does not say that older entries are archived: %+v", page)
			}
			break
		}
		cursor = page.Next
	}
	if entries == 0 || entries > len(live) {
		t.Fatalf("%d entries online, %d live events", entries, len(live))
	}
	// Any cursor below the live log's start is an empty, archived page.
	if page, _, err := b.Statement(ctx, meta(), "123", 2, 7); err != nil || len(page.Entries) != 0 || !page.Archived {
		t.Fatalf("statement before 2: %+v %v", page, err)
	}
	r, err := b.Deposit(ctx, bank.Meta{ReqID: "late", Client: "test"}, "123", 1)
	if err != nil || !r.Duplicate {
		t.Fatalf("a remembered request after archiving: %+v %v", r, err)
	}
	// A crash after a segment was written, before its events went: the
	// next run forgets them, and writes nothing twice.
	for range 100 {
		if _, err := b.Deposit(ctx, meta(), "456", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	before = append(archived(t, dir), eventsOf(t, b)...)
	marks, _ = b.Live(ctx)
	m := marks["bank"]
	page, err := b.ChainRecords(ctx, "bank", m.Through, 50)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Write(dir, "bank", page, m.Hash, b); err != nil {
		t.Fatal(err)
	}
	res, err = archive.Run(ctx, b, archive.Options{Dir: dir, Keep: 40, Per: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := append(archived(t, dir), eventsOf(t, b)...); len(got) != len(before) {
		t.Fatalf("after the crash: archive + live = %d events, the log had %d", len(got), len(before))
	} else {
		for i := range got {
			if got[i] != before[i] {
				t.Fatalf("after the crash, event %d: %s, want %s", i, got[i], before[i])
			}
		}
	}
	if _, err := archive.Check(dir, b, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx); err != nil {
		t.Fatalf("verify after archiving: %v", err)
	}
}

// Archiving forgets the statement marks of the entries it archives, so
// that what a cold start walks is the live history only; statements still
// read right from any cursor.
func TestArchiveForgetsArchivedMarks(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bank.db")
	b, err := boltstore.Open(path, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost, RememberRequests: 10}})
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if _, err := b.Deposit(ctx, meta(), "123", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := archive.Run(ctx, b, archive.Options{Dir: t.TempDir(), Keep: 20, Per: 50}); err != nil || res.Records < 150 {
		t.Fatalf("archive: %+v %v", res, err)
	}
	for _, before := range []uint64{0, 2, 150, 300, 1 << 40} {
		if _, _, err := b.Statement(ctx, meta(), "123", before, 5); err != nil {
			t.Fatalf("statement before %d: %v", before, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		through := binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("archived")))
		tx.Bucket([]byte("marks")).ForEach(func(k, _ []byte) error {
			if ts := binary.BigEndian.Uint64(k[len(k)-8:]); ts <= through {
				t.Errorf("a mark at L=%d, archived (the live log starts after L=%d)", ts, through)
			}
			return nil
		})
		if through == 0 {
			t.Error("nothing archived")
		}
		return nil
	})
}
