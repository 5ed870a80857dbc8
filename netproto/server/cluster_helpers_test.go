package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/bank/money"
	"atm/netproto/client"
	"atm/netproto/server"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
)

// clusterServer is one bank server (a server.Server over its own
// etcdstore.Ledger and its own etcd client) of a bankCluster.
type clusterServer struct {
	proc   string
	ledger *etcdstore.Ledger
	srv    *server.Server
	addr   string
	log    *syncBuffer
	done   chan error
	down   bool
}

// bankCluster is several bank servers serving one bank kept in one etcd
// cluster.
type bankCluster struct {
	t       *testing.T
	etcd    *etcdtest.Cluster
	admin   *clientv3.Client // reads the log directly
	servers []*clusterServer
}

// newBankCluster starts servers bank servers, "bank-1".."bank-n", each with
// its own etcd client of every member, over the etcd cluster ec; configure
// is applied to each server before it serves.
func newBankCluster(t *testing.T, ec *etcdtest.Cluster, servers int, lopts etcdstore.Options, configure ...func(*server.Server)) *bankCluster {
	t.Helper()
	bc := &bankCluster{t: t, etcd: ec, admin: ec.Client()}
	for i := range servers {
		s := &clusterServer{proc: fmt.Sprintf("bank-%d", i+1), log: &syncBuffer{}, done: make(chan error, 1)}
		s.srv = &server.Server{OperatorToken: opToken, LoginBackoff: time.Millisecond,
			Logger: slog.New(slog.NewJSONHandler(s.log, nil))}
		for _, f := range configure {
			f(s.srv)
		}
		o := lopts
		o.ProcessID = s.proc
		o.PINCost = bcrypt.MinCost
		o.OnEvent = s.srv.LogEvent
		l, err := etcdstore.Open(context.Background(), ec.Client(), o)
		if err != nil {
			t.Fatalf("open the etcd ledger of %s: %v", s.proc, err)
		}
		s.ledger, s.srv.Ledger = l, l
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		s.addr = ln.Addr().String()
		go func() { s.done <- s.srv.Serve(ln) }()
		bc.servers = append(bc.servers, s)
	}
	t.Cleanup(func() {
		for _, s := range bc.servers {
			if !s.down {
				s.stop(t)
			}
			s.ledger.Close()
		}
	})
	return bc
}

// stop shuts the server down gracefully.
func (s *clusterServer) stop(t *testing.T) {
	t.Helper()
	s.down = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown %s: %v", s.proc, err)
	}
	if err := <-s.done; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("%s: Serve returned %v", s.proc, err)
	}
}

// crash stops the server abruptly: its listener and every connection are
// closed at once and the operations in flight lose their context, as when
// the process dies.
func (s *clusterServer) crash(t *testing.T) {
	t.Helper()
	s.down = true
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("abrupt shutdown of %s: %v", s.proc, err)
	}
	if err := <-s.done; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("%s: Serve returned %v", s.proc, err)
	}
}

// dial connects to addr; the client is closed at the end of the test.
func (bc *bankCluster) dial(addr string, opts client.Options) *client.Client {
	bc.t.Helper()
	c, err := client.Dial(context.Background(), addr, opts)
	if err != nil {
		bc.t.Fatalf("dial %s: %v", addr, err)
	}
	bc.t.Cleanup(func() { c.Close() })
	go func() { // nobody reads the pushes
		for range c.Pushes() {
		}
	}()
	return c
}

// login dials addr and logs in to account with PIN 1234.
func (bc *bankCluster) login(addr, account string, opts client.Options) *client.Client {
	bc.t.Helper()
	c := bc.dial(addr, opts)
	if _, err := c.Login(ctx(bc.t), account, "1234"); err != nil {
		bc.t.Fatalf("login %s on %s: %v", account, addr, err)
	}
	return c
}

// loggedEvent is an event of the etcd log with the revision that
// committed it.
type loggedEvent struct {
	bank.Event
	Rev int64
}

// events reads the whole event log from etcd, in (ts, proc) order: the
// segments under atm/log/<proc>/<ts>, each the events one server committed
// in one transaction, {"prev","hash","events"} (a void segment, "[]",
// holds none).
func (bc *bankCluster) events() []loggedEvent {
	bc.t.Helper()
	resp, err := bc.admin.Get(ctx(bc.t), "atm/log/", clientv3.WithPrefix())
	if err != nil {
		bc.t.Fatalf("read the log: %v", err)
	}
	var out []loggedEvent
	for _, kv := range resp.Kvs {
		if string(kv.Value) == "[]" {
			continue
		}
		var seg struct {
			Events []bank.Event `json:"events"`
		}
		if err := json.Unmarshal(kv.Value, &seg); err != nil {
			bc.t.Fatalf("segment %s: %v", kv.Key, err)
		}
		for i, e := range seg.Events {
			if i == 0 && string(kv.Key) != fmt.Sprintf("atm/log/%s/%020d", e.Proc, e.TS) {
				bc.t.Errorf("segment stored under %s starts with (ts, proc) (%d, %s)", kv.Key, e.TS, e.Proc)
			}
			out = append(out, loggedEvent{Event: e, Rev: kv.ModRevision})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].TS != out[j].TS {
			return out[i].TS < out[j].TS
		}
		return out[i].Proc < out[j].Proc
	})
	return out
}

// eventAccounts returns the accounts an event reads or changes.
func eventAccounts(e bank.Event) []string {
	var out []string
	if e.Account != "" {
		out = append(out, e.Account)
	}
	if e.To != "" && e.To != e.Account && e.Kind == bank.KindTransfer {
		out = append(out, e.To)
	}
	return out
}

// checkAccountOrder fails unless, per account, the order in which etcd
// committed the account's events is their (ts, proc) order: whichever
// server applied them, each account's history is in Lamport order.
// It returns how many (account, event) pairs it checked.
func checkAccountOrder(t *testing.T, events []loggedEvent) int {
	t.Helper()
	byAcct := map[string][]loggedEvent{}
	for _, e := range events {
		switch e.Kind {
		case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer, bank.KindBalance, bank.KindRetry, bank.KindLogin:
		default:
			continue
		}
		for _, id := range eventAccounts(e.Event) {
			byAcct[id] = append(byAcct[id], e)
		}
	}
	n := 0
	for id, es := range byAcct {
		// Events committed in one transaction (one revision: a server's
		// group commit) are ordered by their timestamps; across
		// transactions, the commit order must be the (ts, proc) order.
		sort.SliceStable(es, func(i, j int) bool {
			if es[i].Rev != es[j].Rev {
				return es[i].Rev < es[j].Rev
			}
			return es[i].TS < es[j].TS
		})
		for i := 1; i < len(es); i++ {
			p, e := es[i-1], es[i]
			if e.Rev == p.Rev && e.Proc != p.Proc || e.TS < p.TS || e.TS == p.TS && e.Proc <= p.Proc {
				t.Errorf("account %s: event (%d, %s) %s committed at revision %d after (%d, %s) %s at revision %d",
					id, e.TS, e.Proc, e.Kind, e.Rev, p.TS, p.Proc, p.Kind, p.Rev)
			}
		}
		n += len(es)
	}
	return n
}

// requestKey names a request: the client's process id and its request id.
type requestKey struct{ proc, id string }

// applied counts, per request, the events of the log that applied it (a
// deposit, withdrawal or transfer; not a retry answered from the first).
func applied(events []loggedEvent) map[requestKey]int {
	n := map[requestKey]int{}
	for _, e := range events {
		switch e.Kind {
		case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer:
			if e.ReqID != "" {
				n[requestKey{e.Client, e.ReqID}]++
			}
		}
	}
	return n
}

// verifyCluster runs the ledger's Verify through every server's ledger.
func (bc *bankCluster) verify() bank.VerifyReport {
	bc.t.Helper()
	var rep bank.VerifyReport
	for _, s := range bc.servers {
		r, err := s.ledger.Verify(context.Background())
		if err != nil {
			bc.t.Fatalf("verify through %s: %v", s.proc, err)
		}
		rep = r
	}
	return rep
}

// unavailableCode reports whether a wire error code says the bank could
// not reach its store: "unavailable", or "shutting_down", the word the
// server uses for any operation its ledger did not run.
func unavailableCode(code string) bool { return code == "unavailable" || code == "shutting_down" }

// clusterLoad is ATMs moving money at random between accounts, over the
// servers of a bankCluster, counting what they were told.
type clusterLoad struct {
	accounts []string
	stop     chan struct{}
	wg       sync.WaitGroup

	ops, ok, refused, unknown, unavailable atomic.Int64
	deposited, withdrawn                   atomic.Int64 // acknowledged amounts
	unknownIn, unknownOut                  atomic.Int64 // amounts whose outcome is unknown

	mu        sync.Mutex
	acked     map[requestKey]bool // money requests answered with a success
	okBy      map[string]int      // successes per ATM
	dups      int                 // successes answered from a first outcome (Reply.Duplicate)
	okOn      map[string]int      // successes per server process id
	unavailOn map[string]int      // unavailable answers per server process id
	errs      []error
}

func newClusterLoad(accounts []string) *clusterLoad {
	return &clusterLoad{accounts: accounts, stop: make(chan struct{}),
		acked: map[requestKey]bool{}, okBy: map[string]int{}, okOn: map[string]int{}, unavailOn: map[string]int{}}
}

// run starts an ATM logged in to acct on c, drawing from seed, until halt.
func (ld *clusterLoad) run(c *client.Client, acct string, seed uint64) {
	ld.wg.Add(1)
	go func() {
		defer ld.wg.Done()
		r := newRand(seed)
		for {
			select {
			case <-ld.stop:
				return
			default:
			}
			amount := money.Cents(1 + r.IntN(60_000))
			var (
				rep client.Reply
				err error
			)
			kind := r.IntN(10)
			switch {
			case kind < 3:
				rep, err = c.Deposit(context.Background(), amount)
			case kind < 6:
				rep, err = c.Withdraw(context.Background(), amount)
			case kind < 9:
				to := ld.accounts[(indexOf(ld.accounts, acct)+1+r.IntN(len(ld.accounts)-1))%len(ld.accounts)]
				rep, err = c.Transfer(context.Background(), to, amount)
			default:
				rep, err = c.Balance(context.Background())
			}
			ld.ops.Add(1)
			server := c.Hello().Server
			code := wireCode(err)
			ld.mu.Lock()
			switch {
			case err == nil:
				ld.ok.Add(1)
				ld.okOn[server]++
				ld.okBy[c.ProcessID()]++
				if rep.Duplicate {
					ld.dups++
				}
				if rep.Balance < 0 {
					ld.errs = append(ld.errs, fmt.Errorf("%s: %s left a negative balance %v", c.ProcessID(), rep.Op, rep.Balance))
				}
				if kind < 9 {
					ld.acked[requestKey{c.ProcessID(), rep.ID}] = true
				}
				switch {
				case kind < 3:
					ld.deposited.Add(int64(amount))
				case kind < 6:
					ld.withdrawn.Add(int64(amount))
				}
			case code == "insufficient_funds":
				ld.refused.Add(1)
			case code == "" || unavailableCode(code):
				// No answer, or the store did not answer the server in
				// time: the operation may or may not have happened.
				if code == "" {
					ld.unknown.Add(1)
				} else {
					ld.unavailable.Add(1)
					ld.unavailOn[server]++
				}
				switch {
				case kind < 3:
					ld.unknownIn.Add(int64(amount))
				case kind < 6:
					ld.unknownOut.Add(int64(amount))
				}
			default:
				ld.errs = append(ld.errs, fmt.Errorf("%s: unexpected error %w", c.ProcessID(), err))
			}
			failed := len(ld.errs) > 0
			ld.mu.Unlock()
			if failed {
				return
			}
		}
	}()
}

// halt stops the ATMs and waits for them.
func (ld *clusterLoad) halt() {
	close(ld.stop)
	ld.wg.Wait()
}

// stopped reports whether halt was called.
func (ld *clusterLoad) stopped() bool {
	select {
	case <-ld.stop:
		return true
	default:
		return false
	}
}

// counts returns the successes and unavailable answers of server proc.
func (ld *clusterLoad) counts(proc string) (ok, unavailable int) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.okOn[proc], ld.unavailOn[proc]
}

func (ld *clusterLoad) failed() bool {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return len(ld.errs) > 0
}

// check fails on any error the ATMs met, then checks the bank against what
// they were told: the totals moved by the acknowledged amounts (plus at
// most the unknown ones), every acknowledged money request is applied
// exactly once in the log and none is applied twice, each account's
// events are in Lamport order, the audit conserves money and the log
// replays to the balances (Verify). It returns the log and the report.
func (ld *clusterLoad) check(t *testing.T, bc *bankCluster, ledger *etcdstore.Ledger, start bank.Audit) ([]loggedEvent, bank.VerifyReport) {
	t.Helper()
	ld.mu.Lock()
	for _, err := range ld.errs {
		t.Error(err)
	}
	ld.mu.Unlock()
	final, err := ledger.Audit(context.Background())
	if err != nil {
		t.Fatalf("final audit: %v", err)
	}
	if !final.Conserved() {
		t.Errorf("final audit: total %v, deposits %v − withdrawals %v, negative %v", final.Total, final.Deposits, final.Withdrawals, final.Negative)
	}
	gotIn, gotOut := final.Deposits-start.Deposits, final.Withdrawals-start.Withdrawals
	wantIn, wantOut := money.Cents(ld.deposited.Load()), money.Cents(ld.withdrawn.Load())
	if gotIn < wantIn || gotIn > wantIn+money.Cents(ld.unknownIn.Load()) {
		t.Errorf("the bank took in %v; clients were told %v (plus up to %v unknown)", gotIn, wantIn, ld.unknownIn.Load())
	}
	if gotOut < wantOut || gotOut > wantOut+money.Cents(ld.unknownOut.Load()) {
		t.Errorf("the bank paid out %v; clients were told %v (plus up to %v unknown)", gotOut, wantOut, ld.unknownOut.Load())
	}
	events := bc.events()
	n := applied(events)
	ld.mu.Lock()
	for k := range ld.acked {
		if n[k] != 1 {
			t.Errorf("request %s of %s was acknowledged and is applied %d times in the log", k.id, k.proc, n[k])
		}
	}
	ld.mu.Unlock()
	for k, c := range n {
		if c > 1 {
			t.Errorf("request %s of %s is applied %d times in the log", k.id, k.proc, c)
		}
	}
	checkAccountOrder(t, events)
	return events, bc.verify()
}
