package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"time"

	"atm/bank/money"
)

// rssMissing is the rss_note of a run that would have measured the
// resident set size on Linux.
var rssMissing = "not measured on " + runtime.GOOS

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

func printBench(w io.Writer, r *benchResult) {
	fmt.Fprintf(w, "machine: 4 KiB write+fsync p50 %.0f µs (%.0f/s back to back); loopback round trip p50 %.0f µs\n",
		r.FsyncP50us, r.FsyncPerSec, r.RTTp50us)
	if r.IdleConns > 0 && !rssMeasured {
		fmt.Fprintf(w, "%d idle connections: %.0f bytes each of Go heap and stacks; RSS n/a (%s)\n",
			r.IdleConns, r.IdleBytesPerCn, r.RSSNote)
		return
	}
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
	} else if !rssMeasured && r.RSSNote != "" {
		fmt.Fprintf(w, "memory:     RSS n/a (%s)\n", r.RSSNote)
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

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
