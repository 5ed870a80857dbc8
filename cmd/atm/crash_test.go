package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/polltest"
	"atm/netproto/wire"

	"atm/bank/boltstore"
	"atm/bank/money"
	"atm/bank/outcome"

	"golang.org/x/crypto/bcrypt"

	"atm/bank"
)

const crashToken = "crash-test-operator"

// atmBuild is the atm binary the tests run: built once, by the first test
// that needs it, into a directory that TestMain removes at the end.
var atmBuild struct {
	once sync.Once
	dir  string // the directory, once made
	bin  string // the binary, once built
	skip string // why it cannot be built here
	err  error
}

// buildATM returns the atm binary, building it on the first call.
func buildATM(t *testing.T) string {
	t.Helper()
	atmBuild.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			atmBuild.skip = "the go tool is not on PATH; the test needs it to build atm"
			return
		}
		if atmBuild.dir, err = os.MkdirTemp("", "atm-test-bin-"); err != nil {
			atmBuild.err = err
			return
		}
		bin := filepath.Join(atmBuild.dir, "atm")
		if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
			atmBuild.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		atmBuild.bin = bin
	})
	switch {
	case atmBuild.skip != "":
		t.Skip(atmBuild.skip)
	case atmBuild.err != nil:
		t.Fatal(atmBuild.err)
	}
	return atmBuild.bin
}

// removeATMBuild removes the built binary, if any; TestMain calls it.
func removeATMBuild() {
	if atmBuild.dir != "" {
		os.RemoveAll(atmBuild.dir)
	}
}

// child is one run of atm serve.
type child struct {
	cmd    *exec.Cmd
	addr   string
	out    string        // its stdout and stderr
	exited chan struct{} // closed when the process has exited; err is then set
	err    error
}

var listenRE = regexp.MustCompile(`on (127\.0\.0\.1:[0-9]+) \(protocol`)

// startServe starts atm serve on the file db at addr (port 0: any), with
// the extra flags given, and waits until it listens.
func startServe(t *testing.T, bin, db, addr string, n int, extra ...string) *child {
	t.Helper()
	out := filepath.Join(filepath.Dir(db), fmt.Sprintf("serve-%d.log", n))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr, "--db", db, "--log-format", "json",
		"--operator-token", crashToken}, extra...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start atm serve: %v", err)
	}
	c := &child{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
	})
	var b []byte
	listening := polltest.Within(20*time.Second, func() bool {
		b, _ = os.ReadFile(out)
		if m := listenRE.FindSubmatch(b); m != nil {
			c.addr = string(m[1])
			return true
		}
		select {
		case <-c.exited:
			t.Fatalf("atm serve exited before listening (%v):\n%s", c.err, b)
		default:
		}
		return false
	})
	if !listening {
		t.Fatalf("atm serve did not report its address:\n%s", b)
	}
	return c
}

// acked is an operation the server answered.
type acked struct {
	id      string
	kind    bank.Kind
	amount  money.Cents
	code    string // "ok" or the error code
	balance money.Cents
	apply   uint64
}

// TestCrashDurability runs atm serve as a child process, drives load
// through the client library and kills the server with SIGKILL at random
// moments, several times, restarting it on the same file each time. Every
// answered operation must be in the log exactly once with the outcome the
// client got, the ledger must replay to its balances (nothing half
// applied), money must be conserved, the clock must resume above anything a
// client saw, a PIN lock must survive the kill, and atm verify must pass.
// Each cycle also has a client that reconnects on its own: its request in
// flight at the kill is resent, with the same id, to the restarted server on
// the same port, and is applied once (or answered as already applied).
func TestCrashDurability(t *testing.T) {
	t.Parallel()
	cycles := 6
	if testing.Short() {
		cycles = 3
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ATM_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("random seed %d (replay with ATM_TEST_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	bin := buildATM(t)
	t.Logf("built %s", bin)
	db := filepath.Join(t.TempDir(), "bank.db")
	accounts := []string{"123", "456", "789"}

	var (
		mu       sync.Mutex
		answered []acked
		unknown  int
		maxSeen  uint64 // highest server timestamp any client received
		// A retrier's request in flight at a kill is resent by the client
		// library, with the same id, once the server is back.
		retried, retriedDup int
		retriers            sync.WaitGroup
	)
	see := func(ts uint64) {
		mu.Lock()
		maxSeen = max(maxSeen, ts)
		mu.Unlock()
	}
	ctx := context.Background()

	var lockUntil time.Time
	kills := 0
	addr := "127.0.0.1:0" // then the same port for every restart, as a real server
	for cycle := range cycles + 1 {
		srv := startServe(t, bin, db, addr, cycle)
		addr = srv.addr
		t.Logf("cycle %d: serving on %s", cycle, srv.addr)
		op, err := client.Dial(ctx, srv.addr, client.Options{ProcessID: "operator"})
		if err != nil {
			t.Fatalf("cycle %d: dial: %v", cycle, err)
		}
		mu.Lock()
		prev := maxSeen
		mu.Unlock()
		if hello := op.Hello(); hello.TS <= prev {
			t.Fatalf("cycle %d: the restarted server greets at L=%d, not above L=%d seen before the kill", cycle, hello.TS, prev)
		}
		a, err := op.Audit(ctx, crashToken)
		if err != nil {
			t.Fatalf("cycle %d: audit: %v", cycle, err)
		}
		if !a.Conserved || a.Total != a.Deposits-a.Withdrawals || len(a.Negative) > 0 {
			t.Fatalf("cycle %d: audit after restart: %+v", cycle, a)
		}
		// The previous cycle's retrier finishes against this server.
		retriers.Wait()
		switch cycle {
		case 0:
			lockUntil = lockAccount(t, op, srv.addr)
		case 1: // the lock survived the kill
			if err := loginOnce(srv.addr, "5005", "1234"); !errors.Is(err, outcome.ErrAccountLocked) || !untilOf(err).Equal(lockUntil) {
				t.Fatalf("after SIGKILL and restart, the locked account answers %v (want locked until %v)", err, lockUntil)
			}
		}
		op.Close()
		if cycle == cycles {
			// Last run: stop it gracefully and check the file offline.
			if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			<-srv.exited
			if srv.err != nil {
				b, _ := os.ReadFile(srv.out)
				t.Fatalf("atm serve on SIGTERM: %v\n%s", srv.err, lastLines(b, 20))
			}
			break
		}

		// Load until the kill.
		const workers = 6
		var wg sync.WaitGroup
		var progress sync.WaitGroup
		progress.Add(workers)
		for w := range workers {
			wseed := rng.Uint64()
			wg.Add(1)
			go func() {
				defer wg.Done()
				started := false
				defer func() {
					if !started {
						progress.Done()
					}
				}()
				r := rand.New(rand.NewPCG(wseed, uint64(w)))
				acct := accounts[w%len(accounts)]
				c, err := client.Dial(ctx, srv.addr, client.Options{ProcessID: fmt.Sprintf("atm-c%d-w%d", cycle, w)})
				if err != nil {
					return
				}
				defer c.Close()
				if _, err := c.Login(ctx, acct, "1234"); err != nil {
					return
				}
				for {
					amount := money.Cents(1 + r.IntN(50_000))
					var rep client.Reply
					var err error
					kind := []bank.Kind{bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer}[r.IntN(3)]
					switch kind {
					case bank.KindDeposit:
						rep, err = c.Deposit(ctx, amount)
					case bank.KindWithdraw:
						rep, err = c.Withdraw(ctx, amount)
					case bank.KindTransfer:
						rep, err = c.Transfer(ctx, accounts[(w+1+r.IntN(2))%len(accounts)], amount)
					}
					var pe *wire.Error
					switch {
					case err == nil:
						see(rep.TS)
						mu.Lock()
						answered = append(answered, acked{id: rep.ID, kind: kind, amount: amount, code: "ok",
							balance: rep.Balance, apply: rep.ServerApply})
						mu.Unlock()
					case errors.As(err, &pe) && pe.ID != "":
						see(pe.TS)
						mu.Lock()
						answered = append(answered, acked{id: pe.ID, kind: kind, amount: amount, code: pe.Code})
						mu.Unlock()
					default: // the server died with the request in flight
						mu.Lock()
						unknown++
						mu.Unlock()
						return
					}
					if !started {
						started = true
						progress.Done()
					}
				}
			}()
		}
		// A retrier reconnects after the kill: its request in flight is
		// resent with the same id to the restarted server, and answered.
		killed := make(chan struct{})
		retriers.Add(1)
		go func() {
			defer retriers.Done()
			c, err := client.Dial(ctx, srv.addr, client.Options{
				ProcessID: fmt.Sprintf("atm-c%d-retrier", cycle), Reconnect: true})
			if err != nil {
				return
			}
			defer c.Close()
			if _, err := c.Login(ctx, "789", "1234"); err != nil {
				return
			}
			isKilled := func() bool {
				select {
				case <-killed:
					return true
				default:
					return false
				}
			}
			for {
				before := isKilled()
				amount := money.Cents(1 + rng2(cycle).IntN(5_000))
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				rep, err := c.Deposit(rctx, amount)
				cancel()
				// In flight when the server was killed: the client resent it,
				// with the same id, to the restarted server.
				straddled := !before && isKilled()
				var pe *wire.Error
				switch {
				case err == nil:
					see(rep.TS)
					mu.Lock()
					answered = append(answered, acked{id: rep.ID, kind: bank.KindDeposit, amount: amount, code: "ok",
						balance: rep.Balance, apply: rep.ServerApply})
					mu.Unlock()
				case errors.As(err, &pe) && pe.ID != "":
					see(pe.TS)
					mu.Lock()
					answered = append(answered, acked{id: pe.ID, kind: bank.KindDeposit, amount: amount, code: pe.Code})
					mu.Unlock()
				default:
					t.Errorf("retrier: %v", err)
					return
				}
				if straddled {
					mu.Lock()
					retried++
					if err == nil && rep.Duplicate {
						retriedDup++
					}
					mu.Unlock()
				}
				if straddled || before {
					return
				}
			}
		}()

		// A session that never logs in gets not_logged_in errors: their
		// timestamps come from ticks the ledger never writes, and the
		// restarted server must still resume above them.
		probeDone := make(chan struct{})
		go func() {
			defer close(probeDone)
			c, err := client.Dial(ctx, srv.addr, client.Options{ProcessID: fmt.Sprintf("atm-c%d-probe", cycle)})
			if err != nil {
				return
			}
			defer c.Close()
			for {
				_, err := c.Balance(ctx)
				var pe *wire.Error
				if !errors.As(err, &pe) {
					return
				}
				see(pe.TS)
			}
		}()
		// Every worker has had an answer (or could not start); kill at a
		// random moment under load.
		progress.Wait()
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-srv.exited
		kills++
		close(killed)
		wg.Wait()
		<-probeDone
		mu.Lock()
		t.Logf("cycle %d: killed with SIGKILL; %d operations answered so far", cycle, len(answered))
		mu.Unlock()
	}

	// Offline checks on the file.
	verify := exec.Command(bin, "verify", "--db", db)
	if out, err := verify.CombinedOutput(); err != nil {
		t.Fatalf("atm verify: %v\n%s", err, out)
	} else {
		t.Logf("atm verify: %s", bytes.TrimSpace(out))
	}
	logOut, err := exec.Command(bin, "log", "--db", db, "--json").Output()
	if err != nil {
		t.Fatalf("atm log: %v", err)
	}
	byID := map[string][]bank.Event{}
	events := 0
	sc := bufio.NewScanner(bytes.NewReader(logOut))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e bank.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("atm log line %q: %v", sc.Bytes(), err)
		}
		events++
		switch e.Kind {
		case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer:
			byID[e.ReqID] = append(byID[e.ReqID], e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for id, evs := range byID {
		if len(evs) > 1 {
			t.Errorf("request %s is in the log %d times", id, len(evs))
		}
	}
	for _, a := range answered {
		evs := byID[a.id]
		if len(evs) != 1 {
			t.Fatalf("answered %s %s (%s) is in the log %d times, want once", a.kind, a.id, a.code, len(evs))
		}
		e := evs[0]
		if e.Kind != a.kind || e.Outcome != a.code || e.Amount != a.amount {
			t.Fatalf("answered %s %s %v → %s, but the log has %s %v → %s", a.kind, a.id, a.amount, a.code, e.Kind, e.Amount, e.Outcome)
		}
		if a.code == "ok" && (e.Balance != a.balance || e.TS != a.apply) {
			t.Fatalf("answered %s %s with balance %v at L=%d, but the log has %v at L=%d", a.kind, a.id, a.balance, a.apply, e.Balance, e.TS)
		}
	}

	// The PINs on the file are bcrypt hashes of the production cost.
	b, err := boltstore.Open(db, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	accts, err := b.Accounts(context.Background())
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if cost, err := bcrypt.Cost(a.PINHash); err != nil || cost < bcrypt.DefaultCost {
			t.Errorf("account %s: PIN hash cost %d (%v), want bcrypt of cost ≥ %d", a.ID, cost, err, bcrypt.DefaultCost)
		}
	}
	if len(answered) == 0 || kills < cycles {
		t.Fatalf("%d answered operations over %d kills", len(answered), kills)
	}
	if retried == 0 {
		t.Fatalf("no request was resent across a restart")
	}
	t.Logf("FIGURES %s: sigkill_cycles=%d answered_operations=%d in_flight_at_kill=%d resent_after_restart=%d of_which_already_applied=%d events=%d lost=0 applied_twice=0",
		t.Name(), kills, len(answered), unknown, retried, retriedDup, events)
}

// lockAccount opens account 5005 and enters 3 wrong PINs, each on a new
// connection of the same ATM, which is then locked out of the account; it
// returns the time the lockout ends.
func lockAccount(t *testing.T, op *client.Client, addr string) time.Time {
	t.Helper()
	if _, err := op.OpenAccount(context.Background(), crashToken, "5005", "Eva Lock", "1234"); err != nil {
		t.Fatalf("open account: %v", err)
	}
	var err error
	for range 3 {
		err = loginOnce(addr, "5005", "9999")
	}
	if !errors.Is(err, outcome.ErrAccountLocked) || untilOf(err).IsZero() {
		t.Fatalf("third wrong PIN: %v, want account_locked with a time", err)
	}
	return untilOf(err)
}

// loginOnce logs in on a new connection, always as the same ATM.
func loginOnce(addr, account, pin string) error {
	c, err := client.Dial(context.Background(), addr, client.Options{ProcessID: "atm-10c7"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Login(context.Background(), account, pin)
	return err
}

func untilOf(err error) time.Time {
	var pe *wire.Error
	if errors.As(err, &pe) {
		return pe.Until
	}
	return time.Time{}
}

func lastLines(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}

// rng2 is the retrier's source of amounts: any will do.
func rng2(cycle int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(cycle), uint64(time.Now().UnixNano())))
}
