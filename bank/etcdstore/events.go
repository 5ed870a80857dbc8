package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"

	"atm/bank"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Log calls fn for every event of the log above after, in (ts, proc)
// order, read page by page at one etcd revision (the log as it was when
// Log started); the whole log's layout is checked first.
func (l *store) Log(ctx context.Context, after bank.Cursor, fn func(bank.Event) error) (bank.Cursor, error) {
	at, err := bank.ParseProcCursor(after)
	if err != nil {
		return after, err
	}
	if after == "" {
		if err := l.checkLayout(ctx, false); err != nil {
			return after, err
		}
	}
	r, err := l.newLogReader(ctx, at)
	if err != nil {
		return after, err
	}
	err = r.each(func(e bank.Event) error {
		if err := fn(e); err != nil {
			return err
		}
		at.Read(e)
		return nil
	})
	return at.Cursor(), err
}

// each calls fn for every event r reads, until fn returns an error.
func (r *logReader) each(fn func(bank.Event) error) error {
	for {
		e, ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// Accounts reads every account at one etcd revision.
func (l *store) Accounts(ctx context.Context) ([]bank.Account, error) {
	accts, _, err := l.Snapshot(ctx)
	return accts, err
}

// Snapshot reads every account and the totals at one etcd revision.
func (l *store) Snapshot(ctx context.Context) ([]bank.Account, bank.Totals, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	defer cancel()
	recs, tot, _, err := l.snapshot(ctx)
	out := make([]bank.Account, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Account)
	}
	return out, tot, err
}

// snapshot reads every account and the totals at one revision, which it
// returns.
func (l *store) snapshot(ctx context.Context) ([]record, bank.Totals, int64, error) {
	var tot bank.Totals
	resp, err := l.cli.Txn(ctx).Then(
		clientv3.OpGet(l.k("accounts/"), clientv3.WithPrefix()),
		clientv3.OpGet(l.totalsKey()),
	).Commit()
	if err != nil {
		return nil, tot, 0, l.unavailable(ctx, err)
	}
	var out []record
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var r record
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, tot, 0, fmt.Errorf("account %s: damaged record: %w", kv.Key, err)
		}
		out = append(out, r)
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		if err := json.Unmarshal(kvs[0].Value, &tot); err != nil {
			return nil, tot, 0, fmt.Errorf("totals: damaged record: %w", err)
		}
	}
	return out, tot, resp.Header.Revision, nil
}
