package server_test

import (
	"context"
	"testing"

	"atm/bank"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/netproto/client"
	"atm/netproto/server"
)

// ledgerReader is what a test reads of a bank directly, beside the wire:
// both ledgers, bbolt's and etcd's, have it.
type ledgerReader interface {
	Audit(ctx context.Context) (bank.Audit, error)
	Events(ctx context.Context, fn func(bank.Event) error) error
	Verify(ctx context.Context) (bank.VerifyReport, error)
}

// testBank is one bank under test as its clients see it: the addresses of
// its servers, with a direct reader of its ledger. The safety suites run
// against every backend (see eachBackend), with their clients spread over
// the servers.
type testBank struct {
	t       *testing.T
	addrs   []string
	ledger  ledgerReader
	cluster bool // several servers on etcd: slower commits
	// trust is what its clients trust of a tls:// server.
	trust client.TLSOptions
	// check runs the backend's own end-of-test checks (for the cluster,
	// each account's events committed in Lamport order and the log
	// verified through every server).
	check func(t *testing.T)
}

// backend starts a bank under test; configure is applied to each server
// before it serves.
type backend struct {
	name  string
	start func(t *testing.T, configure ...func(*server.Server)) *testBank
}

// backends are the stores the safety suites run against: one server on a
// bbolt file, and three servers of one bank on a three-member etcd cluster.
var backends = []backend{
	{"bbolt", func(t *testing.T, configure ...func(*server.Server)) *testBank {
		e := newEnv(t, configure...)
		return &testBank{t: t, addrs: []string{e.addr}, ledger: e.bank, check: func(*testing.T) {}}
	}},
	{"etcd-3-servers", func(t *testing.T, configure ...func(*server.Server)) *testBank {
		bc := newBankCluster(t, etcdtest.Start(t, 3), 3, etcdstore.Options{}, configure...)
		b := &testBank{t: t, ledger: bc.servers[0].ledger, cluster: true}
		for _, s := range bc.servers {
			b.addrs = append(b.addrs, s.addr)
		}
		b.check = func(t *testing.T) {
			t.Helper()
			checkAccountOrder(t, bc.events())
			bc.verify()
		}
		return b
	}},
}

// overTLS is the bbolt backend served over TLS, its clients trusting the
// server's certificate on first use.
var overTLS = backend{"bbolt-tls", func(t *testing.T, configure ...func(*server.Server)) *testBank {
	e := newTLSEnv(t, configure...)
	return &testBank{t: t, addrs: []string{e.addr}, ledger: e.bank, trust: e.trust, check: func(*testing.T) {}}
}}

// eachBackend runs f as a subtest against a new bank of every backend,
// the subtests in parallel.
func eachBackend(t *testing.T, f func(t *testing.T, b *testBank), configure ...func(*server.Server)) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			f(t, be.start(t, configure...))
		})
	}
}

// addr is the address of the server the i-th client uses.
func (b *testBank) addr(i int) string { return b.addrs[i%len(b.addrs)] }

// dial connects a client to server i%n; it is closed at the end of the test.
func (b *testBank) dial(i int, opts client.Options) *client.Client {
	b.t.Helper()
	if opts.TLS == (client.TLSOptions{}) {
		opts.TLS = b.trust
	}
	c, err := client.Dial(context.Background(), b.addr(i), opts)
	if err != nil {
		b.t.Fatalf("dial %s: %v", b.addr(i), err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}

// login dials server i%n and logs in to account with PIN 1234.
func (b *testBank) login(i int, account string, opts client.Options) *client.Client {
	b.t.Helper()
	c := b.dial(i, opts)
	if _, err := c.Login(ctx(b.t), account, "1234"); err != nil {
		b.t.Fatalf("login %s on %s: %v", account, b.addr(i), err)
	}
	return c
}

// raw opens a bare TCP connection to server i%n and reads the greeting.
func (b *testBank) raw(t *testing.T, i int) (*raw, map[string]any) {
	t.Helper()
	return rawAt(t, b.addr(i))
}

// verify replays the log through the ledger and runs the backend's checks.
func (b *testBank) verify(t *testing.T) bank.VerifyReport {
	t.Helper()
	rep, err := b.ledger.Verify(context.Background())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	b.check(t)
	return rep
}
