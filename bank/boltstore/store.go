package boltstore

import (
	"context"
	"fmt"

	"atm/bank"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
)

var _ bank.Store = (*store)(nil)

// op is an operation with the committer: its outcome, and a channel closed
// once it is on disk (or failed).
type op struct {
	op  bank.Op
	res bank.Result
	err error
	out chan struct{}
}

// Do hands o to the committer and waits for its outcome. If ctx ends
// first, it returns an error wrapping bank.ErrOutcomeUnknown and ctx's
// error: o may not have been applied, or may be applied and committed
// later.
func (b *store) Do(ctx context.Context, bo bank.Op) (bank.Result, error) {
	o := &op{op: bo, out: make(chan struct{})}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return bank.Result{}, outcome.ErrClosed
	}
	select {
	case b.queue <- o:
	case <-ctx.Done():
		b.mu.RUnlock()
		return bank.Result{}, ctx.Err() // never queued: nothing applied
	}
	b.mu.RUnlock()
	select {
	case <-o.out:
		return o.res, o.err
	case <-ctx.Done():
		return bank.Result{}, fmt.Errorf("%w: %w", bank.ErrOutcomeUnknown, ctx.Err())
	}
}

// Committed reads account id, balance included, from the committed state.
func (b *store) Committed(_ context.Context, id string) (*bank.Account, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, fmt.Errorf("login: %w", outcome.ErrClosed)
	}
	var a *bank.Account
	err := b.db.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketAccounts).Get([]byte(id))
		if rec == nil {
			return nil
		}
		acct, err := decodeAccount(id, rec, tx.Bucket(bucketState).Get([]byte(id)), stateDecoder(tx))
		a = &acct
		return err
	})
	return a, err
}

// Accounts reads every account in one read transaction.
func (b *store) Accounts(context.Context) ([]bank.Account, error) {
	var accts []bank.Account
	err := b.db.View(func(tx *bolt.Tx) error {
		return eachAccount(tx, func(a bank.Account) error {
			accts = append(accts, a)
			return nil
		})
	})
	return accts, err
}

// Snapshot reads every account and the running totals in one read
// transaction.
func (b *store) Snapshot(context.Context) ([]bank.Account, bank.Totals, error) {
	var accts []bank.Account
	var tot bank.Totals
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		accts, tot, err = snapshot(tx)
		return err
	})
	return accts, tot, err
}

func snapshot(tx *bolt.Tx) ([]bank.Account, bank.Totals, error) {
	var accts []bank.Account
	tot, err := totals(tx)
	if err != nil {
		return nil, tot, err
	}
	err = eachAccount(tx, func(a bank.Account) error {
		accts = append(accts, a)
		return nil
	})
	return accts, tot, err
}

// Log reads the events after the cursor in one read transaction. The
// bank's one writer commits its events in timestamp order, so the cursor
// is the timestamp of the last event read (bank.TSCursor).
func (b *store) Log(_ context.Context, after bank.Cursor, fn func(bank.Event) error) (bank.Cursor, error) {
	ts, err := after.TS()
	if err != nil {
		return after, err
	}
	next := ts
	err = b.db.View(func(tx *bolt.Tx) error {
		return eachEvent(tx, ts, func(e bank.Event) error {
			if err := fn(e); err != nil {
				return err
			}
			next = e.TS
			return nil
		})
	})
	return bank.TSCursor(next), err
}

// Replay reads the log from where r starts, then the accounts and totals,
// in one read transaction (see replayLog).
func (b *store) Replay(_ context.Context, r *bank.Replay) ([]bank.Account, bank.Totals, error) {
	var accts []bank.Account
	var tot bank.Totals
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		accts, tot, err = replayLog(tx, r)
		return err
	})
	return accts, tot, err
}

// LastCheckpoint reads the newest checkpoint: the one with the highest
// timestamp.
func (b *store) LastCheckpoint(context.Context) (*bank.StoredCheckpoint, error) {
	var c *bank.StoredCheckpoint
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		c, err = lastCheckpoint(tx)
		return err
	})
	return c, err
}

// CheckpointState reads the state of the checkpoint at ts; the file has
// one process, so proc does not tell checkpoints apart.
func (b *store) CheckpointState(_ context.Context, ts uint64, _ string) ([]byte, error) {
	var state []byte
	err := b.db.View(func(tx *bolt.Tx) error {
		state = checkpointState(tx, ts)
		return nil
	})
	return state, err
}
