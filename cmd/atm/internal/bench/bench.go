// Package bench is atm bench: it loads a bank server with logged-in
// sessions for a measured time and reports throughput, latency, the
// committer's work, CPU time and memory, next to what the machine itself
// can do (fsync rate, loopback round trip). Its flags, its report and the
// fields of --json are relied on by BENCHMARKS.md and
// scripts/bench-matrix.sh.
//
// What each system measures:
//
//   - Linux: everything. RSS is read from /proc/PID/status (VmRSS).
//   - macOS and the other Unix systems: no RSS (there is no /proc):
//     rss_max_mib and idle_rss_bytes_per_conn are left out of --json and,
//     where Linux would measure it (--embedded, --server-pid), rss_note
//     says "not measured on GOOS" and the report's memory reads "n/a". CPU time comes from getrusage, and the open-file
//     limit is raised, as on Linux.
//   - Windows: no RSS, as above. CPU time comes from GetProcessTimes;
//     there is no open-file limit to raise.
//   - Anything else: neither RSS nor CPU time (cpu_per_op_us and
//     cpu_cores_used left out, no cpu line in the report).
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"atm/bank/boltstore"
	"atm/cmd/atm/internal/cli"
	"atm/netproto/client"
	"atm/netproto/wire"
	"atm/ui/i18n"
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
	trust     client.TLSOptions // for tls:// addresses
	tls       bool              // --tls: plain and TLS runs alternated
	pairs     int
	prof      *os.File // CPU profile of the measured time
	stats     func() boltstore.Stats
}

// Run is atm bench: args are the arguments after "bench"; it returns the
// exit code.
func Run(args []string) int {
	var cfg benchConfig
	fs := cli.NewFlagSet("atm bench")
	fs.StringVar(&cfg.addr, "addr", wire.DefaultAddr, "server to load (tls://HOST:PORT over TLS), or several servers of one bank HOST:PORT,HOST:PORT,... (session i goes to the address i mod their number; ignored with --embedded)")
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
	fs.BoolVar(&cfg.tls, "tls", false, "with --embedded: the cost of TLS: serve the bank in plain TCP and in TLS and run the load against each in alternated pairs (--pairs), then report medians and TLS ÷ plain ratios")
	fs.IntVar(&cfg.pairs, "pairs", 3, "with --tls: pairs of runs (one plain, one TLS, each --duration)")
	trust := cli.TLSFlags(fs, i18n.For(i18n.English))
	hold := fs.Int("hold-conns", 0, "(used by --idle-conns in its child process: hold this many connections open until stdin closes)")
	fs.Uint64Var(&cfg.base, "account-base", 880_000_000, "first bench account id (accounts are reused if they exist)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: atm bench [--embedded [--tls] | --addr [tls://]HOST:PORT[,...]] [--clients N] [--duration D] [--mix transfer|deposit|mixed] [--json]")
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
	if cfg.clients < 1 || cfg.duration <= 0 || cfg.pairs < 1 {
		fmt.Fprintln(os.Stderr, "atm bench: --clients and --pairs must be at least 1 and --duration positive")
		return 2
	}
	cfg.trust = *trust
	if cfg.tls {
		return runTLS(cfg)
	}
	res, err := bench(cfg)
	if err != nil {
		return report(err, cfg.jsonOut, res, nil, false)
	}
	return report(nil, cfg.jsonOut, res, func(w io.Writer) { printBench(w, res) },
		res.Errors > 0 || (cfg.idleConns == 0 && !res.Conserved))
}

// report prints a run's result, as JSON or as text, or err; it returns
// the exit code: 1 after an error or a failed run.
func report(err error, jsonOut bool, res any, text func(io.Writer), failed bool) int {
	if err != nil {
		fmt.Fprintf(os.Stderr, "atm bench: %v\n", err)
		return 1
	}
	if jsonOut {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	} else {
		text(os.Stdout)
	}
	if failed {
		return 1
	}
	return 0
}
