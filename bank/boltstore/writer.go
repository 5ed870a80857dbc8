package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"atm/bank"

	bolt "go.etcd.io/bbolt"
)

// The committer's writer takes the batches the applier seals, in order, and
// writes each in one bbolt transaction, whose fsyncs the whole batch shares.
// Only when that transaction is on disk are its operations answered and
// their events reported. A batch applied on top of one whose transaction
// failed fails too, without being written (see commit.go).

// Bucket ids in a batch's writes.
const (
	bAccounts byte = iota
	bState
	bEvents
	bMeta
	bCheckpoints
	bMarks
)

var bucketNames = [...][]byte{bAccounts: bucketAccounts, bState: bucketState, bEvents: bucketEvents, bMeta: bucketMeta,
	bCheckpoints: bucketCheckpoints, bMarks: bucketMarks}

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
	events []bank.Event
}

// writeLoop is the writer: one transaction per batch, in order.
func (b *store) writeLoop(ready chan<- struct{}, in <-chan *batch) {
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
		if len(bt.events) > 0 {
			b.appended.Notify()
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

// failCommit, set by tests only, makes the transaction of a batch fail.
var failCommit func(seq uint64) error
