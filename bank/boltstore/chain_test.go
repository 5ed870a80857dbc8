package boltstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"atm/bank"
	"atm/bank/boltstore"

	bolt "go.etcd.io/bbolt"
)

// stored is one key and value of a bucket of the file.
type stored struct{ key, val []byte }

// bucketOf reads every key and value of a bucket with bbolt itself.
func bucketOf(t *testing.T, path, bucket string) []stored {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []stored
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error {
			out = append(out, stored{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// change writes to the file with bbolt itself, without syncing (the test
// reads it back at once): fn changes a bucket.
func change(t *testing.T, path, bucket string, fn func(*bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte(bucket))) }); err != nil {
		t.Fatal(err)
	}
}

// verifyFile verifies the file read-only, from its newest checkpoint, or
// in full.
func verifyFile(t *testing.T, path string, full bool) (bank.VerifyReport, error) {
	t.Helper()
	b, err := boltstore.OpenReadOnly(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if full {
		return b.VerifyFull(context.Background())
	}
	return b.Verify(context.Background())
}

// chainedBank makes a file with a log before and after a checkpoint, and
// returns its path, the checkpoint and the number of events after it.
func chainedBank(t *testing.T) (string, bank.Checkpoint, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bank.db")
	b := open(t, path, bank.Options{})
	ops := func(tag string) int {
		steps := []func() error{
			func() error { _, err := b.Deposit(ctx, meta(), "123", 1_000); return err },
			func() error { _, err := b.Transfer(ctx, meta(), "123", "456", 700); return err },
			func() error { b.Withdraw(ctx, meta(), "789", 1_000_000_000); return nil },              // refused
			func() error { b.Authenticate(ctx, bank.Meta{Client: tag}, "456", "0000"); return nil }, // wrong PIN
			func() error { _, err := b.Record(ctx, bank.Event{Kind: bank.KindConnect, Client: tag}); return err },
			func() error { _, err := b.Withdraw(ctx, meta(), "456", 200); return err },
		}
		for i, s := range steps {
			if err := s(); err != nil {
				t.Fatalf("%s step %d: %v", tag, i, err)
			}
		}
		return len(steps)
	}
	ops("atm-before")
	c, _, err := b.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := ops("atm-after")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path, c, n
}

// names reports whether err names the event at ts: "L=<ts>" and not a
// longer number.
func names(err error, ts uint64) bool {
	return err != nil && regexp.MustCompile(fmt.Sprintf(`L=%d\b`, ts)).MatchString(err.Error())
}

// Any one byte of a stored event changed, anywhere in it (its record, its
// hash), is found by Verify when the event is at or after the newest
// checkpoint and by VerifyFull when it is before it, and the error names
// the event; so is a changed byte of the checkpoint's stored state. Each
// byte is changed in two ways: its lowest bit, and all its bits.
func TestEveryChangedByteIsFoundAndNamed(t *testing.T) {
	t.Parallel()
	path, cp, _ := chainedBank(t)
	events := bucketOf(t, path, "events")
	var before, after, last stored
	for i, e := range events {
		ts := binary.BigEndian.Uint64(e.key)
		switch {
		case ts < cp.TS && before.key == nil && i > len(events)/4:
			before = e
		case ts > cp.TS && after.key == nil:
			after = e
		}
	}
	last = events[len(events)-1]
	changes, verifies := 0, 0
	checkpoint := stored{binary.BigEndian.AppendUint64(nil, cp.TS), nil}
	for _, e := range events {
		if bytes.Equal(e.key, checkpoint.key) {
			checkpoint = e
		}
	}
	for _, c := range []struct {
		what string
		ev   stored
		full bool
	}{
		{"an event before the checkpoint", before, true},
		{"the checkpoint's event", checkpoint, false},
		{"an event after the checkpoint", after, false},
		{"the newest event", last, false},
	} {
		ts := binary.BigEndian.Uint64(c.ev.key)
		for i := range c.ev.val {
			for _, mask := range []byte{0x01, 0xff} {
				val := bytes.Clone(c.ev.val)
				val[i] ^= mask
				change(t, path, "events", func(b *bolt.Bucket) error { return b.Put(c.ev.key, val) })
				changes, verifies = changes+1, verifies+1
				if _, err := verifyFile(t, path, c.full); !names(err, ts) {
					t.Fatalf("%s (L=%d), byte %d of %d ^ %#x: verify (full %v): %v, want an error naming L=%d",
						c.what, ts, i, len(val), mask, c.full, err, ts)
				}
			}
		}
		change(t, path, "events", func(b *bolt.Bucket) error { return b.Put(c.ev.key, c.ev.val) })
	}
	state := bucketOf(t, path, "checkpoints")[0]
	for i := range state.val {
		val := bytes.Clone(state.val)
		val[i] ^= 0x01
		change(t, path, "checkpoints", func(b *bolt.Bucket) error { return b.Put(state.key, val) })
		changes++
		for _, full := range []bool{false, true} {
			verifies++
			if _, err := verifyFile(t, path, full); !names(err, cp.TS) {
				t.Fatalf("checkpoint's state, byte %d of %d: verify (full %v): %v, want an error naming L=%d", i, len(val), full, err, cp.TS)
			}
		}
	}
	change(t, path, "checkpoints", func(b *bolt.Bucket) error { return b.Put(state.key, state.val) })
	if _, err := verifyFile(t, path, true); err != nil {
		t.Fatalf("the file as it was: %v", err)
	}
	t.Logf("FIGURES %s: events=%d changed_bytes=%d (4 events, the checkpoint's state) verifies=%d all_found_and_named=%d",
		t.Name(), len(events), changes, verifies, verifies)
}

// An event removed from the log, or two events swapped, is found and the
// error names where the chain breaks; an event removed from the end of the
// log is found too (the file records where its chain ends).
func TestRemovedOrMovedEventsAreFound(t *testing.T) {
	t.Parallel()
	path, cp, _ := chainedBank(t)
	events := bucketOf(t, path, "events")
	var mid int
	for i, e := range events {
		if binary.BigEndian.Uint64(e.key) > cp.TS {
			mid = i + 1
			break
		}
	}
	restore := func() {
		change(t, path, "events", func(b *bolt.Bucket) error {
			for _, e := range events {
				if err := b.Put(e.key, e.val); err != nil {
					return err
				}
			}
			return nil
		})
	}
	ts := func(i int) uint64 { return binary.BigEndian.Uint64(events[i].key) }

	change(t, path, "events", func(b *bolt.Bucket) error { return b.Delete(events[mid].key) })
	if _, err := verifyFile(t, path, false); !names(err, ts(mid+1)) {
		t.Fatalf("event L=%d removed: %v, want an error naming the next event, L=%d", ts(mid), err, ts(mid+1))
	}
	restore()

	change(t, path, "events", func(b *bolt.Bucket) error {
		if err := b.Put(events[mid].key, events[mid+1].val); err != nil {
			return err
		}
		return b.Put(events[mid+1].key, events[mid].val)
	})
	if _, err := verifyFile(t, path, false); !names(err, ts(mid)) {
		t.Fatalf("events L=%d and L=%d swapped: %v, want an error naming L=%d", ts(mid), ts(mid+1), err, ts(mid))
	}
	restore()

	n := len(events) - 1
	change(t, path, "events", func(b *bolt.Bucket) error { return b.Delete(events[n].key) })
	if _, err := verifyFile(t, path, false); err == nil || !bytes.Contains([]byte(err.Error()), []byte("removed from the end")) {
		t.Fatalf("the newest event removed: %v, want an error saying events were removed from the end", err)
	}
	restore()

	if _, err := verifyFile(t, path, true); err != nil {
		t.Fatalf("the file as it was: %v", err)
	}
}

// Verify starts at the newest checkpoint: it reads only the events from
// the checkpoint's on, and needs none before it. With every event before
// the checkpoint deleted from the file (as an archive of the log will),
// Verify still passes, reading the same events, and VerifyFull, which
// starts from the first event, fails naming where the log now starts.
func TestVerifyFromACheckpointReadsOnlyTheLogAfterIt(t *testing.T) {
	t.Parallel()
	path, cp, after := chainedBank(t)
	rep, err := verifyFile(t, path, false)
	if err != nil || rep.FromTS != cp.TS || rep.Events != after+1 || rep.Records != after+1 {
		t.Fatalf("verify from the checkpoint at L=%d: %+v %v, want its event and the %d after it", cp.TS, rep, err, after)
	}
	full, err := verifyFile(t, path, true)
	all := len(bucketOf(t, path, "events"))
	if err != nil || full.Events != all || full.Records != all || full.Checkpoints != 1 {
		t.Fatalf("full verify: %+v %v, want all %d events", full, err, all)
	}
	change(t, path, "events", func(b *bolt.Bucket) error {
		c := b.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < cp.TS; k, _ = c.First() {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	again, err := verifyFile(t, path, false)
	if err != nil || again != rep {
		t.Fatalf("verify from the checkpoint without the events before it: %+v %v, want %+v", again, err, rep)
	}
	if _, err := verifyFile(t, path, true); !names(err, cp.TS) {
		t.Fatalf("full verify without the events before the checkpoint: %v, want an error naming L=%d", err, cp.TS)
	}
}

// A file of storage format 2 (its events without a hash) opens and
// verifies, and verify says that its events are not chained; opened to
// write, it is marked format 3, its events are left as they were, and the
// chain starts at the first event written after. testdata/format2.bbolt was
// written by the atm of format 2.
func TestAFileOfFormat2OpensAndVerifies(t *testing.T) {
	t.Parallel()
	old, err := os.ReadFile("testdata/format2.bbolt")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bank.db")
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, false)
	if err != nil || rep.Events != 15 || rep.Unchained != 15 || rep.Records != 0 || rep.FromTS != 0 {
		t.Fatalf("verify of a format 2 file: %+v %v, want its 15 events replayed, none chained", rep, err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
		t.Fatal("the read-only verify changed the file")
	}

	b := open(t, path, bank.Options{})
	if _, err := b.Deposit(ctx, meta(), "321", 500); err != nil {
		t.Fatal(err)
	}
	if p, _, err := b.Statement(ctx, bank.Meta{}, "321", 0, 10); err != nil || len(p.Entries) != 4 {
		t.Fatalf("statement across the formats: %+v %v", p, err)
	}
	c, _, err := b.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Deposit(ctx, meta(), "321", 500); err != nil {
		t.Fatal(err)
	}
	if rep, err := b.Verify(ctx); err != nil || rep.FromTS != c.TS || rep.Events != 2 || rep.Unchained != 0 {
		t.Fatalf("verify from a checkpoint of an upgraded file: %+v %v", rep, err)
	}
	// Chained: the deposit, the statement's read, the checkpoint, the deposit.
	if rep, err := b.VerifyFull(ctx); err != nil || rep.Unchained != 15 || rep.Records != 4 || rep.Events != 19 {
		t.Fatalf("full verify of an upgraded file: %+v %v, want 15 events unchained, then 4 chained", rep, err)
	}
	b.Close()
	for _, kv := range bucketOf(t, path, "meta") {
		if string(kv.key) == "format" && binary.BigEndian.Uint64(kv.val) != 3 {
			t.Fatalf("format after an open to write: %d, want 3", binary.BigEndian.Uint64(kv.val))
		}
	}
	// An old event's hash cannot be stripped from a new one unseen.
	events := bucketOf(t, path, "events")
	e := events[len(events)-2]
	val := bytes.Clone(e.val[:len(e.val)-32])
	val[0] &^= 0x80
	change(t, path, "events", func(b *bolt.Bucket) error { return b.Put(e.key, val) })
	if _, err := verifyFile(t, path, true); !names(err, binary.BigEndian.Uint64(e.key)) {
		t.Fatalf("a chained event made to look unchained: %v", err)
	}
}
