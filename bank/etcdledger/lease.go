package etcdledger

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"atm/bank/lamport"
	"atm/bank/outcome"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// clockLease is how far ahead of the clock clock/<proc> is kept, as in
// bank: a tick within half the lease of the stored value stores a new one,
// every transaction waits until the stored value covers its timestamps,
// and SendTick until it covers its tick. After a crash the clock resumes
// at the stored value, above every timestamp the process let out.
const clockLease = 1 << 14

type lease struct {
	mark    atomic.Uint64
	durable atomic.Uint64
	kick    chan struct{}
	stopped chan struct{}

	mu      sync.Mutex
	stored  chan struct{} // closed after the next store attempt
	lastErr error
}

// readLease reads this process's stored clock, with the key's revision
// (0 if absent) for storeLease; Open takes the store's revision instead.
func (l *Ledger) readLease(ctx context.Context) (uint64, int64, error) {
	v, rev, _, err := l.readLeaseAt(ctx)
	return v, rev, err
}

// readLeaseAt reads this process's stored clock, with the key's revision
// and the store's revision of the read.
func (l *Ledger) readLeaseAt(ctx context.Context) (uint64, int64, int64, error) {
	cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	defer cancel()
	resp, err := l.cli.Get(cctx, l.clockKey())
	if err != nil {
		return 0, 0, 0, err
	}
	if len(resp.Kvs) == 0 {
		return 0, 0, resp.Header.Revision, nil
	}
	v, err := strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("clock of %s: damaged value %q", l.opts.ProcessID, resp.Kvs[0].Value)
	}
	return v, resp.Kvs[0].ModRevision, resp.Header.Revision, nil
}

func leaseMark(stored uint64) uint64 {
	if stored < clockLease/2 {
		return 0
	}
	return stored - clockLease/2
}

func (l *Ledger) startLease(stored uint64) {
	l.lease.kick = make(chan struct{}, 1)
	l.lease.stored = make(chan struct{})
	l.lease.stopped = make(chan struct{})
	l.lease.durable.Store(stored)
	l.lease.mark.Store(leaseMark(stored))
	cancelSub := l.clock.Subscribe(func(c lamport.Change) {
		if c.New >= l.lease.mark.Load() {
			l.kickLease()
		}
	})
	go func() {
		defer close(l.lease.stopped)
		defer cancelSub()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-l.done
			cancel()
		}()
		for {
			select {
			case <-l.done:
				l.lease.mu.Lock()
				l.lease.lastErr = outcome.ErrClosed
				close(l.lease.stored)
				l.lease.mu.Unlock()
				return
			case <-l.lease.kick:
				l.leaseStored(l.storeLease(ctx))
			}
		}
	}()
}

func (l *Ledger) kickLease() {
	select {
	case l.lease.kick <- struct{}{}:
	default:
	}
}

func (l *Ledger) leaseStored(err error) {
	l.lease.mu.Lock()
	l.lease.lastErr = err
	close(l.lease.stored)
	l.lease.stored = make(chan struct{})
	l.lease.mu.Unlock()
}

// storeLease stores the clock plus the lease, never lowering the stored
// value.
func (l *Ledger) storeLease(ctx context.Context) error {
	for range 10 {
		old, rev, err := l.readLease(ctx)
		if err != nil {
			return l.unavailable(ctx, err)
		}
		v := max(old, min(l.clock.Now()+clockLease, lamport.MaxTS))
		cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
		key := l.clockKey()
		resp, err := l.cli.Txn(cctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, strconv.FormatUint(v, 10))).Commit()
		cancel()
		if err != nil {
			return l.unavailable(ctx, err)
		}
		if !resp.Succeeded {
			continue
		}
		for {
			old := l.lease.durable.Load()
			if v <= old || l.lease.durable.CompareAndSwap(old, v) {
				break
			}
		}
		for {
			old := l.lease.mark.Load()
			if leaseMark(v) <= old || l.lease.mark.CompareAndSwap(old, leaseMark(v)) {
				return nil
			}
		}
	}
	return fmt.Errorf("clock of %s: another process keeps writing it (two servers with one process id?)", l.opts.ProcessID)
}

// SendTick ticks the clock for a message that leaves the process without a
// transaction of its own and returns its timestamp once the clock stored in
// etcd covers it. It fails if ctx ends or the ledger closes first, or if
// the store fails; the message must not be sent then.
func (l *Ledger) SendTick(ctx context.Context) (uint64, error) {
	ts := l.clock.Tick()
	return ts, l.waitDurable(ctx, ts)
}

func (l *Ledger) waitDurable(ctx context.Context, ts uint64) error {
	for l.lease.durable.Load() < ts {
		l.lease.mu.Lock()
		wait := l.lease.stored
		l.lease.mu.Unlock()
		if l.lease.durable.Load() >= ts {
			break
		}
		l.kickLease()
		select {
		case <-wait:
			l.lease.mu.Lock()
			err := l.lease.lastErr
			l.lease.mu.Unlock()
			if err != nil && l.lease.durable.Load() < ts {
				return fmt.Errorf("store the clock: %w", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// storeExactClock stores the clock's value itself, for a clean Close.
func (l *Ledger) storeExactClock(ctx context.Context) error {
	now := l.clock.Now()
	if _, err := l.cli.Put(ctx, l.clockKey(), strconv.FormatUint(now, 10)); err != nil {
		return fmt.Errorf("store the clock (L=%d): %w: %w; the next start resumes it above its lease, so it will not go back",
			now, ErrUnavailable, err)
	}
	return nil
}
