package etcdledger

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"atm/bank"
	"atm/bank/money"
	"atm/bank/outcome"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// tx is one attempt of an optimistic transaction: the keys it read, with
// the comparisons that make its commit fail if any of them changed, and the
// writes it will commit.
type tx struct {
	l      *Ledger
	ctx    context.Context
	read   map[string]readKV
	cmps   []clientv3.Cmp
	ops    []clientv3.Op
	maxTS  uint64
	events []bank.Event
}

type readKV struct {
	val []byte
	ok  bool
}

// get reads key once per attempt and makes the commit depend on it being
// unchanged (a missing key must still be missing).
func (t *tx) get(key string) ([]byte, bool, error) {
	if r, ok := t.read[key]; ok {
		return r.val, r.ok, nil
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.l.opts.CommitTimeout)
	defer cancel()
	resp, err := t.l.cli.Get(ctx, key)
	if err != nil {
		return nil, false, t.l.unavailable(t.ctx, err)
	}
	var r readKV
	var rev int64
	if len(resp.Kvs) > 0 {
		r = readKV{val: resp.Kvs[0].Value, ok: true}
		rev = resp.Kvs[0].ModRevision
	}
	t.read[key] = r
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
	return r.val, r.ok, nil
}

func (t *tx) put(key string, v []byte) { t.ops = append(t.ops, clientv3.OpPut(key, string(v))) }

func (t *tx) del(key string) { t.ops = append(t.ops, clientv3.OpDelete(key)) }

func (t *tx) putJSON(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	t.put(key, raw)
	return nil
}

// putEvent appends e to the log; the commit fails if its key exists.
func (t *tx) putEvent(e bank.Event) error {
	key := t.l.eventKey(e.TS, e.Proc)
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.Version(key), "=", 0))
	if err := t.putJSON(key, e); err != nil {
		return err
	}
	t.maxTS = max(t.maxTS, e.TS, e.ReplyTS)
	t.events = append(t.events, e)
	return nil
}

// record is an account as stored: bank's account, its balance included,
// with the timestamp of its last event and the count of its remembered
// requests.
type record struct {
	bank.Account
	Last   uint64 `json:"last"`
	ReqSeq uint64 `json:"req_seq,omitempty"`
}

// account reads an account; nil when it does not exist (or id is not a
// valid account id).
func (t *tx) account(id string) (*record, error) {
	if !money.ValidAccountID(id) {
		return nil, nil
	}
	raw, ok, err := t.get(t.l.accountKey(id))
	if err != nil || !ok {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("account %s: damaged record: %w", id, err)
	}
	return &r, nil
}

func (t *tx) putAccount(r *record) error { return t.putJSON(t.l.accountKey(r.ID), r) }

type totals struct {
	Deposits    money.Cents `json:"deposits"`
	Withdrawals money.Cents `json:"withdrawals"`
}

func (t *tx) totals() (totals, error) {
	var tot totals
	raw, ok, err := t.get(t.l.totalsKey())
	if err != nil || !ok {
		return tot, err
	}
	if err := json.Unmarshal(raw, &tot); err != nil {
		return tot, fmt.Errorf("totals: damaged record: %w", err)
	}
	return tot, nil
}

// run runs fn as an optimistic transaction until it commits without
// conflict. fn computes the attempt's writes; it is called again, with
// fresh reads, after a conflict, so it must reset whatever it returns. An
// error of fn ends run at once, with nothing written.
func (l *Ledger) run(ctx context.Context, what string, fn func(t *tx) error) error {
	for attempt := range l.opts.MaxAttempts {
		if l.isClosed() {
			return fmt.Errorf("%s: %w", what, outcome.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return err // nothing sent
		}
		t := &tx{l: l, ctx: ctx, read: map[string]readKV{}}
		if err := fn(t); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if t.maxTS > 0 {
			if err := l.waitDurable(ctx, t.maxTS); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
		resp, err := l.cli.Txn(cctx).If(t.cmps...).Then(t.ops...).Commit()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w: %w", what, bank.ErrOutcomeUnknown, ctx.Err())
			}
			return fmt.Errorf("%s: %w; %w: retry with the same request id (%v)", what, ErrUnavailable, bank.ErrOutcomeUnknown, err)
		}
		if resp.Succeeded {
			if l.opts.OnEvent != nil {
				for _, e := range t.events {
					l.opts.OnEvent(e)
				}
			}
			return nil
		}
		backoff := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5)))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s: %w: gave up after %d conflicting attempts", what, outcome.ErrInternal, l.opts.MaxAttempts)
}

// receive makes the clock receive the account's last timestamp, so that
// the next tick is above it.
func (l *Ledger) receive(r *record) {
	if r != nil {
		l.clock.Receive(r.Last)
	}
}
