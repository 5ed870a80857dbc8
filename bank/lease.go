package bank

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"atm/bank/lamport"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
)

// clockLease is how far ahead of the clock the file's stored clock runs.
//
// Not every tick reaches the file: the server's receive events and its own
// error replies tick the clock and leave the process in messages without a
// transaction. After a crash the clock resumes at the stored value, so the
// stored value must stay above every timestamp the process ever let out.
// Two mechanisms keep it there:
//
//   - The committer stores clock+clockLease with every transaction, and a
//     tick that comes within half the lease of the stored value makes a
//     store of its own, so the stored value normally stays well ahead.
//   - A timestamp that leaves the process without a transaction of its own
//     is taken with SendTick, which returns only once the stored value
//     covers it. In the usual case that is at once (the lease is ahead);
//     after a large jump of the clock (a receive of a much higher
//     timestamp) it waits for one store.
//
// The lease is kept small so that the jump a crash leaves stays readable on
// an ATM's clock. A clean Close stores the clock exactly, so after an orderly
// restart it continues where it stopped; only a crash leaves a jump of up to
// one lease.
const clockLease = 1 << 14

// lease keeps the stored clock ahead of the running one.
type lease struct {
	mark    atomic.Uint64 // a tick reaching this asks for a new store
	durable atomic.Uint64 // the stored value, on disk
	kick    chan struct{}
	stopped chan struct{} // closed when the storing goroutine has ended

	mu      sync.Mutex
	stored  chan struct{} // closed after the next store attempt
	lastErr error         // of the last store attempt
}

// startLease arms the lease after Open read stored from the file.
func (b *Bank) startLease(stored uint64) {
	b.lease.kick = make(chan struct{}, 1)
	b.lease.stored = make(chan struct{})
	b.lease.durable.Store(stored)
	b.lease.mark.Store(leaseMark(stored))
	b.clock.Subscribe(func(c lamport.Change) {
		if c.New >= b.lease.mark.Load() {
			b.kickLease()
		}
	})
	b.lease.stopped = make(chan struct{})
	go func() {
		defer close(b.lease.stopped)
		for {
			select {
			case <-b.done:
				b.lease.mu.Lock()
				b.lease.lastErr = outcome.ErrClosed
				close(b.lease.stored) // and never replaced: waiters see the error
				b.lease.mu.Unlock()
				return
			case <-b.lease.kick:
				err := b.db.Update(b.storeLease)
				b.leaseStored(err)
			}
		}
	}()
}

func (b *Bank) kickLease() {
	select {
	case b.lease.kick <- struct{}{}:
	default:
	}
}

// leaseStored wakes the callers waiting for a store.
func (b *Bank) leaseStored(err error) {
	b.lease.mu.Lock()
	b.lease.lastErr = err
	close(b.lease.stored)
	b.lease.stored = make(chan struct{})
	b.lease.mu.Unlock()
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
	old, err := readU64(meta, keyClock)
	if err != nil {
		return err
	}
	v := max(old, min(b.clock.Now()+clockLease, lamport.MaxTS))
	if err := putU64(meta, keyClock, v); err != nil {
		return err
	}
	tx.OnCommit(func() {
		for {
			old := b.lease.durable.Load()
			if v <= old || b.lease.durable.CompareAndSwap(old, v) {
				break
			}
		}
		for {
			old := b.lease.mark.Load()
			if leaseMark(v) <= old || b.lease.mark.CompareAndSwap(old, leaseMark(v)) {
				return
			}
		}
	})
	return nil
}

// SendTick ticks the clock for a message that leaves the process without a
// transaction of its own (an error the server answers by itself, a
// greeting refused for lack of room) and returns the timestamp the message
// carries once it is covered by the clock stored on disk: after a crash at
// any point, the clock resumes above it. It fails if ctx ends or the bank
// closes first, or if the store fails; the message must not be sent then.
func (b *Bank) SendTick(ctx context.Context) (uint64, error) {
	ts := b.clock.Tick()
	return ts, b.waitDurable(ctx, ts)
}

// Durable waits until the clock stored on disk covers ts, a timestamp the
// clock has already reached.
func (b *Bank) Durable(ctx context.Context, ts uint64) error { return b.waitDurable(ctx, ts) }

func (b *Bank) waitDurable(ctx context.Context, ts uint64) error {
	for b.lease.durable.Load() < ts {
		b.lease.mu.Lock()
		wait := b.lease.stored
		b.lease.mu.Unlock()
		if b.lease.durable.Load() >= ts {
			break
		}
		b.kickLease()
		select {
		case <-wait:
			b.lease.mu.Lock()
			err := b.lease.lastErr
			b.lease.mu.Unlock()
			if err != nil && b.lease.durable.Load() < ts {
				return fmt.Errorf("store the clock: %w", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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
