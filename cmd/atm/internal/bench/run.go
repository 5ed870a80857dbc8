package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"atm/cmd/atm/internal/cli"
	"atm/netproto/client"
	"atm/netproto/wire"
	"atm/ui/i18n"

	"atm/bank/boltstore"
	"atm/bank/outcome"

	"golang.org/x/term"
)

func bench(cfg benchConfig) (*benchResult, error) {
	raiseFileLimit()
	res := &benchResult{Mix: cfg.mix, Clients: cfg.clients, Mode: "remote", Client: cfg.client}
	t, err := startTarget(&cfg, res)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	prog := progress{tty: term.IsTerminal(int(os.Stderr.Fd()))}
	if err := measureMachine(t.fsyncDir, res); err != nil {
		return nil, err
	}
	if cfg.idleConns > 0 {
		if !cfg.embedded {
			return nil, errors.New("--idle-conns needs --embedded (it measures the server's memory)")
		}
		return res, idleConns(cfg, t.addr, res, prog)
	}

	ctx := context.Background()
	admin, err := client.Dial(ctx, t.addr, client.Options{ProcessID: "bench-admin", TLS: cfg.trust})
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	cli.NoteFirstUse(i18n.For(i18n.English), "atm bench", admin.Hello())

	sessions, err := setupSessions(ctx, cfg, t.addr, admin, prog)
	defer closeAll(sessions)
	if err != nil {
		return nil, err
	}
	if err := measureLoad(cfg, t, sessions, prog, res); err != nil {
		return nil, err
	}

	a, err := admin.Audit(ctx, cfg.token)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	res.Conserved = a.Conserved
	res.AuditTotal = int64(a.Total)
	return res, nil
}

// target is the server a bench loads: one started in this process
// (--embedded), or the one at --addr.
type target struct {
	addr     string
	emb      *embeddedServer // nil for a server of its own
	fsyncDir string          // where the machine's fsync is measured
	rssPID   int             // the process whose memory is sampled (0: none)
}

// startTarget starts the embedded server when cfg asks for it (which may
// set cfg's operator token), and says so in res.
func startTarget(cfg *benchConfig, res *benchResult) (*target, error) {
	t := &target{addr: cfg.addr, fsyncDir: os.TempDir(), rssPID: cfg.serverPID}
	if !cfg.embedded {
		return t, nil
	}
	e, err := startEmbedded(cfg)
	if err != nil {
		return nil, fmt.Errorf("start the embedded server: %w", err)
	}
	t.emb, t.addr, t.rssPID = e, e.addr, os.Getpid()
	t.fsyncDir = e.dir
	if e.dir == "" {
		t.fsyncDir = filepath.Dir(cfg.db)
	}
	res.Mode, res.MaxBatch = "embedded", cfg.maxBatch
	res.RSSNote = "whole process: server and load generator together"
	return t, nil
}

// stop stops the embedded server, if any.
func (t *target) stop() {
	if t.emb != nil {
		t.emb.stop()
	}
}

// measureMachine measures, in the same run as the load, one 4 KiB write
// and fsync in dir, and one loopback round trip.
func measureMachine(dir string, res *benchResult) error {
	fs, err := measureFsync(dir, 300)
	if err != nil {
		return fmt.Errorf("measure fsync: %w", err)
	}
	res.FsyncP50us = fs.p50.Seconds() * 1e6
	res.FsyncPerSec = fs.rate
	rtt, err := measureRTT(2000)
	if err != nil {
		return fmt.Errorf("measure loopback round trip: %w", err)
	}
	res.RTTp50us = rtt.Seconds() * 1e6
	return nil
}

// measureLoad runs the load on the sessions, with the CPU profile and the
// memory samples asked for, and puts its figures in res.
func measureLoad(cfg benchConfig, t *target, sessions []*session, prog progress, res *benchResult) error {
	if cfg.cpuProf != "" {
		f, err := os.Create(cfg.cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.prof = f
	}
	rssPID := t.rssPID
	if rssPID != 0 && !cfg.embedded {
		res.RSSNote = "the server's process (--server-pid)"
	}
	if rssPID != 0 && !rssMeasured {
		res.RSSNote, rssPID = rssMissing, 0
	}
	var rss rssSampler
	if rssPID != 0 {
		rss.start(rssPID)
	}
	cfg.stats = func() boltstore.Stats { return boltstore.Stats{} }
	if t.emb != nil {
		cfg.stats = t.emb.bank.Stats
	}
	run := runLoad(cfg, sessions, prog)
	if rssPID != 0 {
		res.RSSMaxMiB = rss.stop()
	}
	res.record(run)
	return nil
}

// record puts the figures of a load run in res.
func (res *benchResult) record(run loadRun) {
	if st := run.stats; st.Batches > 0 {
		res.Batches = st.Batches
		res.AvgBatch = float64(st.Ops) / float64(st.Batches)
		res.AvgCommitMs = st.CommitTime.Seconds() * 1e3 / float64(st.Batches)
	}
	res.Ops, res.Errors, res.FirstErrors = run.ops, run.errors, run.firstErrors
	res.DurationS = run.elapsed.Seconds()
	res.OpsPerSec = float64(run.ops) / run.elapsed.Seconds()
	res.P50ms = ms(percentile(run.lat, 0.50))
	res.P90ms = ms(percentile(run.lat, 0.90))
	res.P99ms = ms(percentile(run.lat, 0.99))
	if len(run.lat) > 0 {
		res.Maxms = ms(run.lat[len(run.lat)-1])
	}
	if run.ops > 0 && run.cpu > 0 {
		res.CPUPerOpUs = run.cpu.Seconds() * 1e6 / float64(run.ops)
		res.CPUCores = run.cpu.Seconds() / run.elapsed.Seconds()
	}
	if res.FsyncPerSec > 0 {
		res.OpsPerFsync = res.OpsPerSec / res.FsyncPerSec
	}
}

type session struct {
	c       *client.Client // --client lib
	lean    *leanConn      // --client lean
	account string
	to      string
	toField string // `,"to":"ID","amount":1`
}

func (s *session) close() {
	if s.c != nil {
		s.c.Close()
	}
	if s.lean != nil {
		s.lean.Close()
	}
}

const benchPIN = "4242"

// setupSessions opens (or reuses) the bench accounts, logs one session in to
// each and funds it. Recipients are accounts of their own, not logged in,
// unless cfg.push. addr may list several servers of one bank, separated by
// commas: session i connects to the address i mod their number.
func setupSessions(ctx context.Context, cfg benchConfig, addr string, admin *client.Client, prog progress) ([]*session, error) {
	n := cfg.clients
	addrs := client.SplitAddrs(addr)
	if len(addrs) == 0 {
		return nil, errors.New("no server address")
	}
	ids := make([]string, 2*n)
	for i := range ids {
		ids[i] = strconv.FormatUint(cfg.base+uint64(i), 10)
	}
	total := n
	if !cfg.push {
		total = 2 * n
	}
	if cfg.token == "" {
		return nil, errors.New("the bench opens its own accounts: give the server's operator token (--operator-token or $ATM_OPERATOR_TOKEN), or use --embedded")
	}
	var opened atomic.Int64
	err := parallel(total, 8, func(i int) error {
		_, err := admin.OpenAccount(ctx, cfg.token, ids[i], fmt.Sprintf("Bench %d", i), benchPIN)
		if err != nil && !errors.Is(err, outcome.ErrAccountExists) {
			return fmt.Errorf("open account %s: %w", ids[i], err)
		}
		prog.status("setup: %d/%d accounts", opened.Add(1), total)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sessions := make([]*session, n)
	var ready atomic.Int64
	err = parallel(n, 16, func(i int) error {
		s := &session{account: ids[i], to: ids[n+i]}
		if cfg.push {
			s.to = ids[(i+1)%n]
		}
		s.toField = `,"to":"` + s.to + `","amount":1`
		err := s.open(ctx, cfg, addrs[i%len(addrs)], fmt.Sprintf("bench-%d", i))
		if s.c != nil || s.lean != nil {
			sessions[i] = s // connected: closed at the end even if it failed after
		}
		if err != nil {
			return err
		}
		prog.status("setup: %d/%d sessions logged in", ready.Add(1), n)
		return nil
	})
	out := sessions[:0]
	for _, s := range sessions {
		if s != nil {
			out = append(out, s)
		}
	}
	return out, err
}

// open connects the session to addr as process proc with the client
// cfg.client says, logs it in to its account and funds it.
func (s *session) open(ctx context.Context, cfg benchConfig, addr, proc string) error {
	// Enough for any run: transfers move one centavo at a time.
	const funds = 5_000_000
	if cfg.client == "lib" {
		c, err := client.Dial(ctx, addr, client.Options{ProcessID: proc, TLS: cfg.trust})
		if err != nil {
			return err
		}
		s.c = c
		if _, err := c.Login(ctx, s.account, benchPIN); err != nil {
			return fmt.Errorf("log in to %s: %w", s.account, err)
		}
		if _, err := c.Deposit(ctx, funds); err != nil {
			return fmt.Errorf("fund %s: %w", s.account, err)
		}
		return nil
	}
	c, err := dialLean(ctx, addr, proc, cfg.trust)
	if err != nil {
		return err
	}
	s.lean = c
	if err := c.login(s.account, benchPIN); err != nil {
		return fmt.Errorf("log in to %s: %w", s.account, err)
	}
	if err := c.call(wire.OpDeposit, fmt.Sprintf(`,"amount":%d`, funds)); err != nil {
		return fmt.Errorf("fund %s: %w", s.account, err)
	}
	return nil
}

// parallel runs fn(0..n-1) on at most width goroutines and returns the
// first error.
func parallel(n, width int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(n, width) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
