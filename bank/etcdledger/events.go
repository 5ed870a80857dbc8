package etcdledger

import (
	"context"
	"encoding/json"
	"fmt"

	"atm/bank"
	"atm/bank/outcome"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxRecordBatch bounds the events of one RecordAll transaction, below
// etcd's default limit of operations per transaction (128).
const maxRecordBatch = 100

// Record appends a non-operation event (server start and stop, connect,
// logout, push, disconnect...) to the log, with a tick of the clock; it is
// committed when Record returns.
func (l *Ledger) Record(ctx context.Context, e bank.Event) (bank.Event, error) {
	out, err := l.RecordAll(ctx, []bank.Event{e})
	return out[0], err
}

// RecordAll appends non-operation events to the log in the order given,
// with rising timestamps, in transactions of up to 100 events. It returns
// the events as recorded; an event that could not be recorded is returned
// with TS 0, and the first error is returned too.
func (l *Ledger) RecordAll(ctx context.Context, es []bank.Event) ([]bank.Event, error) {
	out := make([]bank.Event, len(es))
	for start := 0; start < len(es); start += maxRecordBatch {
		chunk := es[start:min(start+maxRecordBatch, len(es))]
		for _, e := range chunk {
			if e.Kind.IsOperation() {
				return out, fmt.Errorf("record %s: use the operation's own method", e.Kind)
			}
		}
		var done []bank.Event
		err := l.run(ctx, "record", nil, func(t *tx) error {
			done = done[:0]
			now := l.opts.Now()
			for _, e := range chunk {
				e.TS = l.clock.Tick()
				e.Proc = l.opts.ProcessID
				if e.Outcome == "" {
					e.Outcome = outcome.OutcomeOK
				}
				if e.Wall.IsZero() {
					e.Wall = now
				}
				if e.ReqID != "" { // it answers a request: reserve the reply's tick
					e.ApplyTS = e.TS
					e.ReplyTS = l.clock.Tick()
				}
				if err := t.putEvent(e); err != nil {
					return err
				}
				done = append(done, e)
			}
			return nil
		})
		if err != nil {
			return out, err
		}
		copy(out[start:], done)
	}
	return out, nil
}

// EventsAfter returns at most limit events of the log with timestamps
// above after, in (ts, proc) order, read at one revision.
func (l *Ledger) EventsAfter(after uint64, limit int) ([]bank.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	r, err := l.newLogReader(context.Background(), after)
	if err != nil {
		return nil, err
	}
	var out []bank.Event
	for len(out) < limit {
		e, ok, err := r.next()
		if err != nil {
			return out, err
		}
		if !ok {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// Events calls fn for every event of the log, in (ts, proc) order, read
// page by page at one etcd revision (the log as it was when Events
// started). It stops at fn's first error and returns it.
func (l *Ledger) Events(fn func(bank.Event) error) error {
	if err := l.checkLayout(context.Background(), false); err != nil {
		return err
	}
	r, err := l.newLogReader(context.Background(), 0)
	if err != nil {
		return err
	}
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

// Audit reads every account and the running totals at one etcd revision,
// so the figures are consistent with each other.
func (l *Ledger) Audit() (bank.Audit, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	a := bank.Audit{TS: l.clock.Now()}
	accts, tot, _, err := l.snapshot(ctx)
	if err != nil {
		return a, err
	}
	a.Deposits, a.Withdrawals = tot.Deposits, tot.Withdrawals
	for _, r := range accts {
		acct := r.Account
		acct.PINHash = nil
		a.Accounts = append(a.Accounts, acct)
		a.Total += acct.Balance
		if acct.Balance < 0 {
			a.Negative = append(a.Negative, acct.ID)
		}
	}
	return a, nil
}

// Accounts lists every account, ordered by id bytes.
func (l *Ledger) Accounts() ([]bank.Account, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	accts, _, _, err := l.snapshot(ctx)
	out := make([]bank.Account, 0, len(accts))
	for _, r := range accts {
		out = append(out, r.Account)
	}
	return out, err
}

// snapshot reads every account and the totals at one revision, which it
// returns.
func (l *Ledger) snapshot(ctx context.Context) ([]record, totals, int64, error) {
	var tot totals
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
