package bank

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"atm/bank/lamport"
	"atm/bank/outcome"
)

// LeaseAhead is how far ahead of the clock a store keeps its stored clock.
//
// Not every tick reaches the store: the server's receive events and its
// own error replies tick the clock and leave the process in messages
// without a transaction. After a crash the clock resumes at the stored
// value, so the stored value must stay above every timestamp the process
// ever let out. Two mechanisms keep it there:
//
//   - The store keeps clock+LeaseAhead stored, and a tick that comes within
//     half the lease of the stored value makes a store of its own, so the
//     stored value normally stays well ahead.
//   - A timestamp that leaves the process without a transaction of its own
//     is taken with Ledger.SendTick, which returns only once the stored
//     value covers it, and every transaction waits until it covers the
//     transaction's timestamps. In the usual case that is at once; after a
//     large jump of the clock (a receive of a much higher timestamp) it
//     waits for one store.
//
// The lease is kept small so that the jump a crash leaves stays readable
// on an ATM's clock. A clean Close stores the clock exactly, so after an
// orderly restart it continues where it stopped; only a crash leaves a
// jump of up to one lease.
const LeaseAhead = 1 << 14

// Lease keeps a store's stored clock ahead of the running one. The store
// gives it a save function, which stores Target (never lowering what is
// stored) and reports the value with Stored once it is durable.
type Lease struct {
	clock   *lamport.Clock
	mark    atomic.Uint64 // a tick reaching this asks for a new store
	durable atomic.Uint64 // the stored value, durable
	kick    chan struct{}
	stopped chan struct{} // closed when the storing goroutine has ended

	mu      sync.Mutex
	stored  chan struct{} // closed after the next store attempt
	lastErr error         // of the last store attempt
}

func leaseMark(stored uint64) uint64 {
	if stored < LeaseAhead/2 {
		return 0
	}
	return stored - LeaseAhead/2
}

// StartLease arms the lease of a clock the store resumed at stored, and
// stores it with save whenever the clock comes near, until done is
// closed. save's context ends when done is closed.
func StartLease(clock *lamport.Clock, stored uint64, save func(context.Context) error, done <-chan struct{}) *Lease {
	l := &Lease{clock: clock, kick: make(chan struct{}, 1), stored: make(chan struct{}), stopped: make(chan struct{})}
	l.durable.Store(stored)
	l.mark.Store(leaseMark(stored))
	cancelSub := clock.Subscribe(func(c lamport.Change) {
		if c.New >= l.mark.Load() {
			l.kickStore()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-done
		cancel()
	}()
	go func() {
		defer close(l.stopped)
		defer cancelSub()
		for {
			select {
			case <-done:
				l.mu.Lock()
				l.lastErr = outcome.ErrClosed
				close(l.stored) // and never replaced: waiters see the error
				l.mu.Unlock()
				return
			case <-l.kick:
				l.attempted(save(ctx))
			}
		}
	}()
	return l
}

// Target is the value to store: the clock plus the lease, at most
// lamport.MaxTS.
func (l *Lease) Target() uint64 { return min(l.clock.Now()+LeaseAhead, lamport.MaxTS) }

// Stored records v as durable in the store.
func (l *Lease) Stored(v uint64) {
	for {
		old := l.durable.Load()
		if v <= old || l.durable.CompareAndSwap(old, v) {
			break
		}
	}
	for {
		old := l.mark.Load()
		if leaseMark(v) <= old || l.mark.CompareAndSwap(old, leaseMark(v)) {
			return
		}
	}
}

// Stopped is closed once the lease stores no more.
func (l *Lease) Stopped() <-chan struct{} { return l.stopped }

func (l *Lease) kickStore() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// attempted wakes the callers waiting for a store.
func (l *Lease) attempted(err error) {
	l.mu.Lock()
	l.lastErr = err
	close(l.stored)
	l.stored = make(chan struct{})
	l.mu.Unlock()
}

// Wait returns once the stored clock covers ts, a timestamp the clock has
// already reached. It fails if ctx ends or the lease stops first, or if
// the store fails.
func (l *Lease) Wait(ctx context.Context, ts uint64) error {
	for l.durable.Load() < ts {
		l.mu.Lock()
		wait := l.stored
		l.mu.Unlock()
		if l.durable.Load() >= ts {
			break
		}
		l.kickStore()
		select {
		case <-wait:
			l.mu.Lock()
			err := l.lastErr
			l.mu.Unlock()
			if err != nil && l.durable.Load() < ts {
				return fmt.Errorf("store the clock: %w", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
