package etcdstore

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"atm/bank"
	"atm/bank/outcome"
)

var (
	_ bank.Store = (*store)(nil)
	_ bank.View  = (*tx)(nil)
)

// Do runs o as an optimistic transaction in a batch (see run), prefetching
// the keys it announces: its accounts, and the totals for a deposit or a
// withdrawal; for a money request with an id, the chunks of the request
// ids its account remembers.
func (l *store) Do(ctx context.Context, o bank.Op) (bank.Result, error) {
	var res bank.Result
	keys := l.idKeys(o.ID)
	var more func(map[string]preKV) []string
	if o.Kind.IsMoney() && len(keys) > 0 {
		if o.Kind == bank.KindTransfer {
			keys = append(keys, l.idKeys(o.To)...)
		} else {
			keys = append(keys, l.totalsKey())
		}
		if req := o.Meta.ReqID; req != "" && len(req) <= 128 && !strings.Contains(req, "\x00") {
			more = func(pre map[string]preKV) []string { return l.moreKeys(pre, o.ID, req) }
		}
	}
	what := string(o.Kind)
	if o.Kind == bank.OpCreate {
		what = "open"
	}
	// The committer computes the operation; when ctx ends while it does,
	// run returns (the outcome unknown) before it is done, so the result
	// is handed over under a lock.
	var mu sync.Mutex
	err := l.run(ctx, what, keys, more, func(t *tx) error {
		r, err := l.rules.Apply(t, &o)
		mu.Lock()
		res = r
		mu.Unlock()
		return err
	})
	mu.Lock()
	defer mu.Unlock()
	return res, err
}

// Committed reads account id through the quorum.
func (l *store) Committed(ctx context.Context, id string) (*bank.Account, error) {
	if l.isClosed() {
		return nil, fmt.Errorf("login: %w", outcome.ErrClosed)
	}
	r, err := newTx(l, ctx).account(id)
	if r == nil || err != nil {
		return nil, err
	}
	return &r.Account, nil
}

// The tx of an operation is the rules' bank.View: an account's record is
// read whole, and the clock first receives its last timestamp, so that
// each account's events rise whichever server applies them.

func (t *tx) record(id string) (*bank.Record, error) {
	r, err := t.account(id)
	if r == nil || err != nil {
		return nil, err
	}
	t.l.receive(r)
	return &bank.Record{Account: r.Account, Whole: true, Store: r}, nil
}

// Account reads account id's record.
func (t *tx) Account(id string) (*bank.Record, error) { return t.record(id) }

// Login reads account id's record.
func (t *tx) Login(id string) (*bank.Record, error) { return t.record(id) }

// Totals reads the totals: for a checkpoint, as Balances read them.
func (t *tx) Totals() (bank.Totals, error) {
	if t.checkpoint != nil {
		return t.checkpoint.totals, nil
	}
	return t.totals()
}

// PutTotals writes the totals.
func (t *tx) PutTotals(tot bank.Totals) error { return t.putJSON(t.l.totalsKey(), tot) }

// Remembered finds request req in the window of account a.
func (t *tx) Remembered(_ string, a *bank.Record, req string) (bank.Event, bool, error) {
	if a == nil {
		return bank.Event{}, false, nil
	}
	return t.l.findRequest(t, a.Store.(*record), req)
}

// Remember adds request req to the window of account a; a request on an
// account that does not exist is not remembered.
func (t *tx) Remember(_ string, a *bank.Record, req string, e bank.Event) error {
	if a == nil {
		return nil
	}
	return t.l.remember(t, a.Store.(*record), req, e)
}

// Statement reads a page of a's entries.
func (t *tx) Statement(a *bank.Record, before uint64, limit int) (bank.StatementPage, error) {
	return t.l.statement(t, a.Store.(*record), before, limit)
}

// Append adds e to the batch's segment and writes the record of every
// account read, e its last event (and a statement entry when entry is
// set).
func (t *tx) Append(e bank.Event, entry bool, a, to *bank.Record) error {
	if err := t.putEvent(e); err != nil {
		return err
	}
	for _, a := range [...]*bank.Record{a, to} {
		if a == nil {
			continue
		}
		r, _ := a.Store.(*record)
		if r == nil {
			r = &record{}
			a.Store = r
		}
		r.Account = a.Account
		if entry {
			if err := t.l.putEntry(t, r, e); err != nil {
				return err
			}
		}
		r.Last = e.TS
		if err := t.putAccount(r); err != nil {
			return err
		}
	}
	return nil
}
