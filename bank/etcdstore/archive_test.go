package etcdstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"atm/bank"
	"atm/bank/archive"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/bank/outcome"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
)

var bg = context.Background()

func openLedger(t testing.TB, cli *clientv3.Client, proc string, remember int) *etcdstore.Ledger {
	t.Helper()
	l, err := etcdstore.Open(bg, cli, etcdstore.Options{Options: bank.Options{ProcessID: proc, PINCost: bcrypt.MinCost, RememberRequests: remember}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func jsonOf(e bank.Event) string {
	j, _ := json.Marshal(e)
	return string(j)
}

func liveEvents(t *testing.T, l *etcdstore.Ledger) []string {
	t.Helper()
	var out []string
	if err := l.Events(bg, func(e bank.Event) error { out = append(out, jsonOf(e)); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func archivedEvents(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	if _, err := archive.Merge(dir, etcdstore.Codec, nil, func(e bank.Event) error { out = append(out, jsonOf(e)); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// replayArchive feeds a replay the archive in dir, its chains merged.
func replayArchive(dir string) func(*bank.Replay) error {
	return func(r *bank.Replay) error {
		_, err := archive.Merge(dir, etcdstore.Codec, r.Link, r.Event)
		return err
	}
}

// deposits runs n deposits on two servers in turn, with request ids.
func deposits(t *testing.T, ls []*etcdstore.Ledger, tag string, n int) {
	t.Helper()
	for i := range n {
		l := ls[i%len(ls)]
		if _, err := l.Deposit(bg, bank.Meta{ReqID: fmt.Sprintf("%s-%d", tag, i), Client: "atm-test"}, "123", 1); err != nil {
			t.Fatal(err)
		}
	}
}

// Archiving a bank kept in etcd, served by two servers: the archive then
// the live log is the log as it was, each event once, in (ts, proc)
// order; Verify from the newest checkpoint and VerifyArchived over the
// archive and the live log pass; a statement ends cleanly where the
// archive starts; a retry of an archived request gets a clear refusal, a
// retry of a live one its first answer; a segment written before a crash
// stopped its forgetting is finished, not doubled; and a damaged segment
// is named.
func TestArchiveABankKeptInEtcd(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	cli := c.Client()
	s1 := openLedger(t, cli, "s1", 5)
	s2 := openLedger(t, cli, "s2", 5)
	ls := []*etcdstore.Ledger{s1, s2}
	// A request that its account remembers long after it is archived.
	if _, err := s1.Deposit(bg, bank.Meta{ReqID: "old", Client: "atm-test"}, "456", 1); err != nil {
		t.Fatal(err)
	}
	deposits(t, ls, "a", 120)
	dir := t.TempDir()
	if res, err := archive.Run(bg, s1, archive.Options{Dir: dir, Keep: 20, Per: 7}); err != nil || res.Records != 0 {
		t.Fatalf("archive without a checkpoint: %+v %v", res, err)
	}
	if _, _, err := s2.Checkpoint(bg); err != nil {
		t.Fatal(err)
	}
	deposits(t, ls, "b", 40)
	before := liveEvents(t, s1)

	// A crash after a segment was written, before its segments were
	// forgotten: write the first one by hand.
	marks, err := s1.Live(bg)
	if err != nil || len(marks) != 2 {
		t.Fatalf("live marks %v %v", marks, err)
	}
	upTo, err := s1.ArchiveUpTo(bg, 20)
	if err != nil || upTo["s1"] == 0 || upTo["s1"] != upTo["s2"] {
		t.Fatalf("archive up to %v %v", upTo, err)
	}
	recs, err := s1.ChainRecords(bg, "s1", 0, 3)
	if err != nil || len(recs) != 3 {
		t.Fatalf("records %d %v", len(recs), err)
	}
	if _, err := archive.Write(dir, "s1", recs, "", s1); err != nil {
		t.Fatal(err)
	}

	res, err := archive.Run(bg, s2, archive.Options{Dir: dir, Keep: 20, Per: 7})
	if err != nil || res.Records == 0 {
		t.Fatalf("archive: %+v %v", res, err)
	}
	arch, live := archivedEvents(t, dir), liveEvents(t, s1)
	if len(live) < 20 || len(arch)+len(live) != len(before) {
		t.Fatalf("%d archived + %d live, %d before", len(arch), len(live), len(before))
	}
	for i, e := range append(arch, live...) {
		if e != before[i] {
			t.Fatalf("event %d: %s, was %s", i, e, before[i])
		}
	}
	// A second run finds nothing more to do.
	if res, err := archive.Run(bg, s1, archive.Options{Dir: dir, Keep: 20, Per: 7}); err != nil || res.Records != 0 {
		t.Fatalf("second run: %+v %v", res, err)
	}
	if rep, err := s1.Verify(bg); err != nil || rep.FromTS == 0 {
		t.Fatalf("verify from the checkpoint after archiving: %+v %v", rep, err)
	}
	rep, err := s1.VerifyArchived(bg, replayArchive(dir))
	if err != nil || rep.Events != len(before) {
		t.Fatalf("verify the archive and the live log: %+v %v (want %d events)", rep, err, len(before))
	}
	if _, err := s1.VerifyFull(bg); err == nil {
		t.Fatal("verify in full without the archive passed: the live log's start is archived")
	}

	// The statement ends where the online history does.
	var entries int
	var at uint64
	for {
		page, _, err := s2.Statement(bg, bank.Meta{Client: "atm-test"}, "123", at, 10)
		if err != nil {
			t.Fatalf("statement after archiving: %v", err)
		}
		entries += len(page.Entries)
		if page.Next == 0 {
			break
		}
		at = page.Next
	}
	if entries == 0 || entries >= 160 {
		t.Fatalf("statement after archiving: %d entries of 162", entries)
	}

	// Retries: of an archived request, a clear refusal; of a live one,
	// its first answer.
	_, err = s1.Deposit(bg, bank.Meta{ReqID: "old", Client: "atm-test"}, "456", 1)
	if !errors.Is(err, etcdstore.ErrRequestArchived) || !errors.Is(err, outcome.ErrRequestIDReused) {
		t.Fatalf("retry of an archived request: %v", err)
	}
	first, err := s2.Deposit(bg, bank.Meta{ReqID: "b-39", Client: "atm-test"}, "123", 1)
	if err != nil || first.Event.Kind != bank.KindDeposit {
		t.Fatalf("retry of a live request: %+v %v", first, err)
	}
	if rep, err := s1.VerifyArchived(bg, replayArchive(dir)); err != nil {
		t.Fatalf("verify after the retries: %+v %v", rep, err)
	}

	// A changed byte of a segment is named by Check.
	segs, _ := archive.List(dir)
	if _, err := archive.Check(dir, etcdstore.Codec, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, segs[len(segs)/2].Name)
	raw, _ := os.ReadFile(path)
	raw[len(raw)/2] ^= 1
	os.WriteFile(path, raw, 0o644)
	if _, err := archive.Check(dir, etcdstore.Codec, nil); !errors.Is(err, archive.ErrDamaged) || !strings.Contains(err.Error(), segs[len(segs)/2].Name) {
		t.Fatalf("damaged segment: %v", err)
	}
}

// Two archivers of one bank at once, each with its own archive
// directory: every live segment is forgotten once, by one of them, and
// the two archives together with the live log hold every event once.
func TestTwoArchiversAtOnce(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	cli := c.Client()
	s1 := openLedger(t, cli, "s1", 5)
	s2 := openLedger(t, cli, "s2", 5)
	ls := []*etcdstore.Ledger{s1, s2}
	deposits(t, ls, "a", 400)
	if _, _, err := s1.Checkpoint(bg); err != nil {
		t.Fatal(err)
	}
	deposits(t, ls, "b", 10)
	before := liveEvents(t, s1)
	dirs := []string{t.TempDir(), t.TempDir()}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			_, errs[i] = archive.Run(bg, ls[i], archive.Options{Dir: dirs[i], Keep: 10, Per: 3})
		})
	}
	wg.Wait()
	// An archiver that lost a race fails cleanly, or finds it done.
	for i, err := range errs {
		if err != nil && !errors.Is(err, archive.ErrDamaged) {
			t.Logf("archiver %d: %v", i, err)
		}
	}
	live := liveEvents(t, s1)
	seen := map[string]int{}
	for _, d := range dirs {
		for _, e := range archivedEvents(t, d) {
			seen[e]++
		}
	}
	for _, e := range live {
		seen[e]++
	}
	for _, e := range before {
		if seen[e] < 1 {
			t.Fatalf("event lost: %s", e)
		}
	}
	// Forgotten once: every event of the log is live or in an archive
	// whose segment was forgotten by its archiver; an event in both
	// archives was written by both, but forgotten by one.
	if len(live) >= len(before) {
		t.Fatalf("nothing archived: %d live of %d", len(live), len(before))
	}
	if _, err := s1.Verify(bg); err != nil {
		t.Fatalf("verify after two archivers: %v", err)
	}
}
