package boltstore

import (
	"fmt"
	"time"

	"atm/bank"
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

	v := newOverlayView(b)
	queue := b.queue
	// Gathering: when the writer becomes free, the callers it has just
	// answered are typically a network round trip away from their next
	// operation. Sealing at once would have them wait for a whole
	// transaction, and the callers would settle into two groups taking
	// turns, each with half the batch. So the applier waits a little for
	// them: until the batch holds them too, at most half the last
	// transaction's time and at most the current limit. The limit halves
	// each time they do not come back in time (callers that pause between
	// operations, or a CPU too busy to answer quickly) and doubles, up to
	// maxGather, each time they do.
	var (
		writerFree, gathered bool
		target, lastSealed   int
		early                int    // ops of the open batch applied while the writer was busy
		handed               uint64 // seq of the last batch handed to the writer
		limit                = maxGather
		waiting              bool
	)
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	for queue != nil || len(v.cur.ops) > 0 {
		// Take every operation already queued, up to a full batch.
	drain:
		for queue != nil && len(v.cur.ops) < b.opts.MaxBatch {
			select {
			case o, ok := <-queue:
				if !ok {
					queue = nil
					break drain
				}
				b.applyOne(v, o)
				if b.committedSeq.Load() < handed {
					early++
				}
			default:
				break drain
			}
		}
		v.closeTx()
		if writerFree && len(v.cur.ops) > 0 && (gathered || queue == nil ||
			len(v.cur.ops) >= min(target, b.opts.MaxBatch)) {
			if waiting {
				gather.Stop()
				if !gathered {
					limit = min(2*limit, maxGather)
				}
			}
			lastSealed, early = len(v.cur.ops), 0
			bt := v.seal()
			handed = bt.seq
			handoff <- bt
			writerFree, gathered, waiting = false, false, false
			continue
		}
		// Then wait for another operation, for the writer to be free, or
		// for the end of the gathering.
		var free chan struct{}
		if !writerFree && len(v.cur.ops) > 0 {
			free = ready
		}
		in := queue
		if len(v.cur.ops) >= b.opts.MaxBatch {
			in = nil
		}
		var timeout <-chan time.Time
		if waiting && !gathered {
			timeout = gather.C
		}
		if free == nil && in == nil && timeout == nil {
			continue
		}
		select {
		case o, ok := <-in:
			if !ok {
				queue = nil
				continue
			}
			b.applyOne(v, o)
			if b.committedSeq.Load() < handed {
				early++
			}
		case <-free:
			writerFree = true
			// The callers just answered, plus those that were already
			// waiting; any of the former already back are not counted twice.
			target = lastSealed + early
			wait := min(time.Duration(b.lastCommit.Load())/2, limit)
			if len(v.cur.ops) >= target || wait <= 0 {
				gathered = true
				continue
			}
			gather.Reset(wait)
			waiting = true
		case <-timeout:
			gathered = true
			limit = max(limit/2, minGather)
		}
	}
}

// applyOne applies o to the open batch, first starting again from the disk
// if a transaction failed.
func (b *store) applyOne(v *overlayView, o *op) {
	if failed := b.failedEpoch.Load(); failed != 0 && failed-1 >= v.epoch {
		v.reset(b.failErr())
	}
	if err := v.ensureTx(); err != nil {
		o.err = fmt.Errorf("read the ledger: %w", err)
		close(o.out)
		return
	}
	o.res, o.err = b.rules.Apply(v, o.op)
	v.cur.ops = append(v.cur.ops, o)
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
