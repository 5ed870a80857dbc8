package server_test

import (
	"bufio"
	"encoding/json"
	"net"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdledger"
	"atm/bank/money"
)

// rawAt opens a bare TCP connection to addr and reads the greeting.
func rawAt(t *testing.T, addr string) (*raw, map[string]any) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, br: bufio.NewReader(c)}
	return r, r.read()
}

// ledgerSnapshot is snapshot for a bank kept in etcd.
func ledgerSnapshot(t *testing.T, l *etcdledger.Ledger) moneyState {
	t.Helper()
	a, err := l.Audit()
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

// TestClusterHostileInput sends the bad requests of hostileCases to one
// server of three serving one bank in an etcd cluster, each on a
// connection of its own: each gets its documented error, the connection
// stays usable (or is closed, where documented), no balance, total or PIN
// counter changes, and no applied money event enters the log (a refusal
// by the ledger is recorded, as refused). The state is read
// through another server's ledger.
func TestClusterHostileInput(t *testing.T) {
	began := time.Now()
	bc := newBankCluster(t, startEtcdCluster(t, 3), 3, etcdledger.Options{})
	target, reader := bc.servers[1], bc.servers[2].ledger
	appliedCount := func() int {
		n := 0
		for _, e := range bc.events() {
			switch e.Kind {
			case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer:
				if e.Outcome == "ok" {
					n++
				}
			}
		}
		return n
	}
	cases := hostileCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, hello := rawAt(t, target.addr)
			if hello["type"] != "hello" || hello["proc"] != target.proc {
				t.Fatalf("greeting %v", hello)
			}
			if tc.login {
				if m := r.req(map[string]any{"type": "login", "id": "in", "account": "123", "pin": "1234"}); m["type"] != "reply" {
					t.Fatalf("login: %v", m)
				}
			}
			before := ledgerSnapshot(t, reader)
			beforeEvents := appliedCount()
			if _, err := r.c.Write([]byte(tc.line + "\n")); err != nil {
				t.Fatalf("write: %v", err)
			}
			m := r.read()
			if m["type"] != "error" || m["code"] != tc.code {
				t.Fatalf("got %v, want error %s", m, tc.code)
			}
			if msg, _ := m["message"].(string); msg == "" {
				t.Errorf("error %s has no message", tc.code)
			}
			var sent map[string]any
			if json.Unmarshal([]byte(tc.line), &sent) == nil && tc.code != "malformed" && tc.code != "line_too_long" {
				if id, ok := sent["id"].(string); ok && tc.code != "invalid_request_id" && m["id"] != id {
					t.Errorf("error %s answers id %v, want %q", tc.code, m["id"], id)
				}
			}
			if tc.closes {
				_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if extra, err := r.br.ReadBytes('\n'); err == nil {
					t.Fatalf("connection still open after %s: %q", tc.code, extra)
				}
			} else {
				m := r.req(map[string]any{"type": "lookup", "id": "after", "account": "456"})
				want := "reply"
				if !tc.login {
					want = "error"
				}
				if m["type"] != want || m["id"] != "after" {
					t.Fatalf("after %s the connection answers %v", tc.name, m)
				}
			}
			if d := before.diff(ledgerSnapshot(t, reader)); d != "" {
				t.Fatalf("state changed: %s", d)
			}
			if n := appliedCount(); n != beforeEvents {
				t.Fatalf("applied money events in the log went from %d to %d", beforeEvents, n)
			}
		})
	}
	rep := bc.verify()
	figures(t, "servers=3 etcd_members=3 bad_inputs=%d events_replayed=%d wall=%s", len(cases), rep.Events, time.Since(began).Round(time.Millisecond))
}
