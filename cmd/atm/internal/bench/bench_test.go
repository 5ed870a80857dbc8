package bench

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/netproto/server"

	"golang.org/x/crypto/bcrypt"
)

// atm bench end to end, in-process and briefly: every mix, both load
// generators, commit per operation and group commit. It checks the run
// works and the ledger stays conserved; it asserts nothing about speed.
func TestBenchRuns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mix, client string
		maxBatch    int
		push        bool
	}{
		{"transfer", "lean", 0, false},
		{"mixed", "lean", 1, true},
		{"deposit", "lib", 0, false},
		{"mixed", "lib", 0, true},
	} {
		t.Run(tc.mix+"/"+tc.client, func(t *testing.T) {
			t.Parallel()
			res, err := bench(benchConfig{
				embedded: true, clients: 4, duration: 300 * time.Millisecond, mix: tc.mix,
				client: tc.client, maxBatch: tc.maxBatch, push: tc.push, base: 770_000_000,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || !res.Conserved || res.Ops == 0 {
				t.Fatalf("ops %d errors %d conserved %v: %v", res.Ops, res.Errors, res.Conserved, res.FirstErrors)
			}
			if !(res.P50ms <= res.P90ms && res.P90ms <= res.P99ms && res.P99ms <= res.Maxms) {
				t.Fatalf("percentiles out of order: %+v", res)
			}
			if res.Batches == 0 || res.FsyncPerSec <= 0 || res.RTTp50us <= 0 {
				t.Fatalf("missing machine or committer figures: %+v", res)
			}
		})
	}
}

func TestJSONField(t *testing.T) {
	t.Parallel()
	line := []byte(`{"type":"reply","id":"b-1","op":"transfer","proc":"bank","ts":42,"recv_ts":40,"to_holder":"x\",\"ts\":7"}` + "\n")
	for key, want := range map[string]string{"type": "reply", "id": "b-1", "ts": "42", "recv_ts": "40"} {
		if got, ok := jsonField(line, key); !ok || string(got) != want {
			t.Errorf("%s: %q %v, want %q", key, got, ok, want)
		}
	}
	if _, ok := jsonField(line, "code"); ok {
		t.Error("found a key that is not there")
	}
}

// countingListener counts the connections it accepted.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// serveBank serves one bbolt bank, with the operator token, on n listeners
// of 127.0.0.1 that count their connections; at the end of the test the
// server shuts down and the bank verifies and closes.
func serveBank(t *testing.T, token string, n int) (*boltstore.Bank, []*countingListener) {
	t.Helper()
	srv := &server.Server{OperatorToken: token}
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost, OnEvent: srv.LogEvent}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Ledger = b
	ls := make([]*countingListener, n)
	done := make([]chan error, n)
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[i], done[i] = &countingListener{Listener: l}, make(chan error, 1)
		go func() { done[i] <- srv.Serve(ls[i]) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for i := range done {
			if err := <-done[i]; !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("Serve %d: %v", i, err)
			}
		}
		if _, err := b.Verify(context.Background()); err != nil {
			t.Errorf("verify: %v", err)
		}
		b.Close()
	})
	return b, ls
}

// atm bench --addr a,b: one bank served at two addresses; session i goes to
// address i mod 2, the operator's connection to the first.
func TestBenchSpreadsSessionsOverServers(t *testing.T) {
	t.Parallel()
	const token = "bench-token"
	_, ls := serveBank(t, token, 2)
	res, err := bench(benchConfig{
		addr: ls[0].Addr().String() + "," + ls[1].Addr().String(), token: token,
		clients: 5, duration: 200 * time.Millisecond, mix: "transfer", client: "lean", base: 660_000_000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || !res.Conserved || res.Ops == 0 {
		t.Fatalf("ops %d errors %d conserved %v: %v", res.Ops, res.Errors, res.Conserved, res.FirstErrors)
	}
	// Sessions 0, 2 and 4 and the operator on the first; 1 and 3 on the second.
	if a, b := ls[0].n.Load(), ls[1].n.Load(); a != 4 || b != 2 {
		t.Errorf("connections: %d on the first address, %d on the second; want 4 and 2", a, b)
	}
}

// A second run on the same accounts applies its own transfers: its request
// ids are not the first run's, which the bank would answer as repeats.
func TestBenchRunsAgainOnTheSameAccounts(t *testing.T) {
	t.Parallel()
	const token = "bench-token"
	b, ls := serveBank(t, token, 1)
	l := ls[0]
	var ops int64
	for run := range 2 {
		res, err := bench(benchConfig{addr: l.Addr().String(), token: token,
			clients: 3, duration: 200 * time.Millisecond, mix: "transfer", client: "lean", base: 670_000_000})
		if err != nil || res.Errors != 0 || res.Ops == 0 {
			t.Fatalf("run %d: %+v %v", run, res, err)
		}
		ops += res.Ops
	}
	var transfers, repeats int64
	if err := b.Events(context.Background(), func(e bank.Event) error {
		switch e.Kind {
		case bank.KindTransfer:
			transfers++
		case bank.KindRetry:
			repeats++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if repeats != 0 || transfers < ops {
		t.Fatalf("%d operations answered, %d transfers applied and %d answered as repeats", ops, transfers, repeats)
	}
}
