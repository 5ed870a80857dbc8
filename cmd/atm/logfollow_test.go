package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"atm/bank"
	"atm/netproto/client"
)

// atm log --server --follow prints the log, then each event the bank
// commits afterwards, until interrupted; then it exits 0.
func TestLogFollowPrintsNewEvents(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	srv := startServe(t, bin, filepath.Join(t.TempDir(), "bank.db"), "127.0.0.1:0", 0)
	cmd := exec.Command(bin, "log", "--server", srv.addr, "--operator-token", crashToken, "--follow", "--json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	events := make(chan bank.Event, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e bank.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
		close(events)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitFor := func(what string, match func(bank.Event) bool) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("atm log --follow ended before %s: %s", what, errOut.String())
				}
				if match(e) {
					return
				}
			case <-timeout:
				t.Fatalf("atm log --follow did not print %s in 20s", what)
			}
		}
	}
	waitFor("the server's start", func(e bank.Event) bool { return e.Kind == bank.KindServerStart })

	atm, err := client.Dial(context.Background(), srv.addr, client.Options{ProcessID: "atm-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer atm.Close()
	if _, err := atm.Login(context.Background(), "123", "1234"); err != nil {
		t.Fatal(err)
	}
	rep, err := atm.Deposit(context.Background(), 5000)
	if err != nil {
		t.Fatal(err)
	}
	waitFor("the deposit made after it started", func(e bank.Event) bool {
		return e.Kind == bank.KindDeposit && e.ReqID == rep.ID && e.TS == rep.ServerApply
	})

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for range events {
	}
	if err := <-exited; err != nil {
		code := -1
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		}
		t.Fatalf("atm log --follow after Ctrl+C: exit %d (%v)\n%s", code, err, errOut.String())
	}
}

// --follow needs a running server, and prints events rather than a
// picture of a finished log.
func TestLogFollowNeedsAServer(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	for _, args := range [][]string{{"log", "--follow"}, {"log", "--follow", "--server", "127.0.0.1:1", "--diagram"}} {
		code, _, errOut := runATM(t, bin, args...)
		if code != 2 || !bytes.Contains([]byte(errOut), []byte("--follow")) {
			t.Errorf("atm %v: exit %d, %q", args, code, errOut)
		}
	}
}
