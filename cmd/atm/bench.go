package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"atm/cmd/atm/internal/cli"
	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/money"
	"atm/bank/outcome"

	"golang.org/x/crypto/bcrypt"
)

// benchConfig is what the flags of atm bench set.
type benchConfig struct {
	addr      string
	embedded  bool
	clients   int
	duration  time.Duration
	warmup    time.Duration
	mix       string
	jsonOut   bool
	token     string
	maxBatch  int
	db        string
	cpuProf   string
	serverPID int
	idleConns int
	push      bool
	client    string
	base      uint64
	prof      *os.File // CPU profile of the measured time
	stats     func() bank.Stats
}

// benchResult is the --json output.
type benchResult struct {
	Mode       string  `json:"mode"` // "embedded" or "remote"
	Mix        string  `json:"mix"`
	Client     string  `json:"client"`
	Clients    int     `json:"clients"`
	MaxBatch   int     `json:"max_batch,omitempty"`
	DurationS  float64 `json:"duration_s"`
	Ops        int64   `json:"ops"`
	Errors     int64   `json:"errors"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	P50ms      float64 `json:"p50_ms"`
	P90ms      float64 `json:"p90_ms"`
	P99ms      float64 `json:"p99_ms"`
	Maxms      float64 `json:"max_ms"`
	Conserved  bool    `json:"conserved"`
	AuditTotal int64   `json:"audit_total_cents"`
	// The machine, measured in the same run.
	FsyncP50us  float64  `json:"fsync_p50_us"`
	FsyncPerSec float64  `json:"fsync_per_sec"`
	RTTp50us    float64  `json:"loopback_rtt_p50_us"`
	OpsPerFsync float64  `json:"ops_per_fsync_time"` // ops_per_sec / fsync_per_sec
	RSSMaxMiB   float64  `json:"rss_max_mib,omitempty"`
	RSSNote     string   `json:"rss_note,omitempty"`
	FirstErrors []string `json:"first_errors,omitempty"`
	// Embedded only: the committer's transactions during the measured time.
	Batches     uint64  `json:"batches,omitempty"`
	AvgBatch    float64 `json:"avg_batch,omitempty"`
	AvgCommitMs float64 `json:"avg_commit_ms,omitempty"`
	// CPU time of this process (server and load generator when embedded)
	// per operation, and how many cores' worth it used.
	CPUPerOpUs     float64 `json:"cpu_per_op_us,omitempty"`
	CPUCores       float64 `json:"cpu_cores_used,omitempty"`
	IdleConns      int     `json:"idle_conns,omitempty"`
	IdleBytesPerCn float64 `json:"idle_bytes_per_conn,omitempty"`
	IdleRSSPerCn   float64 `json:"idle_rss_bytes_per_conn,omitempty"`
}

func runBench(args []string) int {
	var cfg benchConfig
	fs := cli.NewFlagSet("atm bench")
	fs.StringVar(&cfg.addr, "addr", wire.DefaultAddr, "server to load (ignored with --embedded)")
	fs.BoolVar(&cfg.embedded, "embedded", false, "start a server in this process on a temporary database")
	fs.IntVar(&cfg.clients, "clients", 64, "concurrent logged-in sessions")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "load before the measured time, not counted")
	fs.StringVar(&cfg.mix, "mix", "transfer", "operations: transfer, deposit or mixed (40% transfer, 20% deposit, 20% withdraw, 20% balance)")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print one JSON object instead of the report")
	fs.StringVar(&cfg.token, "operator-token", os.Getenv("ATM_OPERATOR_TOKEN"), "the server's operator token, to open the bench accounts and audit (default $ATM_OPERATOR_TOKEN; set by itself with --embedded)")
	fs.IntVar(&cfg.maxBatch, "max-batch", 0, "with --embedded: operations per transaction (1 = commit per operation; 0 = the bank's default)")
	fs.StringVar(&cfg.db, "db", "", "with --embedded: database file (default a new temporary file, removed afterwards)")
	fs.StringVar(&cfg.cpuProf, "cpuprofile", "", "with --embedded: write a CPU profile of the measured time (server and load together) to this file")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "without --embedded: process id of the server, to sample its memory")
	fs.IntVar(&cfg.idleConns, "idle-conns", 0, "instead of the load: open this many idle connections and report the server memory each costs")
	fs.StringVar(&cfg.client, "client", "lean", "load generator's sessions: lean (the protocol spoken directly, to leave the CPU to the server) or lib (client.Client)")
	fs.BoolVar(&cfg.push, "push", false, "transfer between the bench sessions themselves, so every transfer also pushes a notification")
	hold := fs.Int("hold-conns", 0, "(used by --idle-conns in its child process: hold this many connections open until stdin closes)")
	fs.Uint64Var(&cfg.base, "account-base", 880_000_000, "first bench account id (accounts are reused if they exist)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: atm bench [--embedded | --addr HOST:PORT] [--clients N] [--duration D] [--mix transfer|deposit|mixed] [--json]")
		fs.PrintDefaults()
	}
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if *hold > 0 { // the child process of --idle-conns
		return holdConns(cfg.addr, *hold)
	}
	switch cfg.mix {
	case "transfer", "deposit", "mixed":
	default:
		fmt.Fprintf(os.Stderr, "atm bench: --mix must be transfer, deposit or mixed, not %q\n", cfg.mix)
		return 2
	}
	if cfg.client != "lean" && cfg.client != "lib" {
		fmt.Fprintf(os.Stderr, "atm bench: --client must be lean or lib, not %q\n", cfg.client)
		return 2
	}
	if cfg.clients < 1 || cfg.duration <= 0 {
		fmt.Fprintln(os.Stderr, "atm bench: --clients must be at least 1 and --duration positive")
		return 2
	}
	res, err := bench(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atm bench: %v\n", err)
		return 1
	}
	if cfg.jsonOut {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	} else {
		printBench(os.Stdout, res)
	}
	if res.Errors > 0 || (cfg.idleConns == 0 && !res.Conserved) {
		return 1
	}
	return 0
}

// embeddedServer is a bank and its server in this process.
type embeddedServer struct {
	bank *bank.Bank
	srv  *server.Server
	addr string
	dir  string
	errc chan error
}

func startEmbedded(cfg *benchConfig) (*embeddedServer, error) {
	e := &embeddedServer{errc: make(chan error, 1)}
	path := cfg.db
	if path == "" {
		dir, err := os.MkdirTemp("", "atm-bench-")
		if err != nil {
			return nil, err
		}
		e.dir = dir
		path = filepath.Join(dir, "bench.db")
	}
	// The temporary database hashes PINs at bcrypt's minimum cost so that
	// logging in hundreds of sessions does not dominate the run; the
	// measured operations never hash.
	b, err := bank.Open(path, bank.Options{MaxBatch: cfg.maxBatch, PINCost: bcrypt.MinCost, ProcessID: "bank-bench"})
	if err != nil {
		e.cleanup()
		return nil, err
	}
	e.bank = b
	if cfg.token == "" {
		cfg.token = randomToken()
	}
	e.srv = &server.Server{Ledger: b, OperatorToken: cfg.token, MaxConns: max(server.DefaultMaxConns, cfg.idleConns+cfg.clients+16)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		e.cleanup()
		return nil, err
	}
	e.addr = l.Addr().String()
	go func() { e.errc <- e.srv.Serve(l) }()
	return e, nil
}

func (e *embeddedServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	_ = e.bank.Close()
	e.cleanup()
}

func (e *embeddedServer) cleanup() {
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// progress writes the live progress line on stderr.
type progress struct {
	tty bool
}

func (p progress) printf(format string, a ...any) {
	if p.tty {
		fmt.Fprintf(os.Stderr, "\r\033[K"+format, a...)
	} else {
		fmt.Fprintf(os.Stderr, format+"\n", a...)
	}
}

// status is a transient line: shown on a terminal only.
func (p progress) status(format string, a ...any) {
	if p.tty {
		p.printf(format, a...)
	}
}

func (p progress) done() {
	if p.tty {
		fmt.Fprintln(os.Stderr)
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func bench(cfg benchConfig) (*benchResult, error) {
	raiseFileLimit()
	res := &benchResult{Mix: cfg.mix, Clients: cfg.clients, Mode: "remote", Client: cfg.client}
	fsyncDir := os.TempDir()
	addr := cfg.addr
	rssPID := cfg.serverPID
	var emb *embeddedServer
	if cfg.embedded {
		e, err := startEmbedded(&cfg)
		if err != nil {
			return nil, fmt.Errorf("start the embedded server: %w", err)
		}
		defer e.stop()
		emb = e
		addr = e.addr
		res.Mode = "embedded"
		res.MaxBatch = cfg.maxBatch
		if e.dir != "" {
			fsyncDir = e.dir
		} else {
			fsyncDir = filepath.Dir(cfg.db)
		}
		rssPID = os.Getpid()
		res.RSSNote = "whole process: server and load generator together"
	}
	prog := progress{tty: isTerminal(os.Stderr)}

	// The machine, in the same run: one 4 KiB write + fsync, and one
	// loopback round trip.
	fs, err := measureFsync(fsyncDir, 300)
	if err != nil {
		return nil, fmt.Errorf("measure fsync: %w", err)
	}
	res.FsyncP50us = fs.p50.Seconds() * 1e6
	res.FsyncPerSec = fs.rate
	rtt, err := measureRTT(2000)
	if err != nil {
		return nil, fmt.Errorf("measure loopback round trip: %w", err)
	}
	res.RTTp50us = rtt.Seconds() * 1e6

	if cfg.idleConns > 0 {
		if !cfg.embedded {
			return nil, errors.New("--idle-conns needs --embedded (it measures the server's memory)")
		}
		return res, idleConns(cfg, addr, res, prog)
	}

	ctx := context.Background()
	admin, err := client.Dial(ctx, addr, client.Options{ProcessID: "bench-admin"})
	if err != nil {
		return nil, err
	}
	defer admin.Close()

	sessions, err := setupSessions(ctx, cfg, addr, admin, prog)
	defer func() {
		for _, s := range sessions {
			s.close()
		}
	}()
	if err != nil {
		return nil, err
	}

	var rss rssSampler
	if rssPID != 0 && !cfg.embedded {
		res.RSSNote = "the server's process (--server-pid)"
	}
	if rssPID != 0 {
		rss.start(rssPID)
	}
	if cfg.cpuProf != "" {
		f, err := os.Create(cfg.cpuProf)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cfg.prof = f
	}
	cfg.stats = func() bank.Stats { return bank.Stats{} }
	if emb != nil {
		cfg.stats = emb.bank.Stats
	}
	run := runLoad(cfg, sessions, prog)
	if st := run.stats; st.Batches > 0 {
		res.Batches = st.Batches
		res.AvgBatch = float64(st.Ops) / float64(st.Batches)
		res.AvgCommitMs = st.CommitTime.Seconds() * 1e3 / float64(st.Batches)
	}
	if rssPID != 0 {
		res.RSSMaxMiB = rss.stop()
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

	a, err := admin.Audit(ctx, cfg.token)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	res.Conserved = a.Conserved
	res.AuditTotal = int64(a.Total)
	return res, nil
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
// unless cfg.push.
func setupSessions(ctx context.Context, cfg benchConfig, addr string, admin *client.Client, prog progress) ([]*session, error) {
	n := cfg.clients
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
		s := &session{account: ids[i]}
		if cfg.push {
			s.to = ids[(i+1)%n]
		} else {
			s.to = ids[n+i]
		}
		s.toField = `,"to":"` + s.to + `","amount":1`
		proc := fmt.Sprintf("bench-%d", i)
		// Enough for any run: transfers move one centavo at a time.
		const funds = 5_000_000
		if cfg.client == "lib" {
			c, err := client.Dial(ctx, addr, client.Options{ProcessID: proc})
			if err != nil {
				return err
			}
			s.c = c
			sessions[i] = s
			if _, err := c.Login(ctx, s.account, benchPIN); err != nil {
				return fmt.Errorf("log in to %s: %w", s.account, err)
			}
			if _, err := c.Deposit(ctx, funds); err != nil {
				return fmt.Errorf("fund %s: %w", s.account, err)
			}
		} else {
			c, err := dialLean(ctx, addr, proc)
			if err != nil {
				return err
			}
			s.lean = c
			sessions[i] = s
			if err := c.login(s.account, benchPIN); err != nil {
				return fmt.Errorf("log in to %s: %w", s.account, err)
			}
			if err := c.call(wire.OpDeposit, fmt.Sprintf(`,"amount":%d`, funds)); err != nil {
				return fmt.Errorf("fund %s: %w", s.account, err)
			}
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

type loadRun struct {
	ops, errors int64
	firstErrors []string
	elapsed     time.Duration
	lat         []time.Duration // sorted
	stats       bank.Stats      // the committer's work during the measured time
	cpu         time.Duration   // CPU time of this process during the measured time
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runLoad drives every session until the warm-up and the measured time are
// over, printing a progress line each second.
func runLoad(cfg benchConfig, sessions []*session, prog progress) loadRun {
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		count     atomic.Int64
		errCount  atomic.Int64
		errMu     sync.Mutex
		firstErrs []string
		wg        sync.WaitGroup
	)
	lats := make([][]time.Duration, len(sessions))
	ctx := context.Background()
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			var n uint64
			for !stop.Load() {
				n++
				t0 := time.Now()
				err := benchOp(ctx, cfg.mix, s, n)
				d := time.Since(t0)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					if errCount.Add(1) <= 5 {
						errMu.Lock()
						firstErrs = append(firstErrs, err.Error())
						errMu.Unlock()
					}
					continue
				}
				count.Add(1)
				lat = append(lat, d)
			}
			lats[i] = lat
		}()
	}
	if cfg.warmup > 0 {
		prog.printf("warming up for %s...", cfg.warmup)
		time.Sleep(cfg.warmup)
	}
	if cfg.prof != nil {
		if err := pprof.StartCPUProfile(cfg.prof); err == nil {
			defer pprof.StopCPUProfile()
		}
	}
	st0 := cfg.stats()
	cpu0 := cpuTime()
	start := time.Now()
	measuring.Store(true)
	tick := time.NewTicker(time.Second)
	deadline := time.NewTimer(cfg.duration)
	last, lastT := int64(0), start
loop:
	for {
		select {
		case now := <-tick.C:
			c := count.Load()
			prog.printf("%5.1fs  %8.0f ops/s  %9d ops  %d errors", now.Sub(start).Seconds(),
				float64(c-last)/now.Sub(lastT).Seconds(), c, errCount.Load())
			last, lastT = c, now
		case <-deadline.C:
			break loop
		}
	}
	measuring.Store(false)
	elapsed := time.Since(start)
	st1 := cfg.stats()
	cpu := cpuTime() - cpu0
	tick.Stop()
	stop.Store(true)
	wg.Wait()
	prog.done()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	return loadRun{ops: int64(len(all)), errors: errCount.Load(), firstErrors: firstErrs, elapsed: elapsed, lat: all,
		stats: bank.Stats{Batches: st1.Batches - st0.Batches, Ops: st1.Ops - st0.Ops, CommitTime: st1.CommitTime - st0.CommitTime},
		cpu:   cpu}
}

// benchOp runs the n-th operation of a session.
func benchOp(ctx context.Context, mix string, s *session, n uint64) error {
	if s.lean != nil {
		return leanOp(mix, s, n)
	}
	var err error
	switch mix {
	case "transfer":
		_, err = s.c.Transfer(ctx, s.to, 1)
	case "deposit":
		_, err = s.c.Deposit(ctx, 1)
	case "mixed":
		switch n % 5 {
		case 0, 1:
			_, err = s.c.Transfer(ctx, s.to, 1)
		case 2:
			_, err = s.c.Deposit(ctx, 2)
		case 3:
			_, err = s.c.Withdraw(ctx, 1)
		case 4:
			_, err = s.c.Balance(ctx)
		}
	}
	return err
}

func leanOp(mix string, s *session, n uint64) error {
	c := s.lean
	switch mix {
	case "transfer":
		return c.call(wire.OpTransfer, s.toField)
	case "deposit":
		return c.call(wire.OpDeposit, `,"amount":1`)
	}
	switch n % 5 {
	case 0, 1:
		return c.call(wire.OpTransfer, s.toField)
	case 2:
		return c.call(wire.OpDeposit, `,"amount":2`)
	case 3:
		return c.call(wire.OpWithdraw, `,"amount":1`)
	default:
		return c.call(wire.OpBalance, "")
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

type fsyncStats struct {
	p50  time.Duration
	rate float64 // write+fsync per second, back to back
}

// measureFsync times n rounds of one 4 KiB write and an fsync in dir.
func measureFsync(dir string, n int) (fsyncStats, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return fsyncStats{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	times := make([]time.Duration, 0, n)
	start := time.Now()
	for i := range n {
		buf[0] = byte(i)
		t0 := time.Now()
		if _, err := f.WriteAt(buf, int64(i%64)*4096); err != nil {
			return fsyncStats{}, err
		}
		if err := f.Sync(); err != nil {
			return fsyncStats{}, err
		}
		times = append(times, time.Since(t0))
	}
	total := time.Since(start)
	slices.Sort(times)
	return fsyncStats{p50: percentile(times, 0.5), rate: float64(n) / total.Seconds()}, nil
}

// measureRTT times n one-line ping-pongs over a loopback TCP connection.
func measureRTT(n int) (time.Duration, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	msg := []byte("ping\n")
	buf := make([]byte, len(msg))
	times := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, err
		}
		times = append(times, time.Since(t0))
	}
	slices.Sort(times)
	return percentile(times, 0.5), nil
}

// rssSampler records the highest resident set size of a process.
type rssSampler struct {
	maxKiB atomic.Int64
	done   chan struct{}
	wg     sync.WaitGroup
}

func (r *rssSampler) start(pid int) {
	r.done = make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, ok := readStatusKiB(pid, "VmRSS"); ok && kb > r.maxKiB.Load() {
				r.maxKiB.Store(kb)
			}
			select {
			case <-t.C:
			case <-r.done:
				return
			}
		}
	}()
}

func (r *rssSampler) stop() float64 {
	close(r.done)
	r.wg.Wait()
	return float64(r.maxKiB.Load()) / 1024
}

// readStatusKiB reads one "Name: N kB" field of /proc/PID/status.
func readStatusKiB(pid int, field string) (int64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return v, err == nil
	}
	return 0, false
}

// raiseFileLimit lifts the open-file limit as far as the system allows, for
// runs with many connections.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	want := lim
	want.Max = max(lim.Max, 1<<20)
	want.Cur = want.Max
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

// idleConns opens cfg.idleConns connections that only read the greeting and
// stay idle, and reports what each costs the process.
func idleConns(cfg benchConfig, addr string, res *benchResult, prog progress) error {
	n := cfg.idleConns
	settle := func() (heap uint64, rss int64) {
		runtime.GC()
		runtime.GC()
		time.Sleep(200 * time.Millisecond)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, _ = readStatusKiB(os.Getpid(), "VmRSS")
		return ms.HeapInuse + ms.StackInuse, rss * 1024
	}
	heap0, rss0 := settle()
	// The idle clients live in a child process: the server alone is then
	// in this one, and each process stays within the open-file limit.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "bench", "--hold-conns", strconv.Itoa(n), "--addr", addr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("the process holding the idle connections failed: %q %v", line, err)
	}
	heap1, rss1 := settle()
	prog.done()
	res.IdleConns = n
	res.IdleBytesPerCn = float64(int64(heap1)-int64(heap0)) / float64(n)
	res.IdleRSSPerCn = float64(rss1-rss0) / float64(n)
	res.RSSMaxMiB = float64(rss1) / (1 << 20)
	res.RSSNote = "the server's process; the idle clients are in another"
	res.Conserved = true
	return nil
}

// holdConns opens n connections to addr, reads each greeting, says "ready"
// on stdout and keeps them open until stdin closes.
func holdConns(addr string, n int) int {
	raiseFileLimit()
	conns := make([]net.Conn, 0, n)
	buf := make([]byte, 512)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "atm bench: connection %d: %v\n", i+1, err)
			return 1
		}
		conns = append(conns, c)
		// Wait for the greeting, so the server has set the connection up.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(buf); err != nil {
			fmt.Fprintf(os.Stderr, "atm bench: connection %d: greeting: %v\n", i+1, err)
			return 1
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return 0
}

func printBench(w io.Writer, r *benchResult) {
	fmt.Fprintf(w, "machine: 4 KiB write+fsync p50 %.0f µs (%.0f/s back to back); loopback round trip p50 %.0f µs\n",
		r.FsyncP50us, r.FsyncPerSec, r.RTTp50us)
	if r.IdleConns > 0 {
		fmt.Fprintf(w, "%d idle connections: %.0f bytes each of Go heap and stacks, %.0f bytes each of RSS (process RSS %.1f MiB; %s)\n",
			r.IdleConns, r.IdleBytesPerCn, r.IdleRSSPerCn, r.RSSMaxMiB, r.RSSNote)
		return
	}
	batch := ""
	if r.MaxBatch > 0 {
		batch = fmt.Sprintf(", max batch %d", r.MaxBatch)
	}
	fmt.Fprintf(w, "%s server, mix %s, %d clients (%s)%s, %.1fs measured\n", r.Mode, r.Mix, r.Clients, r.Client, batch, r.DurationS)
	fmt.Fprintf(w, "throughput: %.0f ops/s (%d ops, %d errors) = %.1f× the fsync rate\n", r.OpsPerSec, r.Ops, r.Errors, r.OpsPerFsync)
	fmt.Fprintf(w, "latency:    p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n", r.P50ms, r.P90ms, r.P99ms, r.Maxms)
	if r.Batches > 0 {
		fmt.Fprintf(w, "commits:    %d transactions, %.1f operations each on average, %.3f ms each\n", r.Batches, r.AvgBatch, r.AvgCommitMs)
	}
	if r.CPUPerOpUs > 0 {
		fmt.Fprintf(w, "cpu:        %.0f µs per operation in this process, %.2f of %d cores\n", r.CPUPerOpUs, r.CPUCores, runtime.NumCPU())
	}
	if r.RSSMaxMiB > 0 {
		fmt.Fprintf(w, "memory:     RSS max %.1f MiB (%s)\n", r.RSSMaxMiB, r.RSSNote)
	}
	verdict := "holds"
	if !r.Conserved {
		verdict = "VIOLATED"
	}
	fmt.Fprintf(w, "audit:      conservation %s (total %s)\n", verdict, money.Cents(r.AuditTotal))
	for _, e := range r.FirstErrors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}
