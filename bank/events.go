package bank

import (
	"cmp"
	"context"
	"fmt"

	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
)

// Events calls fn for every event in the log in timestamp order, stopping at
// the first error fn returns.
func (b *Bank) Events(fn func(Event) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return eachEvent(tx, fn) })
}

// EventsAfter returns at most limit events of the log with timestamps above
// after, oldest first, read in one consistent read transaction. It is how
// a running server hands its log to an operator.
func (b *Bank) EventsAfter(after uint64, limit int) ([]Event, error) {
	var out []Event
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(u64key(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			ts, err := eventKey(k)
			if err != nil {
				return err
			}
			e, _, _, err := decodeEvent(ts, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Record appends a non-money event (server start and stop, connect, logout,
// push, disconnect...) to the log. Its timestamp comes from a tick of the
// clock in the committer; the event is on disk when Record returns.
func (b *Bank) Record(ctx context.Context, e Event) (Event, error) {
	if e.Kind.IsOperation() {
		return Event{}, fmt.Errorf("record %s: use the operation's own method", e.Kind)
	}
	r := b.submit(ctx, &op{kind: opRecord, ev: e})
	return r.rec.Event, r.err
}

// RecordAll appends non-money events to the log in the order given, like
// Record, with timestamps rising in that order; they share the committer's
// transactions. It returns the events as recorded; an event that could not
// be recorded is returned with TS 0, and the first error is returned too.
func (b *Bank) RecordAll(ctx context.Context, es []Event) ([]Event, error) {
	out := make([]Event, len(es))
	ops := make([]*op, 0, len(es))
	var firstErr error
	b.mu.RLock()
	for _, e := range es {
		if b.closed {
			firstErr = outcome.ErrClosed
			break
		}
		if e.Kind.IsOperation() {
			firstErr = fmt.Errorf("record %s: use the operation's own method", e.Kind)
			break
		}
		o := &op{kind: opRecord, ev: e, out: make(chan struct{})}
		select {
		case b.queue <- o:
			ops = append(ops, o)
		case <-ctx.Done():
			firstErr = ctx.Err()
		}
		if firstErr != nil {
			break
		}
	}
	b.mu.RUnlock()
	for i, o := range ops {
		select {
		case <-o.out:
			if o.res.err != nil {
				firstErr = cmp.Or(firstErr, o.res.err)
				continue
			}
			out[i] = o.res.rec.Event
		case <-ctx.Done():
			return out, cmp.Or(firstErr, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err()))
		}
	}
	return out, firstErr
}
