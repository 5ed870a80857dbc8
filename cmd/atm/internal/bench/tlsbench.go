package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/tlscert"
)

// The cost of TLS (--tls): one embedded server listens twice, in plain TCP
// and in TLS, and the same load runs against each in alternated pairs
// (plain then TLS, then TLS then plain, ...), so that both see the same
// machine at nearly the same time. Each pair also times connections:
// connect, handshake and greeting, one after another.

// connectSamples is how many connections each run times.
const connectSamples = 100

// tlsRun is one measured run of --tls.
type tlsRun struct {
	Pair         int     `json:"pair"`
	TLS          bool    `json:"tls"`
	OpsPerSec    float64 `json:"ops_per_sec"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	CPUPerOpUs   float64 `json:"cpu_per_op_us,omitempty"`
	Errors       int64   `json:"errors"`
	ConnectP50us float64 `json:"connect_p50_us"`
}

// tlsSide is the medians of one side's runs.
type tlsSide struct {
	OpsPerSec    float64 `json:"ops_per_sec"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	CPUPerOpUs   float64 `json:"cpu_per_op_us,omitempty"`
	ConnectP50us float64 `json:"connect_p50_us"`
}

// tlsResult is the --json output of --tls. Ratios are TLS ÷ plain within
// each pair, then the median over the pairs.
type tlsResult struct {
	Mix          string   `json:"mix"`
	Client       string   `json:"client"`
	Clients      int      `json:"clients"`
	DurationS    float64  `json:"duration_s"` // of each run
	Pairs        int      `json:"pairs"`
	Runs         []tlsRun `json:"runs"`
	Plain        tlsSide  `json:"plain"`
	TLS          tlsSide  `json:"tls"`
	OpsRatio     float64  `json:"ops_ratio"`
	P50Ratio     float64  `json:"p50_ratio"`
	CPURatio     float64  `json:"cpu_ratio,omitempty"`
	ConnectRatio float64  `json:"connect_ratio"`
	Errors       int64    `json:"errors"`
	Conserved    bool     `json:"conserved"`
}

// listenTLS serves the embedded bank over TLS too, on another loopback
// port, with a certificate made in memory, and returns its tls:// address
// and the fingerprint that pins it.
func (e *embeddedServer) listenTLS() (addr, fingerprint string, err error) {
	certPEM, keyPEM, err := tlscert.SelfSigned([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		return "", "", err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return "", "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	tl := server.NewTLSListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	go func() { _ = e.srv.Serve(tl) }() // returns at Shutdown
	return client.TLSScheme + l.Addr().String(), tlscert.Fingerprint(cert.Certificate[0]), nil
}

func benchTLS(cfg benchConfig, w io.Writer) (*tlsResult, error) {
	if !cfg.embedded {
		return nil, errors.New("--tls needs --embedded: it serves the same bank in plain TCP and in TLS (against a server of your own, give --addr tls://HOST:PORT)")
	}
	raiseFileLimit()
	e, err := startEmbedded(&cfg)
	if err != nil {
		return nil, fmt.Errorf("start the embedded server: %w", err)
	}
	defer e.stop()
	tlsAddr, fp, err := e.listenTLS()
	if err != nil {
		return nil, fmt.Errorf("serve TLS: %w", err)
	}
	cfg.stats = e.bank.Stats
	ctx := context.Background()
	admin, err := client.Dial(ctx, e.addr, client.Options{ProcessID: "bench-admin"})
	if err != nil {
		return nil, err
	}
	defer admin.Close()

	b := &tlsBench{cfg: cfg, w: w, addr: [2]string{e.addr, tlsAddr}}
	b.trust[1] = client.TLSOptions{Fingerprint: fp}
	defer b.close()
	if err := b.setup(ctx, admin); err != nil {
		return nil, err
	}
	res := &tlsResult{Mix: cfg.mix, Client: cfg.client, Clients: cfg.clients, DurationS: cfg.duration.Seconds(), Pairs: cfg.pairs}
	var ratios tlsRatios
	for p := range cfg.pairs {
		pair, err := b.runPair(ctx, p, res)
		if err != nil {
			return nil, err
		}
		ratios.add(pair)
	}
	res.Plain, res.TLS = sideMedians(res.Runs, false), sideMedians(res.Runs, true)
	res.OpsRatio, res.P50Ratio, res.CPURatio, res.ConnectRatio = median(ratios.ops), median(ratios.p50), median(ratios.cpu), median(ratios.connect)
	a, err := admin.Audit(ctx, cfg.token)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	res.Conserved = a.Conserved
	return res, nil
}

// tlsBench is the two sides --tls loads, indexed by b2i(tls): the same
// bank over plain TCP and over TLS, each with sessions of its own.
type tlsBench struct {
	cfg      benchConfig
	w        io.Writer // where each run is reported
	addr     [2]string
	trust    [2]client.TLSOptions
	sessions [2][]*session
}

// setup logs the sessions of both sides in, the TLS side on accounts of
// their own.
func (b *tlsBench) setup(ctx context.Context, admin *client.Client) error {
	for i := range 2 {
		cfg := b.cfg
		cfg.trust = b.trust[i]
		cfg.base += uint64(i) * 2 * uint64(b.cfg.clients)
		var err error
		if b.sessions[i], err = setupSessions(ctx, cfg, b.addr[i], admin, progress{}); err != nil {
			return err
		}
	}
	return nil
}

func (b *tlsBench) close() {
	closeAll(b.sessions[0])
	closeAll(b.sessions[1])
}

// runPair runs pair p, plain then TLS in even pairs and TLS then plain in
// odd ones, adds the runs to res and returns them, plain first.
func (b *tlsBench) runPair(ctx context.Context, p int, res *tlsResult) ([2]tlsRun, error) {
	order := []bool{false, true}
	if p%2 == 1 {
		order = []bool{true, false}
	}
	var pair [2]tlsRun
	for _, secure := range order {
		r, err := b.run(ctx, p, secure)
		if err != nil {
			return pair, err
		}
		res.Errors += r.Errors
		res.Runs = append(res.Runs, r)
		pair[b2i(secure)] = r
	}
	return pair, nil
}

// run is one measured run of a side in pair p: its connections timed,
// then the load.
func (b *tlsBench) run(ctx context.Context, p int, secure bool) (tlsRun, error) {
	i := b2i(secure)
	conn, err := timeConnects(ctx, b.addr[i], b.trust[i], connectSamples)
	if err != nil {
		return tlsRun{}, err
	}
	run := runLoad(b.cfg, b.sessions[i], progress{})
	r := tlsRun{Pair: p + 1, TLS: secure, OpsPerSec: float64(run.ops) / run.elapsed.Seconds(),
		P50ms: ms(percentile(run.lat, 0.50)), P99ms: ms(percentile(run.lat, 0.99)), Errors: run.errors,
		ConnectP50us: conn.Seconds() * 1e6}
	if run.ops > 0 && run.cpu > 0 {
		r.CPUPerOpUs = run.cpu.Seconds() * 1e6 / float64(run.ops)
	}
	fmt.Fprintf(b.w, "pair %d %-5s %9.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  cpu/op %5.0f µs  connect p50 %6.0f µs\n",
		r.Pair, side(secure), r.OpsPerSec, r.P50ms, r.P99ms, r.CPUPerOpUs, r.ConnectP50us)
	return r, nil
}

// tlsRatios are the TLS ÷ plain ratios of each pair.
type tlsRatios struct{ ops, p50, cpu, connect []float64 }

func (t *tlsRatios) add(pair [2]tlsRun) {
	t.ops = append(t.ops, pair[1].OpsPerSec/pair[0].OpsPerSec)
	t.p50 = append(t.p50, pair[1].P50ms/pair[0].P50ms)
	t.connect = append(t.connect, pair[1].ConnectP50us/pair[0].ConnectP50us)
	if pair[0].CPUPerOpUs > 0 {
		t.cpu = append(t.cpu, pair[1].CPUPerOpUs/pair[0].CPUPerOpUs)
	}
}

func closeAll(sessions []*session) {
	for _, s := range sessions {
		s.close()
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func side(secure bool) string {
	if secure {
		return "TLS"
	}
	return "plain"
}

// timeConnects opens n connections to addr one after another (connect,
// handshake, greeting read) and returns the median time of one.
func timeConnects(ctx context.Context, addr string, trust client.TLSOptions, n int) (time.Duration, error) {
	d := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		nc, _, err := client.DialTransport(ctx, addr, trust)
		if err != nil {
			return 0, err
		}
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = bufio.NewReader(nc).ReadSlice('\n')
		d = append(d, time.Since(t0))
		nc.Close()
		if err != nil {
			return 0, fmt.Errorf("greeting from %s: %w", addr, err)
		}
	}
	slices.Sort(d)
	return d[len(d)/2], nil
}

func sideMedians(runs []tlsRun, secure bool) tlsSide {
	var ops, p50, p99, cpu, conn []float64
	for _, r := range runs {
		if r.TLS != secure {
			continue
		}
		ops, p50, p99, conn = append(ops, r.OpsPerSec), append(p50, r.P50ms), append(p99, r.P99ms), append(conn, r.ConnectP50us)
		if r.CPUPerOpUs > 0 {
			cpu = append(cpu, r.CPUPerOpUs)
		}
	}
	return tlsSide{OpsPerSec: median(ops), P50ms: median(p50), P99ms: median(p99), CPUPerOpUs: median(cpu), ConnectP50us: median(conn)}
}

// median of xs (0 for none); the mean of the middle two for an even count.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTLS(w io.Writer, r *tlsResult) {
	fmt.Fprintf(w, "\nTLS vs plain TCP, %d clients, %s, %d pairs of %.0f s runs (medians; ratios TLS ÷ plain within each pair)\n",
		r.Clients, r.Mix, r.Pairs, r.DurationS)
	fmt.Fprintf(w, "  %-7s %10s %9s %9s %9s %12s\n", "", "ops/s", "p50 ms", "p99 ms", "cpu/op µs", "connect µs")
	for _, s := range []struct {
		name string
		v    tlsSide
	}{{"plain", r.Plain}, {"TLS", r.TLS}} {
		fmt.Fprintf(w, "  %-7s %10.0f %9.2f %9.2f %9.0f %12.0f\n", s.name, s.v.OpsPerSec, s.v.P50ms, s.v.P99ms, s.v.CPUPerOpUs, s.v.ConnectP50us)
	}
	fmt.Fprintf(w, "  ratio   %10.2f %9.2f %9s %9.2f %12.2f\n", r.OpsRatio, r.P50Ratio, "", r.CPURatio, r.ConnectRatio)
	fmt.Fprintf(w, "errors %d, money conserved: %v\n", r.Errors, r.Conserved)
}

// runTLS is atm bench --tls; it returns the exit code.
func runTLS(cfg benchConfig) int {
	res, err := benchTLS(cfg, os.Stderr)
	if err != nil {
		return report(err, cfg.jsonOut, res, nil, false)
	}
	return report(nil, cfg.jsonOut, res, func(w io.Writer) { printTLS(w, res) }, res.Errors > 0 || !res.Conserved)
}
