package server_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/wire"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
)

var _ server.ChangeFeed = (*etcdstore.Ledger)(nil)

// startEtcd starts a one-member etcd; stop stops it (at most once).
func startEtcd(t *testing.T) (cli *clientv3.Client, stop func()) {
	t.Helper()
	c := etcdtest.Start(t, 1)
	return c.Client(), func() { c.Stop(0) }
}

// etcdServer serves an etcd ledger with process id proc on 127.0.0.1:0.
func etcdServer(t *testing.T, cli *clientv3.Client, proc string, commitTimeout time.Duration) (*server.Server, *etcdstore.Ledger, string) {
	t.Helper()
	srv := &server.Server{OperatorToken: opToken}
	l, err := etcdstore.Open(context.Background(), cli, etcdstore.Options{Options: bank.Options{ProcessID: proc, PINCost: bcrypt.MinCost},
		CommitTimeout: commitTimeout})
	if err != nil {
		t.Fatal(err)
	}
	srv.Ledger = l
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // with etcd gone, the stop cannot be recorded
		if err := <-done; err != server.ErrServerClosed {
			t.Errorf("%s: Serve returned %v", proc, err)
		}
		l.Close()
	})
	return srv, l, ln.Addr().String()
}

func dialLogin(t *testing.T, addr, account string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx(t), addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Login(ctx(t), account, "1234"); err != nil {
		t.Fatalf("login %s on %s: %v", account, addr, err)
	}
	return c
}

func nextPush(t *testing.T, c *client.Client) client.Push {
	t.Helper()
	select {
	case p := <-c.Pushes():
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no push")
	}
	return client.Push{}
}

// TestPushAcrossServers: A is logged in on bank-1, B on bank-2, both
// serving one bank in etcd. A's transfer to B reaches B's ATM through
// bank-2, which first receives the transfer's timestamp on its clock: the
// push is stamped above the transfer's apply event although bank-2's clock
// started far behind. A's other session, on bank-2, is told of the
// transfer out; a deposit through bank-2 reaches A's session on bank-1.
func TestPushAcrossServers(t *testing.T) {
	t.Parallel()
	cli, _ := startEtcd(t)
	_, l1, addr1 := etcdServer(t, cli, "bank-1", 0)
	_, l2, addr2 := etcdServer(t, cli, "bank-2", 0)
	for range 5000 { // bank-1's clock far ahead of bank-2's
		l1.Clock().Tick()
	}
	a := dialLogin(t, addr1, "123")
	b := dialLogin(t, addr2, "456")
	a2 := dialLogin(t, addr2, "123")
	before := l2.Clock().Now()

	r, err := a.Transfer(ctx(t), "456", 1_000)
	if err != nil {
		t.Fatal(err)
	}
	if r.ServerApply <= before {
		t.Fatalf("the transfer applied at L=%d, not above bank-2's clock %d: the test proves nothing", r.ServerApply, before)
	}
	p := nextPush(t, b)
	if p.Kind != wire.PushTransferIn || p.From != "123" || p.Amount != 1_000 || !p.HasBalance || p.Balance != 101_000 {
		t.Fatalf("B's push: %+v", p)
	}
	if p.ApplyTS != r.ServerApply {
		t.Fatalf("B's push names apply L=%d, the transfer applied at L=%d", p.ApplyTS, r.ServerApply)
	}
	if p.TS <= r.ServerApply {
		t.Fatalf("B's push at L=%d is not after the transfer's apply L=%d: bank-2 did not receive it first", p.TS, r.ServerApply)
	}
	bPush := p
	p = nextPush(t, a2)
	if p.Kind != wire.PushTransferOut || p.To != "456" || p.Amount != 1_000 || p.Balance != r.Balance || p.TS <= r.ServerApply {
		t.Fatalf("A's session on bank-2: %+v (transfer %+v)", p, r)
	}
	// The log says where each of those pushes came from (PROTOCOL.md §4,
	// log): bank-1's transfer, received by bank-2 before it pushed.
	var recv uint64
	for _, e := range logEntries(t, addr2) {
		if e.Kind != wire.KindPush || (e.TS != bPush.TS && e.TS != p.TS) {
			continue
		}
		if e.Proc != "bank-2" || e.Origin != "bank-1" || e.OrigTS != r.ServerApply || e.RecvTS <= e.OrigTS || e.RecvTS >= e.TS {
			t.Fatalf("push record %+v: want origin bank-1, orig_ts %d, and bank-2's receive between it and the push", e, r.ServerApply)
		}
		if recv != 0 && e.RecvTS != recv {
			t.Fatalf("the two pushes of one transfer name two receives, L=%d and L=%d", recv, e.RecvTS)
		}
		recv = e.RecvTS
	}
	if recv == 0 {
		t.Fatal("the pushes are not in the log")
	}

	// B deposits on bank-2, where no other session is on 456; A's second
	// session deposits on bank-2: A's session on bank-1 is told.
	if _, err := b.Deposit(ctx(t), 250); err != nil {
		t.Fatal(err)
	}
	d, err := a2.Deposit(ctx(t), 300)
	if err != nil {
		t.Fatal(err)
	}
	p = nextPush(t, a)
	if p.Kind != wire.PushDeposit || p.Amount != 300 || p.Balance != d.Balance || p.ApplyTS != d.ServerApply || p.TS <= d.ServerApply {
		t.Fatalf("A's session on bank-1 after the deposit on bank-2: %+v (deposit %+v)", p, d)
	}
	select {
	case p := <-b.Pushes():
		t.Fatalf("B was pushed its own deposit: %+v", p)
	case p := <-a2.Pushes():
		t.Fatalf("A's second session was pushed its own deposit: %+v", p)
	default:
	}
	if _, err := l1.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// logEntries reads the whole log of the server at addr with the operator's
// log request.
func logEntries(t *testing.T, addr string) []wire.Entry {
	t.Helper()
	c, err := client.Dial(ctx(t), addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []wire.Entry
	for after := wire.Cursor(""); ; {
		page, err := c.Log(ctx(t), opToken, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			return out
		}
		out = append(out, page.Events...)
		after = page.Next
	}
}

// TestUnreachableStoreAnswersUnavailable: with etcd gone, a request gets
// the code unavailable and says the store cannot be reached, not that the
// server is shutting down; the session stays open. A deposit is never shown
// as refused: the client keeps it as unknown and sends it again.
func TestUnreachableStoreAnswersUnavailable(t *testing.T) {
	t.Parallel()
	cli, stop := startEtcd(t)
	_, _, addr := etcdServer(t, cli, "bank-1", 500*time.Millisecond)
	c := dialLogin(t, addr, "123")
	stop() // waits for etcd's request timeout: the feed's watch is open
	var we *wire.Error
	_, err := c.Balance(ctx(t))
	if !errors.As(err, &we) || we.Code != "unavailable" {
		t.Fatalf("balance with etcd down: %v, want code unavailable", err)
	}
	if want := "the bank cannot reach its store right now"; len(we.Message) < len(want) || we.Message[:len(want)] != want {
		t.Fatalf("message %q", we.Message)
	}
	short, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := c.Deposit(short, 100); !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("deposit with etcd down: %v, want an unknown outcome, not a refusal", err)
	}
	if _, err := c.Balance(ctx(t)); !errors.As(err, &we) || we.Code != "unavailable" {
		t.Fatalf("balance on the same session: %v, want code unavailable", err)
	}
}
