package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"atm/bank"
	"atm/bank/etcdstore"
)

// fillEtcd makes n deposits on the bank kept in etcd through two servers
// in turn, s1 and s2, and closes them.
func fillEtcd(t *testing.T, endpoint string, n int) {
	t.Helper()
	cli, err := dialEtcd(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var ls []*etcdstore.Ledger
	for _, p := range []string{"s1", "s2"} {
		l, err := etcdstore.Open(context.Background(), cli, etcdstore.Options{Options: bank.Options{ProcessID: p, PINCost: bcrypt.MinCost, RememberRequests: 5}})
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	for i := range n {
		m := bank.Meta{ReqID: fmt.Sprintf("fill-%d", i), Client: "atm-test"}
		if _, err := ls[i%2].Deposit(context.Background(), m, bank.DefaultAccounts[i%3].ID, 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range ls {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// atm archive --etcd moves the oldest segments of a bank kept in etcd
// into an archive and compacts etcd; atm log --archive then prints the
// whole log, every event once, and atm verify --archive checks the whole
// history, atm verify the live log from the checkpoint archiving wrote.
func TestArchiveABankKeptInEtcdFromTheCommandLine(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	ep, _ := startTestEtcd(t)
	fillEtcd(t, ep, 300)
	code, before, errOut := runATM(t, bin, "log", "--json", "--etcd", ep)
	if code != 0 {
		t.Fatalf("atm log: %d %s", code, errOut)
	}
	dir := t.TempDir()
	code, out, errOut := runATM(t, bin, "archive", "--etcd", ep, "--to", dir, "--keep-log", "40", "--segment-events", "25", "--defrag")
	if code != 0 || !strings.Contains(out, "compacted etcd's history") || !strings.Contains(out, "defragmented every member") {
		t.Fatalf("atm archive: %d %s %s", code, out, errOut)
	}
	code, live, errOut := runATM(t, bin, "log", "--json", "--etcd", ep)
	if code != 0 {
		t.Fatalf("atm log: %d %s", code, errOut)
	}
	code, all, errOut := runATM(t, bin, "log", "--json", "--etcd", ep, "--archive", dir)
	if code != 0 {
		t.Fatalf("atm log --archive: %d %s", code, errOut)
	}
	bl, ll, al := lines(before), lines(live), lines(all)
	// The whole log is the log before, and the checkpoint archiving wrote.
	if len(ll) >= len(bl) || len(al) != len(bl)+1 || strings.Join(al[:len(bl)], "\n") != strings.Join(bl, "\n") ||
		!strings.Contains(al[len(al)-1], `"checkpoint"`) {
		t.Fatalf("%d events before, %d live, %d with the archive:\n%s", len(bl), len(ll), len(al), out)
	}
	if code, out, errOut := runATM(t, bin, "verify", "--etcd", ep, "--archive", dir); code != 0 || !strings.Contains(out, fmt.Sprintf("%d events", len(al))) {
		t.Fatalf("atm verify --archive: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := runATM(t, bin, "verify", "--etcd", ep); code != 0 || !strings.Contains(out, "from the checkpoint") {
		t.Fatalf("atm verify: %d %s %s", code, out, errOut)
	}
	// Again: nothing more to archive (but the new checkpoint), nothing
	// doubled.
	if code, out, errOut := runATM(t, bin, "archive", "--etcd", ep, "--to", dir, "--keep-log", "40", "--segment-events", "25"); code != 0 {
		t.Fatalf("atm archive again: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := runATM(t, bin, "verify", "--etcd", ep, "--archive", dir); code != 0 || !strings.Contains(out, fmt.Sprintf("%d events", len(al)+1)) {
		t.Fatalf("atm verify --archive again: %d %s %s", code, out, errOut)
	}
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
