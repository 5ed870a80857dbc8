package etcdstore_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/archive"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// noSpace reports whether err is etcd's refusal of a write over its quota.
func noSpace(err error) bool {
	return err != nil && (errors.Is(err, rpctypes.ErrGRPCNoSpace) || errors.Is(err, rpctypes.ErrNoSpace) ||
		strings.Contains(err.Error(), "database space exceeded"))
}

// untilFull deposits until etcd refuses a write over its quota, at most
// limit times; it returns the deposits done.
func untilFull(t *testing.T, l *etcdstore.Ledger, tag string, limit int) (int, bool) {
	t.Helper()
	for i := range limit {
		_, err := l.Deposit(bg, bank.Meta{ReqID: fmt.Sprintf("%s-%d", tag, i), Client: "atm-test"}, "123", 1)
		if noSpace(err) {
			return i, true
		}
		if err != nil {
			t.Fatalf("deposit %d: %v", i, err)
		}
	}
	return limit, false
}

// maintain archives the bank's log (after a checkpoint), then compacts
// etcd's history and defragments its members.
func maintain(t *testing.T, l *etcdstore.Ledger, dir string, keep int) archive.Result {
	t.Helper()
	if _, _, err := l.Checkpoint(bg); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	res, err := archive.Run(bg, l, archive.Options{Dir: dir, Keep: keep, Per: 2000})
	if err != nil {
		t.Fatalf("archive: %v", err)
	}
	if _, err := l.Compact(bg); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if _, _, err := l.Defragment(bg); err != nil {
		t.Fatalf("defragment: %v", err)
	}
	return res
}

// A bank kept in an etcd with a small quota stops taking writes once the
// quota is reached; archiving, compacting and defragmenting free the
// space, so that writes go on past where they stopped, and the whole
// history still verifies.
func TestArchiveAndCompactFreeEtcdSpace(t *testing.T) {
	t.Parallel()
	const quota = 4 << 20
	c := etcdtest.StartQuota(t, 1, quota)
	cli := c.Client()
	l := openLedger(t, cli, "s1", 10)
	n0, full := untilFull(t, l, "a", 50_000)
	if !full {
		t.Fatalf("%d deposits did not fill a quota of %d bytes", n0, quota)
	}
	// Compaction and defragmentation disarm the alarm: writes go on.
	if _, err := l.Compact(bg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Defragment(bg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	done, archived := 0, 0
	for done < 2*n0 {
		n, full := untilFull(t, l, fmt.Sprintf("b%d", done), n0/4)
		done += n
		if full {
			t.Fatalf("the quota was reached again after %d more deposits (%d before), archiving every %d", done, n0, n0/4)
		}
		archived += maintain(t, l, dir, 100).Records
	}
	t.Logf("quota %d bytes: %d deposits without archiving; %d more with archiving, compaction and defragmentation every %d (%d segments archived)",
		quota, n0, done, n0/4, archived)
	if archived == 0 {
		t.Fatal("nothing was archived")
	}
	if _, err := l.VerifyArchived(bg, replayArchive(dir)); err != nil {
		t.Fatalf("verify the archive and the live log: %v", err)
	}
}

// The figure: a 3-member cluster with a 64 MiB quota takes n deposits
// until its quota alarm without archiving; with archiving, compaction and
// defragmentation every n/10 deposits, it takes at least 5n. Slow: run
// with ATM_QUOTA_FIGURE=1 (ATM_QUOTA_MIB to change the quota).
func TestQuotaFigure(t *testing.T) {
	if os.Getenv("ATM_QUOTA_FIGURE") == "" {
		t.Skip("a measurement: set ATM_QUOTA_FIGURE=1 to run it")
	}
	mib := int64(64)
	if v, err := strconv.Atoi(os.Getenv("ATM_QUOTA_MIB")); err == nil && v > 0 {
		mib = int64(v)
	}
	c0 := etcdtest.StartQuota(t, 3, mib<<20)
	l0 := openLedger(t, c0.Client(), "s1", 10)
	start := time.Now()
	n0, full := untilFull(t, l0, "a", 2_000_000)
	d0 := time.Since(start)
	if !full {
		t.Fatalf("no quota alarm after %d deposits", n0)
	}
	t.Logf("without archiving: %d deposits until the quota alarm (%s)", n0, d0.Round(time.Second))
	c := etcdtest.StartQuota(t, 3, mib<<20)
	l := openLedger(t, c.Client(), "s1", 10)
	dir := t.TempDir()
	start = time.Now()
	done, every := 0, max(n0/10, 1)
	for done < 5*n0 {
		n, full := untilFull(t, l, fmt.Sprintf("b%d", done), every)
		done += n
		if full {
			t.Fatalf("with archiving every %d deposits: the quota alarm after %d deposits (%.1f× %d)", every, done, float64(done)/float64(n0), n0)
		}
		maintain(t, l, dir, 1000)
	}
	t.Logf("with archiving, compaction and defragmentation every %d deposits: %d deposits (%.1f× %d) without the alarm (%s)",
		every, done, float64(done)/float64(n0), n0, time.Since(start).Round(time.Second))
}
