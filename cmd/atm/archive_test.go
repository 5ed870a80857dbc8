package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"atm/bank"
	"atm/bank/archive"
	"atm/bank/boltstore"
	"atm/netproto/polltest"
)

// fillDB makes n deposits on the default accounts of the database at
// path, side by side, and closes it. A new bank remembers the last 50
// requests (the file keeps its window).
func fillDB(t *testing.T, path string, n int) {
	t.Helper()
	b, err := boltstore.Open(path, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost, RememberRequests: 50}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range n / 8 {
				m := bank.Meta{ReqID: fmt.Sprintf("fill-%d-%d", w, i), Client: fmt.Sprintf("atm-%d", w)}
				if _, err := b.Deposit(context.Background(), m, bank.DefaultAccounts[w%3].ID, 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// atm archive killed with SIGKILL at random points, again and again, then
// run to its end: the archive followed by the live log is the log as it
// was, every event once, and the archive checks.
func TestArchiveSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	path := filepath.Join(t.TempDir(), "bank.db")
	fillDB(t, path, 4000)
	code, want, errOut := runATM(t, bin, "log", "--json", "--db", path)
	if code != 0 {
		t.Fatalf("atm log: %d %s", code, errOut)
	}
	dir := t.TempDir()
	args := []string{"archive", "--db", path, "--to", dir, "--keep-log", "100", "--segment-events", "150"}
	kills := 0
	for i := range 12 {
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(time.Duration(rand.IntN(40)+i)*time.Millisecond, func() { cmd.Process.Signal(syscall.SIGKILL) })
		if err := cmd.Wait(); err != nil {
			kills++
		}
		timer.Stop()
	}
	t.Logf("%d of 12 runs killed", kills)
	if code, out, errOut := runATM(t, bin, args...); code != 0 {
		t.Fatalf("atm archive after the kills: %d %s%s", code, out, errOut)
	}
	code, all, errOut := runATM(t, bin, "log", "--json", "--db", path, "--archive", dir)
	if code != 0 {
		t.Fatalf("atm log --archive: %d %s", code, errOut)
	}
	// Each run of atm archive writes a checkpoint first; the rest is the
	// log as it was.
	var got []string
	for _, l := range strings.SplitAfter(all, "\n") {
		if !strings.Contains(l, `"kind":"checkpoint"`) {
			got = append(got, l)
		}
	}
	if strings.Join(got, "") != want {
		t.Fatalf("archive + live log: %d lines without checkpoints, the log had %d", len(got), strings.Count(want, "\n"))
	}
	rep, err := archive.Check(dir, boltstore.Codec, nil)
	if err != nil || rep.Records < 3000 {
		t.Fatalf("check the archive: %+v %v", rep, err)
	}
	// The live log verifies from its newest checkpoint, and the whole
	// history from the archive's first event; not in full without it.
	for _, args := range [][]string{{"verify", "--db", path}, {"verify", "--db", path, "--archive", dir}} {
		if code, out, errOut := runATM(t, bin, args...); code != 0 {
			t.Fatalf("atm %v: %d %s%s", args, code, out, errOut)
		}
	}
	if code, _, _ := runATM(t, bin, "verify", "--db", path, "--full"); code != 1 {
		t.Fatalf("atm verify --full without the archive: exit %d, want 1", code)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	for _, f := range left {
		os.Remove(f) // a killed write's temporary file; never read
	}
	// The file no longer holds the archived events: a compact copy of it
	// is smaller, and holds the same live log.
	small := filepath.Join(t.TempDir(), "small.db")
	if code, out, errOut := runATM(t, bin, "compact", "--db", path, "--to", small); code != 0 {
		t.Fatalf("atm compact: %d %s%s", code, out, errOut)
	}
	big, _ := os.Stat(path)
	compact, _ := os.Stat(small)
	if compact.Size() >= big.Size() {
		t.Fatalf("the compact copy is %d bytes, the file %d", compact.Size(), big.Size())
	}
	_, liveBig, _ := runATM(t, bin, "log", "--json", "--db", path)
	_, liveSmall, _ := runATM(t, bin, "log", "--json", "--db", small)
	if liveBig != liveSmall || liveBig == "" {
		t.Fatalf("the compact copy's log differs")
	}
	if code, _, errOut := runATM(t, bin, "compact", "--db", path, "--to", small); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("compact onto an existing file: %d %s", code, errOut)
	}
	// A changed byte in a segment: verify --archive names it and exits 1.
	segs, _ := archive.List(dir)
	victim := filepath.Join(dir, segs[len(segs)/2].Name)
	raw, _ := os.ReadFile(victim)
	raw[len(raw)/2] ^= 0x40
	os.WriteFile(victim, raw, 0o644)
	code, _, errOut = runATM(t, bin, "verify", "--db", path, "--archive", dir)
	if code != 1 || !strings.Contains(errOut, segs[len(segs)/2].Name) {
		t.Fatalf("verify --archive with a damaged segment: exit %d, %s", code, errOut)
	}
	if code, _, _ := runATM(t, bin, "verify", "--db", path); code != 0 {
		t.Fatal("the live log no longer verifies")
	}
}

// atm archive refuses a missing or unwritable directory and archives
// nothing; atm serve refuses --archive with a directory it cannot use.
func TestArchiveRefusesABadDirectory(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	path := newDB(t)
	code, _, before := runATM(t, bin, "log", "--json", "--db", path)
	if code != 0 {
		t.Fatal(before)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	code, _, errOut := runATM(t, bin, "archive", "--db", path, "--to", missing, "--keep-log", "1")
	if code != 1 || !strings.Contains(errOut, "missing") || !strings.Contains(errOut, "nothing was archived") {
		t.Fatalf("archive to a missing directory: %d %s", code, errOut)
	}
	code, _, errOut = runATM(t, bin, "serve", "--db", path, "--addr", "127.0.0.1:0", "--archive", missing)
	if code != 2 || !strings.Contains(errOut, "--archive") {
		t.Fatalf("serve --archive with a missing directory: %d %s", code, errOut)
	}
}

// atm serve --archive archives as it runs, writing the checkpoint it
// archives up to: the live log verifies after, and the whole history from
// the archive's first event.
func TestServeArchivesAsItRuns(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	path := filepath.Join(t.TempDir(), "bank.db")
	fillDB(t, path, 2000)
	dir := t.TempDir()
	srv := startServe(t, bin, path, "127.0.0.1:0", 0, "--archive", dir, "--keep-log", "100")
	if !polltest.Within(20*time.Second, func() bool {
		b, _ := os.ReadFile(srv.out)
		return strings.Contains(string(b), "archived ")
	}) {
		b, _ := os.ReadFile(srv.out)
		t.Fatalf("the server did not archive:\n%s", b)
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	<-srv.exited
	rep, err := archive.Check(dir, boltstore.Codec, nil)
	if err != nil || rep.Records < 1500 {
		t.Fatalf("the server's archive: %+v %v", rep, err)
	}
	for _, args := range [][]string{{"verify", "--db", path}, {"verify", "--db", path, "--archive", dir}} {
		if code, out, errOut := runATM(t, bin, args...); code != 0 {
			t.Fatalf("atm %v: %d %s%s", args, code, out, errOut)
		}
	}
}
