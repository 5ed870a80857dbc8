package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/etcdstore"
	"atm/netproto/client"
	"atm/netproto/polltest"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

// atm checkpoint writes a checkpoint in a database file offline; atm
// verify then checks the log from it (atm verify --full from the first
// event), and a changed byte of an event after it fails atm verify with
// exit 1, naming the event. A file held by a server, or missing, is
// refused with a message.
func TestCheckpointThenVerifyFromIt(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	path := newDB(t)
	code, out, errOut := runATM(t, bin, "checkpoint", "--db", path)
	m := regexp.MustCompile(`checkpoint written in .* at L=(\d+) \(process bank\): 3 accounts, balances R\$ 3\.000,00`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("atm checkpoint: exit %d\n%s%s", code, out, errOut)
	}
	cp := m[1]
	if code, out, errOut := runATM(t, bin, "accounts", "add", "--db", path, "--id", "321", "--name", "Rui Alves", "--pin", "4321"); code != 0 {
		t.Fatalf("accounts add: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runATM(t, bin, "verify", "--db", path)
	if code != 0 || !strings.HasPrefix(out, "ok: 2 events replayed from the checkpoint at L="+cp+" (process bank)") {
		t.Fatalf("atm verify after a checkpoint: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runATM(t, bin, "verify", "--db", path, "--full")
	if code != 0 || !strings.HasPrefix(out, "ok: 8 events replayed from the first event") {
		t.Fatalf("atm verify --full: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runATM(t, bin, "log", "--db", path)
	if code != 0 || !strings.Contains(out, "checkpoint   accounts=3 total=300000 deposits=300000 withdrawals=0 state=") {
		t.Fatalf("atm log shows no checkpoint: exit %d\n%s", code, out)
	}

	// One bit of the new account's event, changed with bbolt itself.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ts uint64
	err = db.Update(func(tx *bolt.Tx) error {
		k, v := tx.Bucket([]byte("events")).Cursor().Last()
		ts = binary.BigEndian.Uint64(k)
		v = bytes.Clone(v)
		v[len(v)/2] ^= 0x04
		return tx.Bucket([]byte("events")).Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runATM(t, bin, "verify", "--db", path)
	if code != 1 || !strings.Contains(errOut, "FAILED") || !strings.Contains(errOut, fmt.Sprintf("event L=%d/bank open", ts)) {
		t.Fatalf("atm verify on a changed event: exit %d, want 1 naming L=%d/bank\n%s%s", code, ts, out, errOut)
	}

	b, err := boltstore.Open(path, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runATM(t, bin, "checkpoint", "--db", path)
	b.Close()
	if code != 1 || !strings.Contains(errOut, path+" is held by a running server") {
		t.Fatalf("atm checkpoint on a held file: exit %d\n%s", code, errOut)
	}
	missing := filepath.Join(t.TempDir(), "none.db")
	code, _, errOut = runATM(t, bin, "checkpoint", "--db", missing)
	if _, serr := os.Stat(missing); code != 1 || !strings.Contains(errOut, "no database at "+missing) || serr == nil {
		t.Fatalf("atm checkpoint on a missing file: exit %d\n%s", code, errOut)
	}
}

// atm serve --checkpoint-every N writes a checkpoint every N events by
// itself; atm verify, once it stops, starts from the newest.
func TestServeWritesCheckpoints(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	path := filepath.Join(t.TempDir(), "bank.db")
	srv := startServe(t, bin, path, "127.0.0.1:0", 0, "--checkpoint-every", "5")
	ctx := context.Background()
	c, err := client.Dial(ctx, srv.addr, client.Options{ProcessID: "atm-cp"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "123", "1234"); err != nil {
		t.Fatal(err)
	}
	for range 12 {
		if _, err := c.Deposit(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	polltest.Until(t, "two checkpoints in the server's output", 10*time.Second, func() bool {
		b, _ := os.ReadFile(srv.out)
		return bytes.Count(b, []byte(`"kind":"checkpoint"`)) >= 2
	})
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	code, out, errOut := runATM(t, bin, "verify", "--db", path)
	if code != 0 || !strings.Contains(out, "replayed from the checkpoint at L=") {
		t.Fatalf("atm verify after a server wrote checkpoints: exit %d\n%s%s", code, out, errOut)
	}
}

// atm checkpoint --etcd writes a checkpoint in a bank kept in etcd while
// its servers run, as a process of its own; atm verify --etcd then starts
// from it, and a changed byte of a server's segment after it fails atm
// verify --etcd with exit 1, naming the segment's first event.
func TestCheckpointOnEtcd(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	endpoint, cli := startTestEtcd(t)
	ctx := context.Background()
	l, err := etcdstore.Open(ctx, cli, etcdstore.Options{Options: bank.Options{ProcessID: "bank-1", PINCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, out, errOut := runATM(t, bin, "checkpoint", "--etcd", endpoint)
	m := regexp.MustCompile(`checkpoint written in etcd .* at L=(\d+) \(process atm-checkpoint\): 3 accounts`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("atm checkpoint --etcd: exit %d\n%s%s", code, out, errOut)
	}
	r, err := l.Deposit(ctx, bank.Meta{ReqID: "d1", Client: "atm-1"}, "123", 100)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runATM(t, bin, "verify", "--etcd", endpoint)
	if code != 0 || !strings.HasPrefix(out, "ok: 2 events replayed from the checkpoint at L="+m[1]+" (process atm-checkpoint)") {
		t.Fatalf("atm verify --etcd after a checkpoint: exit %d\n%s%s", code, out, errOut)
	}
	key := fmt.Sprintf("atm/log/bank-1/%020d", r.Event.TS)
	seg, err := cli.Get(ctx, key)
	if err != nil || len(seg.Kvs) != 1 {
		t.Fatalf("the deposit's segment %s: %v %v", key, seg, err)
	}
	v := bytes.Replace(seg.Kvs[0].Value, []byte(`"amount":100`), []byte(`"amount":900`), 1)
	if _, err := cli.Put(ctx, key, string(v)); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runATM(t, bin, "verify", "--etcd", endpoint)
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("segment L=%d/bank-1", r.Event.TS)) {
		t.Fatalf("atm verify --etcd on a changed segment: exit %d, want 1 naming L=%d/bank-1\n%s%s", code, r.Event.TS, out, errOut)
	}
}
