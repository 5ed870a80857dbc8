package server_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"atm/netproto/server"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank/boltstore"
	"atm/bank/money"

	"golang.org/x/crypto/bcrypt"

	"atm/bank"
)

// seededRand returns a random source whose seed is logged, and taken from
// ATM_TEST_SEED when set, so that a failing run can be replayed.
func seededRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ATM_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ATM_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("random seed %d (replay with ATM_TEST_SEED=%d)", seed, seed)
	return newRand(seed)
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// figures logs one line of measured figures, marked so that a run's output
// can be collected for RELIABILITY.md.
func figures(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURES %s: %s", t.Name(), fmt.Sprintf(format, args...))
}

// moneyState is everything a request could change about money or access:
// balances, the running totals and each account's PIN failure state.
type moneyState struct {
	Balances    map[string]money.Cents
	Failed      map[string]int
	Locked      map[string]time.Time
	Deposits    money.Cents
	Withdrawals money.Cents
}

// snapshot reads the money state of a ledger, bbolt's or etcd's.
func snapshot(t *testing.T, b interface {
	Audit(context.Context) (bank.Audit, error)
}) moneyState {
	t.Helper()
	a, err := b.Audit(context.Background())
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	s := moneyState{Balances: map[string]money.Cents{}, Failed: map[string]int{}, Locked: map[string]time.Time{},
		Deposits: a.Deposits, Withdrawals: a.Withdrawals}
	for _, acct := range a.Accounts {
		s.Balances[acct.ID] = acct.Balance
		s.Failed[acct.ID] = acct.FailedPINs
		s.Locked[acct.ID] = acct.LockedUntil
	}
	return s
}

func (s moneyState) diff(o moneyState) string {
	if s.Deposits != o.Deposits || s.Withdrawals != o.Withdrawals {
		return fmt.Sprintf("totals %v/%v became %v/%v", s.Deposits, s.Withdrawals, o.Deposits, o.Withdrawals)
	}
	if len(s.Balances) != len(o.Balances) {
		return fmt.Sprintf("%d accounts became %d", len(s.Balances), len(o.Balances))
	}
	for id, v := range s.Balances {
		if o.Balances[id] != v || o.Failed[id] != s.Failed[id] || !o.Locked[id].Equal(s.Locked[id]) {
			return fmt.Sprintf("account %s: balance %v failed %d locked %v became %v %d %v", id, v, s.Failed[id], s.Locked[id],
				o.Balances[id], o.Failed[id], o.Locked[id])
		}
	}
	return ""
}

// checkAudit fails unless an audit taken over the wire shows money conserved
// and no negative balance.
func checkAudit(a client.AuditReport) error {
	var sum money.Cents
	for _, acct := range a.Accounts {
		sum += acct.Balance
		if acct.Balance < 0 {
			return fmt.Errorf("audit at L=%d: account %s is negative (%v)", a.TS, acct.ID, acct.Balance)
		}
	}
	if sum != a.Total || a.Total != a.Deposits-a.Withdrawals || !a.Conserved || len(a.Negative) > 0 {
		return fmt.Errorf("audit at L=%d: balances sum to %v, total %v, deposits %v − withdrawals %v, conserved %v, negative %v",
			a.TS, sum, a.Total, a.Deposits, a.Withdrawals, a.Conserved, a.Negative)
	}
	return nil
}

// openAccounts creates accounts through the operator interface and funds
// each with opening from a session of its own.
func openAccounts(t *testing.T, addr string, ids []string, opening money.Cents) {
	t.Helper()
	openAccountsWith(t, addr, client.TLSOptions{}, ids, opening)
}

// openAccountsWith is openAccounts with the given trust for a tls:// addr.
func openAccountsWith(t *testing.T, addr string, trust client.TLSOptions, ids []string, opening money.Cents) {
	t.Helper()
	c, err := client.Dial(context.Background(), addr, client.Options{ProcessID: "operator", TLS: trust})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	for _, id := range ids {
		if _, err := c.OpenAccount(ctx(t), opToken, id, "Holder "+id, "1234"); err != nil {
			t.Fatalf("open account %s: %v", id, err)
		}
		if opening == 0 {
			continue
		}
		s, err := client.Dial(context.Background(), addr, client.Options{ProcessID: "funder", TLS: trust})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if _, err := s.Login(ctx(t), id, "1234"); err != nil {
			t.Fatalf("login %s: %v", id, err)
		}
		if _, err := s.Deposit(ctx(t), opening); err != nil {
			t.Fatalf("fund %s: %v", id, err)
		}
		s.Close()
	}
}

// testServer is a server this package's tests start and stop themselves, for
// restarts on the same file.
type testServer struct {
	bank *boltstore.Bank
	srv  *server.Server
	addr string
	done chan error
}

// startServer serves the bank file at path on 127.0.0.1:0.
func startServer(t *testing.T, path string, bopts boltstore.Options, configure func(*server.Server)) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return startServerOn(t, l, path, bopts, configure)
}

// startServerOn serves the bank file at path on the listener l.
func startServerOn(t *testing.T, l net.Listener, path string, bopts boltstore.Options, configure func(*server.Server)) *testServer {
	t.Helper()
	s := &testServer{srv: &server.Server{OperatorToken: opToken}, done: make(chan error, 1)}
	if configure != nil {
		configure(s.srv)
	}
	if bopts.OnEvent == nil {
		bopts.OnEvent = s.srv.LogEvent
	}
	if bopts.PINCost == 0 {
		bopts.PINCost = bcrypt.MinCost
	}
	b, err := boltstore.Open(path, bopts)
	if err != nil {
		l.Close()
		t.Fatalf("open bank: %v", err)
	}
	s.bank, s.srv.Ledger = b, b
	s.addr = l.Addr().String()
	go func() { s.done <- s.srv.Serve(l) }()
	return s
}

// stop shuts the server down gracefully and closes the bank.
func (s *testServer) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-s.done; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if err := s.bank.Close(); err != nil {
		t.Errorf("close bank: %v", err)
	}
}

// wireCode returns the protocol code of an error from the client, or "" for
// an error that did not come from the server (the outcome is then unknown).
func wireCode(err error) string {
	var pe *wire.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
