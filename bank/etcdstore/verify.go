package etcdstore

import (
	"context"

	"atm/bank"
)

// Replay reads the accounts and totals at one etcd revision, then the
// log at that revision from where r starts (each server after its chain's
// head), in (ts, proc) order: each segment goes to r.Link, in its
// server's key order, before its events go to r.Event. The log reader
// checks each segment: it holds events of the server its key names, the
// first at the key's timestamp, and each server's events have strictly
// rising timestamps.
func (l *store) Replay(ctx context.Context, rp *bank.Replay) ([]bank.Account, bank.Totals, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*l.opts.CommitTimeout)
	defer cancel()
	recs, tot, rev, err := l.snapshot(ctx)
	if err != nil {
		return nil, tot, err
	}
	if err := l.checkLayout(ctx, false); err != nil {
		return nil, tot, err
	}
	from := bank.ProcCursor{At: map[string]uint64{}}
	for _, h := range rp.From() {
		from.At[h.Chain] = h.TS
	}
	r, err := l.newLogReaderAt(ctx, rev, from)
	if err != nil {
		return nil, tot, err
	}
	for _, c := range r.cursors {
		c.link = rp.Link
	}
	if err := r.each(rp.Event); err != nil {
		return nil, tot, err
	}
	accts := make([]bank.Account, 0, len(recs))
	for _, a := range recs {
		accts = append(accts, a.Account)
	}
	return accts, tot, nil
}
