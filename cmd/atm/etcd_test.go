package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/etcdstore/etcdtest"
	"atm/bank/money"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// startTestEtcd starts a one-member embedded etcd and returns its client
// address with a client of it.
func startTestEtcd(t *testing.T) (string, *clientv3.Client) {
	t.Helper()
	c := etcdtest.Start(t, 1)
	return c.Endpoints()[0], c.Client()
}

// etcdChild is a running atm serve --etcd; lines has its output.
type etcdChild struct {
	cmd    *exec.Cmd
	addr   string
	start  string // its start line
	mu     sync.Mutex
	lines  []string
	exited chan struct{}
	err    error
}

func (c *etcdChild) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// startServeEtcd starts atm serve --etcd endpoints --proc proc on a free
// port and returns once it has printed its start line.
func startServeEtcd(t *testing.T, bin, endpoints, proc string) *etcdChild {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--etcd", endpoints, "--proc", proc, "--addr", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = append(cmd.Environ(), "ATM_OPERATOR_TOKEN=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &etcdChild{cmd: cmd, exited: make(chan struct{})}
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec struct{ Msg string }
			line := sc.Text()
			if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "serving ") {
				select {
				case started <- rec.Msg:
				default:
				}
			}
			c.mu.Lock()
			c.lines = append(c.lines, line)
			c.mu.Unlock()
		}
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
	})
	select {
	case c.start = <-started:
	case <-c.exited:
		t.Fatalf("atm serve --etcd exited before listening (%v):\n%s", c.err, c.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("atm serve --etcd did not start:\n%s", c.output())
	}
	m := listenRE.FindStringSubmatch(c.start)
	if m == nil {
		t.Fatalf("no address in the start line %q", c.start)
	}
	c.addr = m[1]
	return c
}

// TestServeEtcdTwoServers runs two atm serve --etcd processes on one
// embedded etcd: a transfer through bank-1 reaches the recipient's ATM on
// bank-2; a client given both addresses works; both stop cleanly on
// SIGTERM; atm verify --etcd and atm log --etcd read what they did.
func TestServeEtcdTwoServers(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	endpoint, cli := startTestEtcd(t)
	s1 := startServeEtcd(t, bin, endpoint, "bank-1")
	s2 := startServeEtcd(t, bin, endpoint, "bank-2")
	for _, s := range []*etcdChild{s1, s2} {
		if !strings.HasPrefix(s.start, "serving etcd "+endpoint+" on 127.0.0.1:") ||
			!strings.Contains(s.start, "(protocol v1), process id bank-") ||
			!strings.Contains(s.start, "operator operations off") {
			t.Fatalf("start line %q", s.start)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := client.Dial(ctx, s1.addr, client.Options{ProcessID: "atm-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// B is given both servers; bank-1 is stopped first, so B ends on bank-2.
	b, err := client.Dial(ctx, s2.addr+","+s1.addr, client.Options{ProcessID: "atm-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Addr() != s2.addr {
		t.Fatalf("B connected to %s, want the first address %s", b.Addr(), s2.addr)
	}
	for _, l := range []struct {
		c  *client.Client
		id string
	}{{a, "123"}, {b, "456"}} {
		if _, err := l.c.Login(ctx, l.id, "1234"); err != nil {
			t.Fatalf("login %s: %v", l.id, err)
		}
	}
	r, err := a.Transfer(ctx, "456", 1_500)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-b.Pushes():
		if p.Kind != wire.PushTransferIn || p.From != "123" || p.Amount != 1_500 || p.Balance != 101_500 || p.TS <= r.ServerApply {
			t.Fatalf("B's push %+v after the transfer %+v", p, r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B got no push of the transfer made on bank-1")
	}
	// Operator operations are off without a token.
	if _, err := a.Audit(ctx, "anything"); err == nil || !strings.Contains(err.Error(), "operator") {
		t.Fatalf("audit on a server without a token: %v", err)
	}

	for _, s := range []*etcdChild{s1, s2} {
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			t.Fatal("atm serve --etcd did not stop on SIGTERM")
		}
		if s.err != nil || !strings.Contains(s.output(), "stopped cleanly") {
			t.Fatalf("exit %v:\n%s", s.err, s.output())
		}
	}
	// The clean stop stored each clock exactly.
	resp, err := cli.Get(ctx, "atm/clock/bank-1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("clock of bank-1: %v %v", resp, err)
	}

	code, out, errOut := runATMInput(t, bin, "", "verify", "--etcd", endpoint)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("atm verify --etcd: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runATMInput(t, bin, "", "log", "--etcd", endpoint, "--json")
	if code != 0 {
		t.Fatalf("atm log --etcd: exit %d\n%s", code, errOut)
	}
	var transfer, starts, prev = 0, map[string]bool{}, uint64(0)
	for line := range strings.Lines(out) {
		var e bank.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e.TS < prev {
			t.Fatalf("log not in Lamport order: L=%d after L=%d", e.TS, prev)
		}
		prev = e.TS
		if e.Kind == bank.KindTransfer && e.Proc == "bank-1" && e.Amount == 1_500 && e.TS == r.ServerApply {
			transfer++
		}
		if e.Kind == bank.KindServerStart {
			starts[e.Proc] = true
		}
		if e.Kind == bank.KindPush && e.Proc == "bank-2" && e.Account == "456" && e.Amount != money.Cents(1_500) {
			t.Fatalf("push recorded with amount %s", e.Amount)
		}
	}
	if transfer != 1 || !starts["bank-1"] || !starts["bank-2"] {
		t.Fatalf("atm log --etcd: %d transfers of bank-1, starts %v\n%s", transfer, starts, out)
	}

	// A balance changed behind the ledger's back: verify fails with exit 1.
	acct, err := cli.Get(ctx, "atm/accounts/789")
	if err != nil || len(acct.Kvs) != 1 {
		t.Fatalf("account 789: %v %v", acct, err)
	}
	var rec map[string]any
	if err := json.Unmarshal(acct.Kvs[0].Value, &rec); err != nil {
		t.Fatal(err)
	}
	rec["balance"] = rec["balance"].(float64) + 1
	tampered, _ := json.Marshal(rec)
	if _, err := cli.Put(ctx, "atm/accounts/789", string(tampered)); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runATMInput(t, bin, "", "verify", "--etcd", endpoint)
	if code != 1 || !strings.Contains(errOut, "FAILED") || !strings.Contains(errOut, "789") {
		t.Fatalf("atm verify --etcd on a tampered balance: exit %d\n%s%s", code, out, errOut)
	}
}

// TestServeEtcdRefusesBadFlags: --db with --etcd, --etcd without --proc
// and --proc without --etcd are refused before anything starts.
func TestServeEtcdRefusesBadFlags(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--etcd", "127.0.0.1:1", "--proc", "bank-1", "--db", t.TempDir() + "/bank.db"}, "--db and --etcd together"},
		{[]string{"serve", "--etcd", "127.0.0.1:1"}, "--etcd needs --proc"},
		{[]string{"serve", "--proc", "bank-1"}, "--proc is for --etcd"},
		{[]string{"log", "--etcd", "127.0.0.1:1", "--server", "127.0.0.1:1"}, "--etcd and --server together"},
	} {
		code, _, errOut := runATMInput(t, bin, "", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("atm %v: exit %d, %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
