package bench

import (
	"context"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"atm/bank/boltstore"
	"atm/netproto/wire"
)

type loadRun struct {
	ops, errors int64
	firstErrors []string
	elapsed     time.Duration
	lat         []time.Duration // sorted
	stats       boltstore.Stats // the committer's work during the measured time
	cpu         time.Duration   // CPU time of this process during the measured time
}

// runLoad drives every session until the warm-up and the measured time are
// over, printing a progress line each second.
func runLoad(cfg benchConfig, sessions []*session, prog progress) loadRun {
	ld := &load{mix: cfg.mix}
	lats := make([][]time.Duration, len(sessions))
	var wg sync.WaitGroup
	ctx := context.Background()
	for i, s := range sessions {
		wg.Go(func() { lats[i] = ld.drive(ctx, s) })
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
	ld.measuring.Store(true)
	ld.report(prog, start, cfg.duration)
	ld.measuring.Store(false)
	elapsed := time.Since(start)
	st1 := cfg.stats()
	cpu := cpuTime() - cpu0
	ld.stop.Store(true)
	wg.Wait()
	prog.done()
	all := slices.Concat(lats...)
	slices.Sort(all)
	return loadRun{ops: int64(len(all)), errors: ld.errCount.Load(), firstErrors: ld.firstErrs, elapsed: elapsed, lat: all,
		stats: boltstore.Stats{Batches: st1.Batches - st0.Batches, Ops: st1.Ops - st0.Ops, CommitTime: st1.CommitTime - st0.CommitTime},
		cpu:   cpu}
}

// load is what the sessions of runLoad share.
type load struct {
	mix       string
	measuring atomic.Bool // the measured time: count operations
	stop      atomic.Bool // the end: the sessions return
	count     atomic.Int64
	errCount  atomic.Int64
	errMu     sync.Mutex
	firstErrs []string // the first 5 errors
}

// drive runs operations on s until the end, and returns the latencies of
// those that succeeded in the measured time.
func (ld *load) drive(ctx context.Context, s *session) []time.Duration {
	lat := make([]time.Duration, 0, 1<<14)
	var n uint64
	for !ld.stop.Load() {
		n++
		t0 := time.Now()
		err := benchOp(ctx, ld.mix, s, n)
		d := time.Since(t0)
		if !ld.measuring.Load() {
			continue
		}
		if err != nil {
			ld.fail(err)
			continue
		}
		ld.count.Add(1)
		lat = append(lat, d)
	}
	return lat
}

// fail counts an error in the measured time, and keeps the first ones.
func (ld *load) fail(err error) {
	if ld.errCount.Add(1) <= 5 {
		ld.errMu.Lock()
		ld.firstErrs = append(ld.firstErrs, err.Error())
		ld.errMu.Unlock()
	}
}

// report prints the progress of the measured time, begun at start, each
// second until it is over.
func (ld *load) report(prog progress, start time.Time, duration time.Duration) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.NewTimer(duration)
	last, lastT := int64(0), start
	for {
		select {
		case now := <-tick.C:
			c := ld.count.Load()
			prog.printf("%5.1fs  %8.0f ops/s  %9d ops  %d errors", now.Sub(start).Seconds(),
				float64(c-last)/now.Sub(lastT).Seconds(), c, ld.errCount.Load())
			last, lastT = c, now
		case <-deadline.C:
			return
		}
	}
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
