package bank

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"atm/bank/money"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
)

// The committer is two goroutines in a pipeline:
//
//   - the applier takes operations from the queue one at a time, ticks the
//     clock for each and applies it to the ledger's state as seen through
//     the last committed transaction plus the changes of the batches not
//     yet on disk. Each operation's writes are added to the open batch;
//   - the writer takes sealed batches, in order, and writes each in one
//     bbolt transaction, whose fsyncs the whole batch shares. Only when
//     that transaction is on disk are its operations answered and their
//     events reported.
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

// Bucket ids in a batch's writes.
const (
	bAccounts byte = iota
	bState
	bEvents
	bMeta
)

var bucketNames = [...][]byte{bAccounts: bucketAccounts, bState: bucketState, bEvents: bucketEvents, bMeta: bucketMeta}

type write struct {
	bucket   byte
	key, val []byte
}

// batch is the unit of one transaction.
type batch struct {
	seq    uint64
	epoch  uint64
	ops    []*op
	writes []write
	events []Event
}

// overlayEntry is a value written by a batch not yet known to be on disk.
type overlayEntry struct {
	val []byte
	seq uint64
}

// writer is the applier's view of the ledger: the last committed state (a
// read transaction) under the writes of the batches not yet committed.
type writer struct {
	b       *Bank
	view    *bolt.Tx // opened lazily; closed before the applier blocks
	overlay map[string]overlayEntry
	cur     *batch
	seq     uint64 // of cur
	epoch   uint64
	viewSeq uint64 // batches up to this one are visible in view

	loaded                bool // totals read from disk
	deposits, withdrawals money.Cents
	dirtyTotals           bool
	buf                   []byte
}

func newWriter(b *Bank) *writer {
	w := &writer{b: b, overlay: make(map[string]overlayEntry)}
	w.cur = &batch{seq: 1}
	w.seq = 1
	return w
}

func overlayKey(bucket byte, key []byte) string {
	return string(append([]byte{bucket}, key...))
}

// ensureView opens a read transaction on the committed state if none is
// open, and forgets overlay entries it already shows.
func (w *writer) ensureView() error {
	if w.view != nil {
		return nil
	}
	committed := w.b.committedSeq.Load()
	tx, err := w.b.db.Begin(false)
	if err != nil {
		return err
	}
	w.view = tx
	if committed > w.viewSeq {
		w.viewSeq = committed
		for k, e := range w.overlay {
			if e.seq <= committed {
				delete(w.overlay, k)
			}
		}
	}
	if !w.loaded {
		meta := tx.Bucket(bucketMeta)
		d, err := readU64(meta, keyDeposits)
		if err == nil {
			var wd uint64
			wd, err = readU64(meta, keyWithdrawals)
			w.withdrawals = money.Cents(wd)
		}
		if err != nil { // nothing can be applied without the totals
			w.closeView()
			return err
		}
		w.deposits = money.Cents(d)
		w.loaded = true
	}
	return nil
}

// closeView ends the read transaction, so that the writer is never kept
// waiting on it (bbolt remaps the file only with no reader open).
func (w *writer) closeView() {
	if w.view != nil {
		_ = w.view.Rollback()
		w.view = nil
	}
}

func (w *writer) get(bucket byte, key []byte) []byte {
	if e, ok := w.overlay[overlayKey(bucket, key)]; ok {
		return e.val
	}
	return w.view.Bucket(bucketNames[bucket]).Get(key)
}

// put records a write in the open batch. val must not change afterwards.
func (w *writer) put(bucket byte, key, val []byte) {
	w.cur.writes = append(w.cur.writes, write{bucket, key, val})
	w.overlay[overlayKey(bucket, key)] = overlayEntry{val, w.seq}
}

// seal finishes the open batch with the running totals and opens the next
// one. (The writer stores the clock's lease in each transaction.)
func (w *writer) seal() *batch {
	bt := w.cur
	if w.dirtyTotals {
		w.put(bMeta, keyDeposits, u64key(uint64(w.deposits)))
		w.put(bMeta, keyWithdrawals, u64key(uint64(w.withdrawals)))
		w.dirtyTotals = false
	}
	bt.epoch = w.epoch
	w.seq++
	w.cur = &batch{seq: w.seq, ops: make([]*op, 0, len(bt.ops)), writes: make([]write, 0, len(bt.writes))}
	return bt
}

// reset forgets everything not on disk after a failed transaction, failing
// the operations of the open batch with err.
func (w *writer) reset(err error) {
	w.b.fail(w.cur, err)
	w.closeView()
	clear(w.overlay)
	w.cur = &batch{seq: w.seq}
	w.dirtyTotals = false
	w.loaded = false
	w.epoch++
	// Rebuild the remembered request ids from the log on disk.
	reqs := newRequests(w.b.opts.RememberRequests)
	if verr := w.b.db.View(func(tx *bolt.Tx) error { return loadRequests(tx, reqs) }); verr == nil {
		w.b.reqs = reqs
	}
}

func (w *writer) account(id string) (*Account, error) {
	v := w.get(bAccounts, []byte(id))
	if v == nil {
		return nil, fmt.Errorf("account %s: %w", id, outcome.ErrAccountNotFound)
	}
	a, err := decodeAccount(id, v, w.get(bState, []byte(id)))
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// putAccount stores the account record; the balance is stored with the
// state, not here.
func (w *writer) putAccount(a *Account) error {
	rec := *a
	rec.Balance = 0
	v, err := json.Marshal(&rec)
	if err != nil {
		return err
	}
	w.put(bAccounts, []byte(a.ID), v)
	return nil
}

func (w *writer) state(id string) (acctState, error) {
	v := w.get(bState, []byte(id))
	if v == nil {
		return acctState{}, fmt.Errorf("account %s: %w", id, outcome.ErrAccountNotFound)
	}
	s, err := decodeState(v)
	if err != nil {
		return acctState{}, fmt.Errorf("account %s: %w", id, err)
	}
	return s, nil
}

func (w *writer) putState(id string, s acctState) {
	w.put(bState, []byte(id), appendState(make([]byte, 0, 16+len(s.Name)), s))
}

// putEvent stores e with its statement links (see appendEvent).
func (w *writer) putEvent(e Event, prevA, prevB uint64) {
	w.buf = appendEvent(w.buf[:0], &e, prevA, prevB)
	w.put(bEvents, u64key(e.TS), append([]byte(nil), w.buf...))
	w.cur.events = append(w.cur.events, e)
}

func (w *writer) event(ts uint64) []byte { return w.get(bEvents, u64key(ts)) }

// remembered returns the first outcome of request req on account id.
func (w *writer) remembered(id, req string) (Event, bool, error) {
	ts, ok := w.b.reqs.get(id, req)
	if !ok {
		return Event{}, false, nil
	}
	raw := w.event(ts)
	if raw == nil {
		return Event{}, false, fmt.Errorf("request %s on %s: remembered event missing", req, id)
	}
	e, _, _, err := decodeEvent(ts, raw)
	if err != nil {
		return Event{}, false, err
	}
	return e, true, nil
}

// commitLoop is the applier.
func (b *Bank) commitLoop() {
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

	w := newWriter(b)
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
	for queue != nil || len(w.cur.ops) > 0 {
		// Take every operation already queued, up to a full batch.
	drain:
		for queue != nil && len(w.cur.ops) < b.opts.MaxBatch {
			select {
			case o, ok := <-queue:
				if !ok {
					queue = nil
					break drain
				}
				b.applyOne(w, o)
				if b.committedSeq.Load() < handed {
					early++
				}
			default:
				break drain
			}
		}
		w.closeView()
		if writerFree && len(w.cur.ops) > 0 && (gathered || queue == nil ||
			len(w.cur.ops) >= min(target, b.opts.MaxBatch)) {
			if waiting {
				gather.Stop()
				if !gathered {
					limit = min(2*limit, maxGather)
				}
			}
			lastSealed, early = len(w.cur.ops), 0
			bt := w.seal()
			handed = bt.seq
			handoff <- bt
			writerFree, gathered, waiting = false, false, false
			continue
		}
		// Then wait for another operation, for the writer to be free, or
		// for the end of the gathering.
		var free chan struct{}
		if !writerFree && len(w.cur.ops) > 0 {
			free = ready
		}
		in := queue
		if len(w.cur.ops) >= b.opts.MaxBatch {
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
			b.applyOne(w, o)
			if b.committedSeq.Load() < handed {
				early++
			}
		case <-free:
			writerFree = true
			// The callers just answered, plus those that were already
			// waiting; any of the former already back are not counted twice.
			target = lastSealed + early
			wait := min(time.Duration(b.lastCommit.Load())/2, limit)
			if len(w.cur.ops) >= target || wait <= 0 {
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
func (b *Bank) applyOne(w *writer, o *op) {
	if failed := b.failedEpoch.Load(); failed != 0 && failed-1 >= w.epoch {
		w.reset(b.failErr())
	}
	if err := w.ensureView(); err != nil {
		o.res = opResult{err: fmt.Errorf("read the ledger: %w", err)}
		close(o.out)
		return
	}
	o.res = b.apply(w, o)
	w.cur.ops = append(w.cur.ops, o)
}

// writeLoop is the writer: one transaction per batch, in order.
func (b *Bank) writeLoop(ready chan<- struct{}, in <-chan *batch) {
	for {
		ready <- struct{}{}
		bt, ok := <-in
		if !ok {
			return
		}
		// A batch applied on top of a failed one fails too.
		if failed := b.failedEpoch.Load(); failed != 0 && bt.epoch <= failed-1 {
			b.fail(bt, b.failErr())
			continue
		}
		t0 := time.Now()
		err := b.db.Update(func(tx *bolt.Tx) error {
			if failCommit != nil {
				if err := failCommit(bt.seq); err != nil {
					return err
				}
			}
			events := tx.Bucket(bucketEvents)
			events.FillPercent = 1.0 // appended in key order
			// The log only grows: an event whose key is not above the last
			// one (a clock driven back, or to its ceiling) fails the
			// transaction instead of overwriting a record.
			last, _ := events.Cursor().Last()
			for _, wr := range bt.writes {
				if wr.bucket == bEvents {
					if last != nil && bytes.Compare(wr.key, last) <= 0 {
						return fmt.Errorf("%w: event L=%d, log already at L=%d", errLogNotAbove,
							binary.BigEndian.Uint64(wr.key), lastKeyValue(last))
					}
					last = wr.key
				}
				if err := tx.Bucket(bucketNames[wr.bucket]).Put(wr.key, wr.val); err != nil {
					return err
				}
			}
			return b.storeLease(tx)
		})
		took := time.Since(t0)
		if err != nil {
			b.failMu.Lock()
			b.failCause = err
			b.failMu.Unlock()
			b.failedEpoch.Store(bt.epoch + 1)
			b.fail(bt, err)
			continue
		}
		b.lastCommit.Store(int64(took))
		b.commitNanos.Add(uint64(took))
		b.batches.Add(1)
		b.batchedOps.Add(uint64(len(bt.ops)))
		b.committedSeq.Store(bt.seq)
		// Report the events before answering, so that a server printing
		// them shows each apply before the reply it leads to.
		if b.opts.OnEvent != nil {
			for _, e := range bt.events {
				b.opts.OnEvent(e)
			}
		}
		for _, o := range bt.ops {
			close(o.out)
		}
	}
}

// errLogNotAbove fails a transaction that would reuse a timestamp of the log.
var errLogNotAbove = errors.New("event timestamp not above the last one in the log")

// lastKeyValue reads a stored event key, whatever its length.
func lastKeyValue(k []byte) uint64 {
	var b [8]byte
	copy(b[max(0, 8-len(k)):], k)
	return binary.BigEndian.Uint64(b[:])
}

// maxGather bounds the wait for a batch to fill up.
const (
	maxGather = 2 * time.Millisecond
	minGather = 50 * time.Microsecond
)

// failCommit, set by tests only, makes the transaction of a batch fail.
var failCommit func(seq uint64) error

func (b *Bank) fail(bt *batch, err error) {
	for _, o := range bt.ops {
		o.res = opResult{err: fmt.Errorf("commit: %w", err)}
		close(o.out)
	}
}

func (b *Bank) failErr() error {
	b.failMu.Lock()
	defer b.failMu.Unlock()
	return b.failCause
}
