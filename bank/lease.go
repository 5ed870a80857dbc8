package bank

import (
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// clockLease is how far ahead of the clock the file's stored clock runs.
//
// Not every tick reaches the file: the server's own error replies and its
// receive events tick the clock and leave the process in messages without
// a transaction. After a crash the clock resumes at the stored value, so the
// stored value must stay above every tick the process may have let out. The
// committer stores clock+clockLease with every transaction, and a tick that
// comes within half the lease of the stored value makes a store of its own,
// so the clock keeps growing across crashes unless half a lease of ticks
// (8,192: some 200 ms of a fully loaded server's ticks) happens during one
// store, which takes about a millisecond. The lease is kept small so that
// the jump a crash leaves stays readable on an ATM's clock. A clean Close
// stores the clock exactly, so after an orderly restart it continues where
// it stopped; only a crash leaves a jump of up to one lease.
const clockLease = 1 << 14

// lease keeps the stored clock ahead of the running one.
type lease struct {
	mark    atomic.Uint64 // a tick reaching this asks for a new store
	kick    chan struct{}
	stopped chan struct{} // closed when the storing goroutine has ended
}

// startLease arms the lease after Open read stored from the file.
func (b *Bank) startLease(stored uint64) {
	b.lease.kick = make(chan struct{}, 1)
	b.lease.mark.Store(leaseMark(stored))
	b.clock.Subscribe(func(c Change) {
		if c.New >= b.lease.mark.Load() {
			select {
			case b.lease.kick <- struct{}{}:
			default:
			}
		}
	})
	b.lease.stopped = make(chan struct{})
	go func() {
		defer close(b.lease.stopped)
		for {
			select {
			case <-b.done:
				return
			case <-b.lease.kick:
				_ = b.db.Update(b.storeLease)
			}
		}
	}()
}

func leaseMark(stored uint64) uint64 {
	if stored < clockLease/2 {
		return 0
	}
	return stored - clockLease/2
}

// storeLease writes the clock plus the lease into tx, never lowering what
// the file holds, and moves the mark once the transaction has committed.
func (b *Bank) storeLease(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	v := max(getU64(meta, keyClock), b.clock.Now()+clockLease)
	if err := putU64(meta, keyClock, v); err != nil {
		return err
	}
	tx.OnCommit(func() {
		for {
			old := b.lease.mark.Load()
			if leaseMark(v) <= old || b.lease.mark.CompareAndSwap(old, leaseMark(v)) {
				return
			}
		}
	})
	return nil
}

// storeExactClock records the clock's value itself, for a clean Close: no
// tick can follow, so no lease is needed.
func (b *Bank) storeExactClock() error {
	<-b.lease.stopped
	return b.db.Update(func(tx *bolt.Tx) error {
		return putU64(tx.Bucket(bucketMeta), keyClock, b.clock.Now())
	})
}
