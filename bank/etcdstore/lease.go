package etcdstore

import (
	"context"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The clock's lease (bank.LeaseAhead) is kept in clock/<proc>: every
// transaction waits until the stored value covers its timestamps, and
// Open resumes the clock from it.

// readLease reads this process's stored clock, with the key's revision
// (0 if absent) for saveLease; Open takes the store's revision instead.
func (l *store) readLease(ctx context.Context) (uint64, int64, error) {
	v, rev, _, err := l.readLeaseAt(ctx)
	return v, rev, err
}

// readLeaseAt reads this process's stored clock, with the key's revision
// and the store's revision of the read.
func (l *store) readLeaseAt(ctx context.Context) (uint64, int64, int64, error) {
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

// saveLease stores the lease's target, never lowering the stored value.
func (l *store) saveLease(ctx context.Context) error {
	for range 10 {
		old, rev, err := l.readLease(ctx)
		if err != nil {
			return l.unavailable(ctx, err)
		}
		v := max(old, l.lease.Target())
		cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
		key := l.clockKey()
		resp, err := l.cli.Txn(cctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, strconv.FormatUint(v, 10))).Commit()
		cancel()
		if err != nil {
			return l.unavailable(ctx, err)
		}
		if resp.Succeeded {
			l.lease.Stored(v)
			return nil
		}
	}
	return fmt.Errorf("clock of %s: another process keeps writing it (two servers with one process id?)", l.opts.ProcessID)
}

// storeExactClock stores the clock's value itself, for a clean Close.
func (l *store) storeExactClock(ctx context.Context) error {
	now := l.clock.Now()
	if _, err := l.cli.Put(ctx, l.clockKey(), strconv.FormatUint(now, 10)); err != nil {
		return fmt.Errorf("store the clock (L=%d): %w: %w; the next start resumes it above its lease, so it will not go back",
			now, ErrUnavailable, err)
	}
	return nil
}
