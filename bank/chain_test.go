package bank_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/bank/money"
	"atm/netproto/polltest"

	"golang.org/x/crypto/bcrypt"
	"pgregory.net/rapid"
)

// someOperations runs a few of every kind of operation on l, with request
// ids that start with tag, and returns how many events they logged.
func someOperations(t testing.TB, l *bank.Ledger, tag string) int {
	t.Helper()
	ctx := context.Background()
	m := func(i int) bank.Meta { return bank.Meta{ReqID: fmt.Sprintf("%s-%d", tag, i), Client: "atm-" + tag} }
	steps := []func(i int) error{
		func(i int) error { _, err := l.Deposit(ctx, m(i), "123", 1_000); return err },
		func(i int) error { _, err := l.Withdraw(ctx, m(i), "456", 300); return err },
		func(i int) error { _, err := l.Transfer(ctx, m(i), "123", "789", 250); return err },
		func(i int) error { _, err := l.Balance(ctx, m(i), "789"); return err },
		func(i int) error {
			_, err := l.Record(ctx, bank.Event{Kind: bank.KindConnect, Client: "atm-" + tag})
			return err
		},
	}
	for i, s := range steps {
		if err := s(i); err != nil {
			t.Fatalf("%s: step %d: %v", tag, i, err)
		}
	}
	return len(steps)
}

// countEvents counts the events of l's log, and those at or after
// (ts, proc) in the log's order, read by one server (so that order is
// its timestamps').
func countEvents(t testing.TB, l *bank.Ledger, ts uint64) (all, from int) {
	t.Helper()
	err := l.Events(context.Background(), func(e bank.Event) error {
		all++
		if e.TS >= ts {
			from++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all, from
}

// balancesOf returns an audit's balances by account.
func balancesOf(a bank.Audit) map[string]money.Cents {
	out := map[string]money.Cents{}
	for _, acct := range a.Accounts {
		out[acct.ID] = acct.Balance
	}
	return out
}

// checkpointBalances returns a checkpoint's balances by account.
func checkpointBalances(c bank.Checkpoint) map[string]money.Cents {
	out := map[string]money.Cents{}
	for _, b := range c.Balances {
		out[b.ID] = b.Balance
	}
	return out
}

// On every store, every record of the log is chained and a checkpoint
// records the state an audit at its point reads: Verify checks the log
// from the checkpoint on, its event first (it reads nothing before), and
// VerifyFull the whole log, the checkpoint's state included.
func TestChainAndCheckpointsVerifyOnEveryStore(t *testing.T) {
	t.Parallel()
	for _, l := range stores(t, bank.Options{}) {
		someOperations(t, l.Ledger, "before")
		rep, err := l.Verify(t.Context())
		if err != nil || rep.FromTS != 0 || rep.Records == 0 || rep.Unchained != 0 {
			t.Fatalf("%s: verify without a checkpoint: %+v %v", l.name, rep, err)
		}
		a, err := l.Audit(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		c, e, err := l.Checkpoint(t.Context())
		if err != nil {
			t.Fatalf("%s: checkpoint: %v", l.name, err)
		}
		if e.Kind != bank.KindCheckpoint || c.TS != e.TS || c.TS <= a.TS || c.Proc != "bank" {
			t.Fatalf("%s: checkpoint %+v, event %+v, after an audit at L=%d", l.name, c, e, a.TS)
		}
		if got, want := checkpointBalances(c), balancesOf(a); !maps(got, want) ||
			c.Totals.Deposits != a.Deposits || c.Totals.Withdrawals != a.Withdrawals || e.Balance != a.Total {
			t.Fatalf("%s: checkpoint %v (%+v, total %s), audit just before %v (deposits %s, withdrawals %s, total %s)",
				l.name, got, c.Totals, e.Balance, want, a.Deposits, a.Withdrawals, a.Total)
		}
		after := someOperations(t, l.Ledger, "after")
		rep, err = l.Verify(t.Context())
		if err != nil {
			t.Fatalf("%s: verify from the checkpoint: %v", l.name, err)
		}
		all, from := countEvents(t, l.Ledger, c.TS)
		if rep.FromTS != c.TS || rep.FromProc != "bank" || rep.Events != after+1 || from != after+1 || rep.Checkpoints != 1 {
			t.Fatalf("%s: verify from the checkpoint at L=%d: %+v, want %d events (the checkpoint's and the %d after it) of %d",
				l.name, c.TS, rep, after+1, after, all)
		}
		full, err := l.VerifyFull(t.Context())
		if err != nil || full.FromTS != 0 || full.Events != all || full.Checkpoints != 1 || full.Records < rep.Records {
			t.Fatalf("%s: full verify: %+v %v, want all %d events", l.name, full, err, all)
		}
		if full.Total != rep.Total || full.Deposits != rep.Deposits || full.Accounts != rep.Accounts {
			t.Fatalf("%s: the full verify and the one from the checkpoint differ: %+v, %+v", l.name, full, rep)
		}
	}
}

func maps(a, b map[string]money.Cents) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// On etcd, each server's segments are a chain of their own, and a
// checkpoint records every server's head: verifying from a checkpoint
// one server wrote checks the others' segments written after it too.
func TestEveryServerHasItsChain(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	var ls []*etcdstore.Ledger
	for _, p := range []string{"s1", "s2", "s3"} {
		l, err := etcdstore.Open(t.Context(), c.Client(), etcdstore.Options{Options: bank.Options{ProcessID: p, PINCost: bcrypt.MinCost}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		ls = append(ls, l)
	}
	for i, l := range ls[:2] {
		someOperations(t, l.Ledger, fmt.Sprint("s", i+1))
	}
	cp, _, err := ls[1].Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var chains []string
	for _, h := range cp.Heads {
		chains = append(chains, h.Chain)
		if h.Hash.IsZero() {
			t.Fatalf("head of %s at L=%d: zero hash", h.Chain, h.TS)
		}
	}
	if !slices.Equal(chains, []string{"s1", "s2"}) { // s3 has written nothing
		t.Fatalf("checkpoint heads: %+v", cp.Heads)
	}
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() { someOperations(t, l.Ledger, fmt.Sprint("after-s", i+1)) })
	}
	wg.Wait()
	rep, err := ls[2].Verify(t.Context())
	if err != nil || rep.FromTS != cp.TS || rep.FromProc != "s2" || rep.Events != 16 {
		t.Fatalf("verify from s2's checkpoint: %+v %v, want its event and the 15 after it", rep, err)
	}
	if full, err := ls[0].VerifyFull(t.Context()); err != nil || full.Events <= rep.Events {
		t.Fatalf("full verify: %+v %v", full, err)
	}

	// Checkpoints while the other servers commit: each records the bank
	// at the revision it read, and what the others commit meanwhile is
	// after their heads. Each verifies, from it and in full.
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt() // on a failure too: no load after the test
	for i, l := range []*etcdstore.Ledger{ls[0], ls[2]} {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				m := bank.Meta{ReqID: fmt.Sprintf("load-%d-%d", i, n), Client: "atm-load"}
				if _, err := l.Transfer(t.Context(), m, "123", "456", 1); err != nil {
					t.Error(err)
					return
				}
				if _, err := l.Deposit(t.Context(), m, "789", 2); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 5 {
		c, _, err := ls[1].Checkpoint(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rep, err := ls[1].Verify(t.Context())
		if err != nil || rep.FromTS != c.TS {
			t.Fatalf("verify from a checkpoint written under load: %+v %v", rep, err)
		}
	}
	halt()
	if full, err := ls[0].VerifyFull(t.Context()); err != nil || full.Checkpoints != 6 {
		t.Fatalf("full verify after checkpoints under load: %+v %v", full, err)
	}
}

// With Options.CheckpointEvery, a server writes a checkpoint by itself
// every so many events, and Verify starts from the newest.
func TestCheckpointEveryNEvents(t *testing.T) {
	t.Parallel()
	for _, l := range stores(t, bank.Options{CheckpointEvery: 5}) {
		for i := range 12 {
			if _, err := l.Deposit(t.Context(), bank.Meta{ReqID: fmt.Sprint("d", i)}, "123", 1); err != nil {
				t.Fatal(err)
			}
		}
		var cps []uint64
		polltest.Until(t, l.name+": two checkpoints in the log", 10*time.Second, func() bool {
			cps = cps[:0]
			if err := l.Events(t.Context(), func(e bank.Event) error {
				if e.Kind == bank.KindCheckpoint {
					cps = append(cps, e.TS)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return len(cps) >= 2
		})
		rep, err := l.Verify(t.Context())
		if err != nil || rep.FromTS < cps[1] {
			t.Fatalf("%s: verify with checkpoints at %v: %+v %v", l.name, cps, rep, err)
		}
	}
}

// Random operations, some at once from several goroutines, and
// checkpoints between them, on both stores: each checkpoint holds the
// state an audit just before it reads, and the log always verifies, from
// the newest checkpoint and in full.
func TestRandomOperationsAndCheckpointsVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cluster := etcdtest.Start(t, 1)
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		ctx := context.Background()
		opts := bank.Options{PINCost: bcrypt.MinCost, MaxAmount: 5_000, NoDefaults: true}
		b, err := boltstore.Open(filepath.Join(dir, fmt.Sprintf("r%d.db", run)), boltstore.Options{Options: opts,
			MaxBatch: rapid.IntRange(1, 8).Draw(rt, "maxBatch")})
		if err != nil {
			rt.Fatal(err)
		}
		defer b.Close()
		e, err := etcdstore.Open(ctx, cluster.Client(), etcdstore.Options{Options: opts, Prefix: fmt.Sprintf("r%d/", run)})
		if err != nil {
			rt.Fatal(err)
		}
		defer e.Close()
		ls := []ledger{{"bbolt", b.Ledger}, {"etcd", e.Ledger}}
		ids := []string{"1", "2", "3"}
		for _, l := range ls {
			for _, id := range ids {
				if _, err := l.CreateAccount(ctx, id, "Holder "+id, "1234"); err != nil {
					rt.Fatal(err)
				}
			}
		}
		type op struct {
			kind     int
			id, to   string
			amount   money.Cents
			req      string
			parallel bool
		}
		ops := rapid.SliceOfN(rapid.Custom(func(rt *rapid.T) op {
			return op{
				kind:     rapid.IntRange(0, 4).Draw(rt, "kind"),
				id:       rapid.SampledFrom(ids).Draw(rt, "id"),
				to:       rapid.SampledFrom(ids).Draw(rt, "to"),
				amount:   money.Cents(rapid.Int64Range(-5, 6_000).Draw(rt, "amount")),
				req:      fmt.Sprint("q", rapid.IntRange(0, 20).Draw(rt, "req")),
				parallel: rapid.Bool().Draw(rt, "parallel"),
			}
		}), 1, 30).Draw(rt, "ops")
		for _, l := range ls {
			var wg sync.WaitGroup
			for _, o := range ops {
				do := func() {
					m := bank.Meta{ReqID: o.req, Client: "prop"}
					switch o.kind {
					case 0:
						l.Deposit(ctx, m, o.id, o.amount)
					case 1:
						l.Withdraw(ctx, m, o.id, o.amount)
					case 2:
						l.Transfer(ctx, m, o.id, o.to, o.amount)
					case 3:
						l.Record(ctx, bank.Event{Kind: bank.KindConnect, Client: "prop"})
					}
				}
				if o.kind == 4 { // a checkpoint, alone: it holds an audit's state
					wg.Wait()
					a, err := l.Audit(ctx)
					if err != nil {
						rt.Fatal(err)
					}
					c, _, err := l.Checkpoint(ctx)
					if err != nil {
						rt.Fatalf("%s: checkpoint: %v", l.name, err)
					}
					if !maps(checkpointBalances(c), balancesOf(a)) || c.Totals.Deposits != a.Deposits || c.Totals.Withdrawals != a.Withdrawals {
						rt.Fatalf("%s: checkpoint %+v, audit just before %+v", l.name, c, a)
					}
					continue
				}
				if o.parallel {
					wg.Go(do)
				} else {
					do()
				}
			}
			wg.Wait()
			rep, err := l.Verify(ctx)
			if err != nil {
				rt.Fatalf("%s: verify: %v", l.name, err)
			}
			full, err := l.VerifyFull(ctx)
			if err != nil {
				rt.Fatalf("%s: full verify: %v", l.name, err)
			}
			if full.Total != rep.Total || full.Deposits != rep.Deposits || full.Withdrawals != rep.Withdrawals || rep.Events > full.Events {
				rt.Fatalf("%s: from the checkpoint %+v, in full %+v", l.name, rep, full)
			}
		}
	})
}
