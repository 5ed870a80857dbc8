package etcdstore

import (
	"context"

	"atm/bank"
)

// Replay reads the accounts and totals at one etcd revision, then the
// log at that revision, in (ts, proc) order, calling fn for each event.
// The log reader checks each segment: it holds events of the server its
// key names, the first at the key's timestamp, and each server's events
// have strictly rising timestamps.
func (l *store) Replay(ctx context.Context, fn func(bank.Event) error) ([]bank.Account, bank.Totals, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*l.opts.CommitTimeout)
	defer cancel()
	recs, tot, rev, err := l.snapshot(ctx)
	if err != nil {
		return nil, tot, err
	}
	if err := l.checkLayout(ctx, false); err != nil {
		return nil, tot, err
	}
	r, err := l.newLogReaderAt(ctx, rev, bank.ProcCursor{})
	if err != nil {
		return nil, tot, err
	}
	if err := r.each(fn); err != nil {
		return nil, tot, err
	}
	accts := make([]bank.Account, 0, len(recs))
	for _, a := range recs {
		accts = append(accts, a.Account)
	}
	return accts, tot, nil
}
