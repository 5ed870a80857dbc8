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
	code, got, errOut := runATM(t, bin, "log", "--json", "--db", path, "--archive", dir)
	if code != 0 {
		t.Fatalf("atm log --archive: %d %s", code, errOut)
	}
	if got != want {
		g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
		t.Fatalf("archive + live log: %d lines, the log had %d", len(g), len(w))
	}
	rep, err := archive.Check(dir, nil, nil)
	if err != nil || rep.Events < 3000 {
		t.Fatalf("check the archive: %+v %v", rep, err)
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
