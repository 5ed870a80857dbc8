package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdstore/etcdtest"
	"atm/bank/money"
	"atm/netproto/client"
	"atm/netproto/polltest"
	"atm/netproto/wire"
)

// startTestEtcdCluster starts a three-member embedded etcd cluster in the
// test process and returns its client endpoints, HOST:PORT separated by
// commas, as atm serve --etcd takes them.
func startTestEtcdCluster(t *testing.T) string {
	t.Helper()
	return strings.Join(etcdtest.Start(t, 3).Endpoints(), ",")
}

// sigkillAck is a money request an ATM got an answer to.
type sigkillAck struct {
	proc, id string
	kind     bank.Kind
	amount   money.Cents
	code     string // "ok" or the refusal's code
	apply    uint64
	balance  money.Cents
}

// TestServeEtcdSIGKILLUnderLoad runs three atm serve --etcd processes,
// bank-1..bank-3, on one three-member etcd cluster, with ATMs that know
// the three addresses and reconnect moving money through all of them. At a
// random moment bank-1 is killed with SIGKILL; its ATMs fail over to the
// other two and resend what was pending with the same ids. In the end no
// acknowledged operation is missing from the log of atm log --etcd --json,
// none is applied twice (counted by request id), the totals moved by what
// the ATMs were told (plus at most what they do not know), atm verify
// --etcd exits 0, and bank-1 restarted with the same --proc greets above
// every timestamp it sent or stored before the kill.
func TestServeEtcdSIGKILLUnderLoad(t *testing.T) {
	t.Parallel()
	const atms = 9
	const progress = 5
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ATM_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ATM_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("random seed %d (replay with ATM_TEST_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	bin := buildATM(t)
	began := time.Now()
	endpoints := startTestEtcdCluster(t)
	var servers []*etcdChild
	var addrs []string
	for i := range 3 {
		s := startServeEtcd(t, bin, endpoints, fmt.Sprintf("bank-%d", i+1))
		servers = append(servers, s)
		addrs = append(addrs, s.addr)
	}
	accounts := []string{"123", "456", "789"}

	var (
		mu         sync.Mutex
		acks       []sigkillAck
		okOn       = map[string]int{} // successes per server
		okBy       = map[string]int{} // successes per ATM
		maxSent    = map[string]uint64{}
		unknown    int
		unknownIn  money.Cents
		unknownOut money.Cents
		dups       int
		failures   []error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// sent records a timestamp server proc sent.
	sent := func(proc string, ts uint64) {
		maxSent[proc] = max(maxSent[proc], ts)
	}
	var onKilled []string
	ours := map[string]bool{} // the ATMs' process ids
	for i := range atms {
		list := strings.Join(append(append([]string(nil), addrs[i%3:]...), addrs[:i%3]...), ",")
		proc := fmt.Sprintf("atm-%02d", i)
		ours[proc] = true
		acct := accounts[i%len(accounts)]
		c, err := client.Dial(context.Background(), list, client.Options{ProcessID: proc, Reconnect: true, RequestTimeout: 20 * time.Second})
		if err != nil {
			t.Fatalf("dial %s: %v", list, err)
		}
		defer c.Close()
		go func() {
			for range c.Pushes() {
			}
		}()
		if _, err := c.Login(context.Background(), acct, "1234"); err != nil {
			t.Fatalf("login %s: %v", acct, err)
		}
		h := c.Hello()
		mu.Lock()
		sent(h.Server, h.TS)
		mu.Unlock()
		if h.Server == "bank-1" {
			onKilled = append(onKilled, proc)
		}
		r := rand.New(rand.NewPCG(rng.Uint64(), uint64(i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := sigkillAck{proc: proc, amount: money.Cents(1 + r.IntN(60_000))}
				before := c.Hello().Server
				var rep client.Reply
				var err error
				switch r.IntN(3) {
				case 0:
					a.kind = bank.KindDeposit
					rep, err = c.Deposit(context.Background(), a.amount)
				case 1:
					a.kind = bank.KindWithdraw
					rep, err = c.Withdraw(context.Background(), a.amount)
				default:
					a.kind = bank.KindTransfer
					rep, err = c.Transfer(context.Background(), accounts[(i+1+r.IntN(2))%len(accounts)], a.amount)
				}
				after := c.Hello().Server
				var pe *wire.Error
				mu.Lock()
				switch {
				case err == nil:
					a.id, a.code, a.apply, a.balance = rep.ID, "ok", rep.ServerApply, rep.Balance
					acks = append(acks, a)
					okOn[after]++
					okBy[proc]++
					if rep.Duplicate {
						dups++
					}
					if before == after {
						sent(after, rep.TS)
					}
				case errors.As(err, &pe) && pe.Code == "insufficient_funds":
					a.id, a.code = pe.ID, pe.Code
					acks = append(acks, a)
					if before == after {
						sent(after, pe.TS)
					}
				case errors.Is(err, client.ErrOutcomeUnknown) || errors.As(err, &pe) && (pe.Code == "unavailable" || pe.Code == "shutting_down"):
					unknown++
					switch a.kind {
					case bank.KindDeposit:
						unknownIn += a.amount
					case bank.KindWithdraw:
						unknownOut += a.amount
					}
				default:
					failures = append(failures, fmt.Errorf("%s on %s: %s: %w", proc, after, a.kind, err))
				}
				failed := len(failures) > 0
				mu.Unlock()
				if failed {
					return
				}
			}
		}()
	}
	halted := false
	halt := func() {
		if !halted {
			halted = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt()
	if len(onKilled) != atms/3 {
		t.Fatalf("ATMs on bank-1: %v", onKilled)
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		polltest.Until(t, what, 30*time.Second, func() bool {
			mu.Lock()
			done, failed := cond(), len(failures) > 0
			mu.Unlock()
			if failed {
				halt()
				t.Fatalf("the ATMs failed: %v", failures)
			}
			return done
		})
	}
	waitUntil("successes on every server", func() bool {
		return okOn["bank-1"] >= progress && okOn["bank-2"] >= progress && okOn["bank-3"] >= progress
	})
	// The kill comes after a random number of further answers.
	mu.Lock()
	killAt := len(acks) + rng.IntN(60)
	mu.Unlock()
	waitUntil("the moment of the kill", func() bool { return len(acks) >= killAt })
	if err := servers[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	<-servers[0].exited
	mu.Lock()
	base := map[string]int{}
	for _, p := range onKilled {
		base[p] = okBy[p]
	}
	acksAtKill := len(acks)
	mu.Unlock()
	waitUntil("successes of bank-1's ATMs on the other servers", func() bool {
		for _, p := range onKilled {
			if okBy[p] < base[p]+progress {
				return false
			}
		}
		return true
	})
	failover := time.Since(t0)
	halt()

	// What bank-1 stored before the kill (read before it restarts).
	code, out, errOut := runATMInput(t, bin, "", "log", "--etcd", endpoints, "--json")
	if code != 0 {
		t.Fatalf("atm log --etcd: exit %d\n%s", code, errOut)
	}
	var events []bank.Event
	for line := range strings.Lines(out) {
		var e bank.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		events = append(events, e)
		if e.Proc == "bank-1" {
			sent("bank-1", max(e.TS, e.ReplyTS))
		}
	}

	// Each answered request is in the log once, with the outcome the ATM
	// was told; no request is applied twice.
	type key struct{ proc, id string }
	byReq := map[key][]bank.Event{}
	var in, outSum money.Cents
	for _, e := range events {
		switch e.Kind {
		case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer:
		default:
			continue
		}
		byReq[key{e.Client, e.ReqID}] = append(byReq[key{e.Client, e.ReqID}], e)
		if ours[e.Client] && e.Outcome == "ok" { // not the opening deposits of the seeded accounts

			switch e.Kind {
			case bank.KindDeposit:
				in += e.Amount
			case bank.KindWithdraw:
				outSum += e.Amount
			}
		}
	}
	lost, twice := 0, 0
	var toldIn, toldOut money.Cents
	for _, a := range acks {
		evs := byReq[key{a.proc, a.id}]
		switch {
		case len(evs) == 0:
			lost++
			t.Errorf("%s %s %s (%s) was answered and is not in the log", a.proc, a.kind, a.id, a.code)
			continue
		case len(evs) > 1:
			continue // counted below
		}
		e := evs[0]
		if e.Outcome != a.code || e.Kind != a.kind || e.Amount != a.amount || a.code == "ok" && (e.TS != a.apply || e.Balance != a.balance) {
			t.Errorf("%s was told %s %s %v (L=%d, balance %v); the log has %+v", a.proc, a.kind, a.code, a.amount, a.apply, a.balance, e)
		}
		if a.code == "ok" {
			switch a.kind {
			case bank.KindDeposit:
				toldIn += a.amount
			case bank.KindWithdraw:
				toldOut += a.amount
			}
		}
	}
	for k, evs := range byReq {
		if len(evs) > 1 {
			twice++
			t.Errorf("request %s of %s is in the log %d times", k.id, k.proc, len(evs))
		}
	}
	if in < toldIn || in > toldIn+unknownIn {
		t.Errorf("the log took in %v; ATMs were told %v (plus up to %v unknown)", in, toldIn, unknownIn)
	}
	if outSum < toldOut || outSum > toldOut+unknownOut {
		t.Errorf("the log paid out %v; ATMs were told %v (plus up to %v unknown)", outSum, toldOut, unknownOut)
	}

	// bank-1 restarted with the same --proc greets above everything it sent.
	restarted := startServeEtcd(t, bin, endpoints, "bank-1")
	c, err := client.Dial(context.Background(), restarted.addr, client.Options{ProcessID: "after-restart"})
	if err != nil {
		t.Fatalf("dial the restarted bank-1: %v", err)
	}
	defer c.Close()
	hello := c.Hello()
	if hello.Server != "bank-1" || hello.TS <= maxSent["bank-1"] {
		t.Fatalf("restarted %s greets at L=%d, not above L=%d sent before the kill", hello.Server, hello.TS, maxSent["bank-1"])
	}
	if _, err := c.Login(context.Background(), "123", "1234"); err != nil {
		t.Fatalf("login on the restarted bank-1: %v", err)
	}

	code, vout, errOut := runATMInput(t, bin, "", "verify", "--etcd", endpoints)
	if code != 0 || !strings.HasPrefix(vout, "ok: ") {
		t.Fatalf("atm verify --etcd: exit %d\n%s%s", code, vout, errOut)
	}
	answered := 0
	for _, a := range acks {
		if a.code == "ok" {
			answered++
		}
	}
	t.Logf("FIGURES %s: servers=3 etcd_members=3 atms=%d answered=%d ok=%d (bank-1 %d, bank-2 %d, bank-3 %d) refused=%d unknown=%d duplicate_replies=%d answers_before_kill=%d kill_to_%d_ok_per_moved_atm=%s acknowledged_lost=%d applied_twice=%d log_events=%d bank1_max_ts_before_kill=%d bank1_restart_hello_ts=%d wall=%s",
		t.Name(), atms, len(acks), answered, okOn["bank-1"], okOn["bank-2"], okOn["bank-3"], len(acks)-answered, unknown, dups,
		acksAtKill, progress, failover.Round(time.Millisecond), lost, twice, len(events), maxSent["bank-1"], hello.TS, time.Since(began).Round(time.Millisecond))
}
