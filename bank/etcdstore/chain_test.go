package etcdstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"atm/bank"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
)

// segKV is a segment as stored: its key, the timestamp its key names,
// and its value.
type segKV struct {
	key string
	ts  uint64
	val []byte
}

// segmentsOf reads proc's segments in key order.
func segmentsOf(t *testing.T, cli *clientv3.Client, prefix, proc string) []segKV {
	t.Helper()
	resp, err := cli.Get(ctx, prefix+"log/"+proc+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out []segKV
	for _, kv := range resp.Kvs {
		ts, err := strconv.ParseUint(strings.TrimPrefix(string(kv.Key), prefix+"log/"+proc+"/"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, segKV{string(kv.Key), ts, kv.Value})
	}
	return out
}

// names reports whether err names the event at ts of proc.
func names(err error, ts uint64, proc string) bool {
	return err != nil && regexp.MustCompile(fmt.Sprintf(`L=%d/%s\b`, ts, regexp.QuoteMeta(proc))).MatchString(err.Error())
}

// steps runs n operations on l, one transaction each, tagged tag.
func steps(t *testing.T, l *Ledger, tag string, n int) {
	t.Helper()
	for i := range n {
		var err error
		switch i % 3 {
		case 0:
			_, err = l.Deposit(ctx, meta(fmt.Sprint(tag, i)), "123", 100)
		case 1:
			_, err = l.Transfer(ctx, meta(fmt.Sprint(tag, i)), "123", "456", 30)
		case 2:
			_, err = l.Record(ctx, bank.Event{Kind: bank.KindConnect, Client: "atm-" + tag})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Any one byte of a stored segment changed (its frame, its hashes, its
// events) is found and the error names the segment: its first event's
// timestamp and its server. A segment at or after the newest checkpoint
// is checked by Verify, one before it by VerifyFull.
func TestEveryChangedByteOfASegmentIsFound(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	steps(t, l, "before", 3)
	cp, _, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps(t, l, "after", 3)
	segs := segmentsOf(t, cli, "atm/", "s1")
	var before, at, after segKV
	for i, s := range segs {
		if s.ts == cp.TS {
			at, before, after = s, segs[i-1], segs[i+1]
		}
	}
	changes, verifies := 0, 0
	for _, c := range []struct {
		what string
		seg  segKV
		full bool
	}{
		{"a segment before the checkpoint", before, true},
		{"the checkpoint's segment", at, false},
		{"a segment after the checkpoint", after, false},
	} {
		for i := range c.seg.val {
			val := bytes.Clone(c.seg.val)
			val[i] ^= 0x01
			if _, err := cli.Put(ctx, c.seg.key, string(val)); err != nil {
				t.Fatal(err)
			}
			verify := l.Verify
			if c.full {
				verify = l.VerifyFull
			}
			changes, verifies = changes+1, verifies+1
			if _, err := verify(ctx); !names(err, c.seg.ts, "s1") {
				t.Fatalf("%s (L=%d), byte %d of %d (%q): verify (full %v): %v, want an error naming L=%d/s1",
					c.what, c.seg.ts, i, len(val), val[max(0, i-10):min(len(val), i+10)], c.full, err, c.seg.ts)
			}
		}
		if _, err := cli.Put(ctx, c.seg.key, string(c.seg.val)); err != nil {
			t.Fatal(err)
		}
	}
	state, err := cli.Get(ctx, "atm/checkpoints/", clientv3.WithPrefix())
	if err != nil || len(state.Kvs) != 1 {
		t.Fatalf("checkpoints: %v %v", state, err)
	}
	kv := state.Kvs[0]
	for i := range kv.Value {
		val := bytes.Clone(kv.Value)
		val[i] ^= 0x01
		if _, err := cli.Put(ctx, string(kv.Key), string(val)); err != nil {
			t.Fatal(err)
		}
		changes++
		for _, verify := range []func(context.Context) (bank.VerifyReport, error){l.Verify, l.VerifyFull} {
			verifies++
			if _, err := verify(ctx); !names(err, cp.TS, "s1") {
				t.Fatalf("checkpoint's state, byte %d of %d: verify: %v, want an error naming L=%d/s1", i, len(val), err, cp.TS)
			}
		}
	}
	if _, err := cli.Put(ctx, string(kv.Key), string(kv.Value)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.VerifyFull(ctx); err != nil {
		t.Fatalf("the bank as it was: %v", err)
	}
	t.Logf("FIGURES %s: segments=%d changed_bytes=%d (3 segments, the checkpoint's state) verifies=%d all_found_and_named=%d",
		t.Name(), len(segs), changes, verifies, verifies)
}

// A segment removed, made void or moved to another key breaks its
// server's chain, and the error names where; a void segment that settle
// writes between two segments does not.
func TestRemovedOrMovedSegmentsAreFound(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	steps(t, l, "a", 6)
	segs := segmentsOf(t, cli, "atm/", "s1")
	n := len(segs) - 3
	put := func(key, val string) {
		t.Helper()
		if _, err := cli.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	restore := func() {
		t.Helper()
		for _, s := range segs {
			put(s.key, string(s.val))
		}
	}

	if _, err := cli.Delete(ctx, segs[n].key); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Verify(ctx); !names(err, segs[n+1].ts, "s1") {
		t.Fatalf("segment L=%d removed: %v, want an error naming the next one, L=%d/s1", segs[n].ts, err, segs[n+1].ts)
	}
	restore()

	put(segs[n].key, voidSegment)
	if _, err := l.Verify(ctx); !names(err, segs[n+1].ts, "s1") {
		t.Fatalf("segment L=%d made void: %v, want an error naming the next one, L=%d/s1", segs[n].ts, err, segs[n+1].ts)
	}
	restore()

	put(segs[n].key, string(segs[n+1].val))
	put(segs[n+1].key, string(segs[n].val))
	if _, err := l.Verify(ctx); !names(err, segs[n].ts, "s1") {
		t.Fatalf("segments L=%d and L=%d swapped: %v, want an error naming L=%d/s1", segs[n].ts, segs[n+1].ts, err, segs[n].ts)
	}
	restore()

	// What settle leaves of a transaction that never committed: a void
	// segment at a key between two (the first reply tick after segs[n]'s
	// events is no event's timestamp).
	var events []bank.Event
	framed, _ := decodeSegment(segs[n].val)
	if err := json.Unmarshal(framed.events, &events); err != nil {
		t.Fatal(err)
	}
	put(l.segmentKey("s1", events[len(events)-1].ReplyTS), voidSegment)
	if rep, err := l.Verify(ctx); err != nil || rep.Records != len(segs) {
		t.Fatalf("a void segment between two: %+v %v, want the chain to go on past it", rep, err)
	}
}

// Verify starts each server's chain after the head the newest checkpoint
// recorded for it, so it needs no segment before: with every segment the
// checkpoint covers deleted (as an archive of the log will), it reads
// the same events and passes, and VerifyFull fails naming where a chain
// now starts.
func TestVerifyFromACheckpointReadsOnlyTheSegmentsAfterIt(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	s1 := open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	s2 := open(t, cli, Options{Options: bank.Options{ProcessID: "s2"}})
	steps(t, s1, "s1-", 4)
	steps(t, s2, "s2-", 4)
	cp, _, err := s2.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps(t, s1, "s1-after-", 3)
	steps(t, s2, "s2-after-", 2)
	rep, err := s1.Verify(ctx)
	if err != nil || rep.FromTS != cp.TS || rep.FromProc != "s2" || rep.Events != 6 || rep.Records != 6 {
		t.Fatalf("verify from s2's checkpoint at L=%d: %+v %v, want its event and the 5 after it in 6 segments", cp.TS, rep, err)
	}
	if _, err := s1.VerifyFull(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range cp.Heads {
		for _, s := range segmentsOf(t, cli, "atm/", h.Chain) {
			if s.ts <= h.TS {
				if _, err := cli.Delete(ctx, s.key); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	again, err := s1.Verify(ctx)
	if err != nil || again != rep {
		t.Fatalf("verify without the segments before the checkpoint: %+v %v, want %+v", again, err, rep)
	}
	if _, err := s1.VerifyFull(ctx); err == nil || !strings.Contains(err.Error(), "hashes to") {
		t.Fatalf("full verify without the segments before the checkpoint: %v, want a broken chain", err)
	}
}

// A bank of layout 2 (segments without a hash) verifies, its segments
// counted as not chained; a server that opens it marks it layout 3 and
// leaves its segments as they were, and each server's chain starts at
// its first segment written after.
func TestABankOfLayout2OpensAndVerifies(t *testing.T) {
	t.Parallel()
	_, cli := startEtcd(t)
	l, err := Open(ctx, cli, Options{Options: bank.Options{ProcessID: "s1", PINCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	steps(t, l, "old", 3)
	l.Close()
	// Make it what an atm of layout 2 leaves: bare arrays, format "2".
	segs := segmentsOf(t, cli, "atm/", "s1")
	for _, s := range segs {
		framed, err := decodeSegment(s.val)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, s.key, string(framed.events)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, "atm/format", layoutUnchained); err != nil {
		t.Fatal(err)
	}
	ro := OpenReadOnly(cli, Options{})
	rep, err := ro.Verify(ctx)
	if err != nil || rep.Unchained != len(segs) || rep.Records != 0 {
		t.Fatalf("verify of a bank of layout 2: %+v %v, want %d segments unchained", rep, err, len(segs))
	}

	l = open(t, cli, Options{Options: bank.Options{ProcessID: "s1"}})
	if resp, err := cli.Get(ctx, "atm/format"); err != nil || string(resp.Kvs[0].Value) != layout {
		t.Fatalf("format after a server opened it: %v %v", resp, err)
	}
	s2 := open(t, cli, Options{Options: bank.Options{ProcessID: "s2"}})
	steps(t, l, "new", 2)
	steps(t, s2, "new", 2)
	cp, _, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps(t, s2, "after", 1)
	if rep, err := ro.Verify(ctx); err != nil || rep.FromTS != cp.TS || rep.Events != 2 || rep.Unchained != 0 {
		t.Fatalf("verify from a checkpoint of an upgraded bank: %+v %v", rep, err)
	}
	if rep, err := ro.VerifyFull(ctx); err != nil || rep.Unchained != len(segs) || rep.Records != 6 {
		t.Fatalf("full verify of an upgraded bank: %+v %v, want %d segments unchained, then 6 chained", rep, err, len(segs))
	}
	// A chained segment cannot pass for an old one unseen.
	now := segmentsOf(t, cli, "atm/", "s1")
	last := now[len(now)-1]
	framed, _ := decodeSegment(last.val)
	if _, err := cli.Put(ctx, last.key, string(framed.events)); err != nil {
		t.Fatal(err)
	}
	if _, err := ro.VerifyFull(ctx); !names(err, last.ts, "s1") {
		t.Fatalf("a chained segment made to look unchained: %v", err)
	}
}
