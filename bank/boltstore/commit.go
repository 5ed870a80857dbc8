package boltstore

import (
	"fmt"
	"time"

	"atm/bank"
	"atm/bank/outcome"
)

// The committer is two goroutines in a pipeline:
//
//   - the applier (commitLoop, in this file) takes operations from the
//     queue one at a time, ticks the clock for each and applies it (see
//     apply.go) to the ledger's state as seen through its overlayView
//     (view.go): the last committed transaction plus the changes of the
//     batches not yet on disk. Each operation's writes are added to the
//     open batch;
//   - the writer (writeLoop, writer.go) takes sealed batches, in order, and
//     writes each in one bbolt transaction.
//
// The applier seals the open batch when the writer is free, so a batch
// grows for as long as the previous one takes to reach the disk, and
// applying the next batch overlaps with writing the previous one. Apply
// order is the order of the queue and of the clock ticks, and batches are
// written in that order, so the log's timestamp order is the apply order.
//
// If a transaction fails, its operations and every operation applied after
// it (whose state depended on it) fail with the error; the applier then
// starts again from the state on disk.

// commitLoop is the applier.
func (b *store) commitLoop() {
	handoff := make(chan *batch, 1)
	ready := make(chan struct{}, 1) // a token: the writer is free
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		b.writeLoop(ready, handoff)
	}()
	defer func() {
		close(handoff)
		<-writerDone
		close(b.done)
	}()
	a := &applier{b: b, v: newOverlayView(b), queue: b.queue, handoff: handoff, ready: ready,
		limit: maxGather, gather: time.NewTimer(time.Hour)}
	a.gather.Stop()
	for a.queue != nil || len(a.v.cur.ops) > 0 {
		a.drain()
		a.v.closeTx()
		if a.sealable() {
			a.seal()
			continue
		}
		a.wait()
	}
}

// applier is the applier's state between operations.
//
// Gathering: when the writer becomes free, the callers it has just
// answered are typically a network round trip away from their next
// operation. Sealing at once would have them wait for a whole
// transaction, and the callers would settle into two groups taking turns,
// each with half the batch. So the applier waits a little for them: until
// the batch holds them too, at most half the last transaction's time and
// at most the current limit. The limit halves each time they do not come
// back in time (callers that pause between operations, or a CPU too busy
// to answer quickly) and doubles, up to maxGather, each time they do.
type applier struct {
	b       *store
	v       *overlayView
	queue   chan *op // nil once closed
	handoff chan<- *batch
	ready   <-chan struct{}

	writerFree, gathered, waiting bool
	target, lastSealed            int
	early                         int    // ops of the open batch applied while the writer was busy
	handed                        uint64 // seq of the last batch handed to the writer
	limit                         time.Duration
	gather                        *time.Timer
}

// apply applies o to the open batch.
func (a *applier) apply(o *op) {
	if !a.b.applyOne(a.v, o) {
		a.discard(o)
		return
	}
	if a.b.committedSeq.Load() < a.handed {
		a.early++
	}
}

// discard drops the open batch after the rules failed midway through o (a
// read that failed, a panic): what o wrote, to the batch and to the view,
// is not to be committed, and the batch cannot be told apart from it. Once
// the writer has written what it was handed, the view starts again from
// the disk, and o and the operations of the open batch fail with nothing
// applied. No caller is then on its way back to the batch: the next
// operation is sealed at once, not held for a gathering that no timer
// would end.
func (a *applier) discard(o *op) {
	if !a.writerFree {
		<-a.ready
		a.writerFree = true
	}
	a.v.reset(fmt.Errorf("%w: another operation of its transaction failed (%v); nothing was applied", outcome.ErrInternal, o.err))
	close(o.out)
	a.early = 0
	a.gather.Stop()
	a.waiting, a.gathered = false, true
}

// drain takes every operation already queued, up to a full batch.
func (a *applier) drain() {
	for a.queue != nil && len(a.v.cur.ops) < a.b.opts.MaxBatch {
		select {
		case o, ok := <-a.queue:
			if !ok {
				a.queue = nil
				return
			}
			a.apply(o)
		default:
			return
		}
	}
}

// sealable reports whether the open batch goes to the writer now.
func (a *applier) sealable() bool {
	n := len(a.v.cur.ops)
	return a.writerFree && n > 0 && (a.gathered || a.queue == nil || n >= min(a.target, a.b.opts.MaxBatch))
}

// seal hands the open batch to the writer.
func (a *applier) seal() {
	if a.waiting {
		a.gather.Stop()
		if !a.gathered {
			a.limit = min(2*a.limit, maxGather)
		}
	}
	a.lastSealed, a.early = len(a.v.cur.ops), 0
	bt := a.v.seal()
	a.handed = bt.seq
	a.handoff <- bt
	a.writerFree, a.gathered, a.waiting = false, false, false
}

// wait waits for another operation, for the writer to be free, or for the
// end of the gathering.
func (a *applier) wait() {
	n := len(a.v.cur.ops)
	var free <-chan struct{}
	if !a.writerFree && n > 0 {
		free = a.ready
	}
	in := a.queue
	if n >= a.b.opts.MaxBatch {
		in = nil
	}
	var timeout <-chan time.Time
	if a.waiting && !a.gathered {
		timeout = a.gather.C
	}
	if free == nil && in == nil && timeout == nil {
		return
	}
	select {
	case o, ok := <-in:
		if !ok {
			a.queue = nil
			return
		}
		a.apply(o)
	case <-free:
		a.writerFree = true
		// The callers just answered, plus those that were already
		// waiting; any of the former already back are not counted twice.
		a.target = a.lastSealed + a.early
		wait := min(time.Duration(a.b.lastCommit.Load())/2, a.limit)
		if n >= a.target || wait <= 0 {
			a.gathered = true
			return
		}
		a.gather.Reset(wait)
		a.waiting = true
	case <-timeout:
		a.gathered = true
		a.limit = max(a.limit/2, minGather)
	}
}

// applyOne applies o to the open batch, first starting again from the disk
// if a transaction failed. It reports false when the rules failed on o: o
// is not in the batch, and what it wrote is to be discarded.
func (b *store) applyOne(v *overlayView, o *op) bool {
	if failed := b.failedEpoch.Load(); failed != 0 && failed-1 >= v.epoch {
		v.reset(b.failErr())
	}
	if err := v.ensureTx(); err != nil {
		o.err = fmt.Errorf("read the ledger: %w", err)
		close(o.out)
		return true
	}
	v.nrecs = 0
	if o.res, o.err = b.rules.Apply(v, &o.op); o.err != nil {
		return false
	}
	v.cur.ops = append(v.cur.ops, o)
	return true
}

// maxGather bounds the wait for a batch to fill up.
const (
	maxGather = 2 * time.Millisecond
	minGather = 50 * time.Microsecond
)

func (b *store) fail(bt *batch, err error) {
	for _, o := range bt.ops {
		o.res, o.err = bank.Result{}, fmt.Errorf("commit: %w", err)
		close(o.out)
	}
}

func (b *store) failErr() error {
	b.failMu.Lock()
	defer b.failMu.Unlock()
	return b.failCause
}
