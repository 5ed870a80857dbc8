package etcdledger

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"atm/bank"
	"atm/bank/money"
	"atm/bank/outcome"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
)

type moneyOp struct {
	kind    bank.Kind
	m       bank.Meta
	id, to  string
	amount  money.Cents
	opening bool // the bank's own opening deposit, exempt from MaxAmount
}

// ref is an event's reference: its timestamp, the timestamp of the segment
// that holds it, and its process id.
type ref struct {
	ts, seg uint64
	proc    string
}

// parseRef parses "<ts>/<ts − segment's ts>/<proc>".
func parseRef(s string) (ref, error) {
	parts := strings.SplitN(s, "/", 3)
	if len(parts) == 3 {
		ts, err1 := strconv.ParseUint(parts[0], 10, 64)
		d, err2 := strconv.ParseUint(parts[1], 10, 64)
		if err1 == nil && err2 == nil && d <= ts && parts[2] != "" {
			return ref{ts: ts, seg: ts - d, proc: parts[2]}, nil
		}
	}
	return ref{}, fmt.Errorf("event reference %q: not <ts>/<offset>/<proc> (damaged record)", s)
}

// eventIn finds the event at ts in a segment's value, decoding only the
// timestamps it probes and the event it returns.
func eventIn(key string, raw []byte, ts uint64) (bank.Event, error) {
	var seg []json.RawMessage
	if err := json.Unmarshal(raw, &seg); err != nil {
		return bank.Event{}, fmt.Errorf("segment %s: damaged record: %w", key, err)
	}
	var bad error
	i, ok := slices.BinarySearchFunc(seg, ts, func(m json.RawMessage, ts uint64) int {
		var probe struct {
			TS uint64 `json:"ts"`
		}
		if err := json.Unmarshal(m, &probe); err != nil && bad == nil {
			bad = err
		}
		return cmp.Compare(probe.TS, ts)
	})
	var e bank.Event
	if bad == nil && ok {
		bad = json.Unmarshal(seg[i], &e)
	}
	if bad != nil {
		return e, fmt.Errorf("segment %s: damaged record: %w", key, bad)
	}
	if !ok {
		return e, fmt.Errorf("segment %s: no event at L=%d (damaged log)", key, ts)
	}
	return e, nil
}

func (l *Ledger) newEvent(kind bank.Kind, m bank.Meta, id, to string, amount money.Cents, now time.Time) bank.Event {
	ts := l.clock.Tick()
	return bank.Event{
		TS: ts, ApplyTS: ts, Proc: l.opts.ProcessID, Kind: kind,
		Account: id, To: to, Amount: amount,
		ReqID: m.ReqID, Client: m.Client, ClientTS: m.ClientTS, RecvTS: m.RecvTS,
		Wall: now, Seen: m.Seen,
	}
}

// finish stamps the outcome and reserves the reply's tick.
func (l *Ledger) finish(e *bank.Event, opErr error) {
	e.Outcome = outcome.Code(opErr)
	if opErr != nil && e.Detail == "" {
		e.Detail = opErr.Error()
	}
	e.ReplyTS = l.clock.Tick()
}

func notFound(id string) error { return fmt.Errorf("account %s: %w", id, outcome.ErrAccountNotFound) }

// Balance returns the account's balance in Receipt.Event.Balance.
func (l *Ledger) Balance(ctx context.Context, m bank.Meta, id string) (bank.Receipt, error) {
	_, r, err := l.read(ctx, bank.KindBalance, m, id, 0, 0)
	return r, err
}

// Lookup returns the holder's name of an account in Receipt.Holder.
func (l *Ledger) Lookup(ctx context.Context, m bank.Meta, id string) (bank.Receipt, error) {
	_, r, err := l.read(ctx, bank.KindLookup, m, id, 0, 0)
	return r, err
}

// Statement returns the account's entries (its open event and its
// successful money events), newest first: at most limit (default 20, at
// most 100) with timestamps below before (0: from the newest).
func (l *Ledger) Statement(ctx context.Context, m bank.Meta, id string, before uint64, limit int) (bank.StatementPage, bank.Receipt, error) {
	if limit <= 0 {
		limit = 20
	}
	return l.read(ctx, bank.KindStatement, m, id, before, min(limit, 100))
}

// Deposit adds amount to the account.
func (l *Ledger) Deposit(ctx context.Context, m bank.Meta, id string, amount money.Cents) (bank.Receipt, error) {
	return l.money(ctx, &moneyOp{kind: bank.KindDeposit, m: m, id: id, amount: amount})
}

// Withdraw takes amount from the account; it never leaves it negative.
func (l *Ledger) Withdraw(ctx context.Context, m bank.Meta, id string, amount money.Cents) (bank.Receipt, error) {
	return l.money(ctx, &moneyOp{kind: bank.KindWithdraw, m: m, id: id, amount: amount})
}

// Transfer moves amount from one account to another in one transaction.
func (l *Ledger) Transfer(ctx context.Context, m bank.Meta, from, to string, amount money.Cents) (bank.Receipt, error) {
	return l.money(ctx, &moneyOp{kind: bank.KindTransfer, m: m, id: from, to: to, amount: amount})
}

func (l *Ledger) read(ctx context.Context, kind bank.Kind, m bank.Meta, id string, before uint64, limit int) (bank.StatementPage, bank.Receipt, error) {
	var page bank.StatementPage
	var rec bank.Receipt
	var opErr error
	err := l.run(ctx, string(kind), l.idKeys(id), func(t *tx) error {
		page, rec, opErr = bank.StatementPage{}, bank.Receipt{}, nil
		now := l.opts.Now()
		a, err := t.account(id)
		if err != nil {
			return err
		}
		l.receive(a)
		e := l.newEvent(kind, m, id, "", 0, now)
		if a == nil {
			opErr = notFound(id)
		} else {
			switch kind {
			case bank.KindBalance:
				e.Balance = a.Balance
			case bank.KindLookup:
				rec.Holder = a.Name
				e.Detail = a.Name
			case bank.KindStatement:
				e.Balance = a.Balance
				if page, err = l.statement(t, a, before, limit); err != nil {
					return err
				}
			}
		}
		l.finish(&e, opErr)
		if err := t.putEventOn(e, a); err != nil {
			return err
		}
		rec.Event, rec.ReplyTS = e, e.ReplyTS
		return nil
	})
	if err != nil {
		return bank.StatementPage{}, bank.Receipt{}, err
	}
	return page, rec, opErr
}

// statement reads a page of the account's entries: the newest from its
// record a, then chunks of older ones, then the events they name, from
// the segments of the log. The commit depends on the account's record,
// which every entry changes, and chunks and segments never change once
// written, so the page is the one of the state read.
func (l *Ledger) statement(t *tx, a *record, before uint64, limit int) (bank.StatementPage, error) {
	var page bank.StatementPage
	id := a.ID
	if t.base != nil {
		if _, ok := t.base.writes[l.accountKey(id)]; ok {
			return page, errOverlap // its entries may name the batch's own segment
		}
	}
	want := limit + 1 // one more tells whether there is a next page
	var refs []ref    // newest first
	below := func(list []string) error {
		for i := len(list) - 1; i >= 0 && len(refs) < want; i-- {
			r, err := parseRef(list[i])
			if err != nil {
				return fmt.Errorf("statement of %s: %w", id, err)
			}
			if before == 0 || r.ts < before {
				refs = append(refs, r)
			}
		}
		return nil
	}
	if err := below(a.Entries); err != nil {
		return page, err
	}
	ctx, cancel := context.WithTimeout(t.ctx, l.opts.CommitTimeout)
	defer cancel()
	if len(refs) < want {
		prefix := l.k("stmt/" + id + "/")
		end := clientv3.GetPrefixRangeEnd(prefix)
		if before != 0 {
			end = l.stmtKey(id, before)
		}
		chunks := (want-len(refs))/entryChunk + 2
		resp, err := l.cli.Get(ctx, prefix, clientv3.WithRange(end),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(chunks)))
		if err != nil {
			return page, l.unavailable(t.ctx, err)
		}
		for _, kv := range resp.Kvs {
			var list []string
			if err := json.Unmarshal(kv.Value, &list); err != nil {
				return page, fmt.Errorf("statement of %s: damaged chunk %s: %w", id, kv.Key, err)
			}
			if err := below(list); err != nil {
				return page, err
			}
		}
	}
	events, err := l.eventsAt(ctx, refs)
	if err != nil {
		return page, fmt.Errorf("statement of %s: %w", id, err)
	}
	for _, e := range events {
		if len(page.Entries) == limit {
			page.Next = e.TS + 1
			break
		}
		if e.Account != id {
			// Money received: the payer's balance and request are theirs.
			e.Balance, e.Client, e.ReqID, e.ClientTS, e.RecvTS, e.ReplyTS, e.Seen = 0, "", "", 0, 0, 0, nil
		}
		page.Entries = append(page.Entries, e)
	}
	return page, nil
}

// eventsAt reads the events refs name, in their order, reading each
// segment once, in one round trip (linearizable: a page must not miss a
// segment committed before the record that names it).
func (l *Ledger) eventsAt(ctx context.Context, refs []ref) ([]bank.Event, error) {
	var gets []clientv3.Op
	var keys []string
	for _, r := range refs {
		k := l.segmentKey(r.proc, r.seg)
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
			gets = append(gets, clientv3.OpGet(k))
		}
	}
	if len(gets) == 0 {
		return nil, nil
	}
	resp, err := l.cli.Txn(ctx).Then(gets...).Commit()
	if err != nil {
		return nil, l.unavailable(ctx, err)
	}
	raw := map[string][]byte{}
	for i, rr := range resp.Responses {
		kvs := rr.GetResponseRange().Kvs
		if len(kvs) == 0 {
			return nil, fmt.Errorf("the segment %s of an entry is missing (damaged log)", keys[i])
		}
		raw[keys[i]] = kvs[0].Value
	}
	out := make([]bank.Event, 0, len(refs))
	for _, r := range refs {
		k := l.segmentKey(r.proc, r.seg)
		e, err := eventIn(k, raw[k], r.ts)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// idKeys returns the key of account id to prefetch, if id is valid.
func (l *Ledger) idKeys(id string) []string {
	if !money.ValidAccountID(id) {
		return nil
	}
	return []string{l.accountKey(id)}
}

// entryChunk is how many statement entries, and request ids, an account
// record holds before they move to a chunk of their own.
const entryChunk = 16

// putEntry adds the event e, just put, to the statement of account a: to
// its record, whose full list of entries moves to a chunk.
func (l *Ledger) putEntry(t *tx, a *record, e bank.Event) error {
	a.Entries = append(a.Entries, t.refOf(e))
	if len(a.Entries) < entryChunk {
		return nil
	}
	oldest, err := parseRef(a.Entries[0])
	if err != nil {
		return err
	}
	if err := t.putJSON(l.stmtKey(a.ID, oldest.ts), a.Entries); err != nil {
		return err
	}
	a.Entries = nil
	return nil
}

func (l *Ledger) money(ctx context.Context, o *moneyOp) (bank.Receipt, error) {
	var rec bank.Receipt
	var opErr error
	validReq := o.m.ReqID != "" && len(o.m.ReqID) <= 128 && !strings.Contains(o.m.ReqID, "\x00")
	keys := l.idKeys(o.id)
	if len(keys) > 0 {
		switch {
		case o.kind == bank.KindTransfer:
			keys = append(keys, l.idKeys(o.to)...)
		case o.kind == bank.KindDeposit || o.kind == bank.KindWithdraw:
			keys = append(keys, l.totalsKey())
		}
	}
	var more func(map[string]preKV) []string
	if validReq && len(keys) > 0 {
		more = func(pre map[string]preKV) []string { return l.moreKeys(pre, o.id, o.m.ReqID) }
	}
	err := l.runMore(ctx, string(o.kind), keys, more, func(t *tx) error {
		rec, opErr = bank.Receipt{}, nil
		now := l.opts.Now()
		a, err := t.account(o.id)
		if err != nil {
			return err
		}
		if a != nil && validReq {
			first, ok, err := l.findRequest(t, a, o.m.ReqID)
			if err != nil {
				return fmt.Errorf("request %s of %s: %w", o.m.ReqID, o.id, err)
			}
			if ok {
				rec, opErr, err = l.retry(t, o, a, first, now)
				return err
			}
		}
		var to *record
		if o.kind == bank.KindTransfer && o.to != o.id {
			if to, err = t.account(o.to); err != nil {
				return err
			}
		}
		l.receive(a)
		l.receive(to)
		e := l.newEvent(o.kind, o.m, o.id, o.to, o.amount, now)
		opErr, err = l.moveMoney(t, o, a, to, &e)
		if err != nil {
			return err
		}
		l.finish(&e, opErr)
		if err := t.putEvent(e); err != nil {
			return err
		}
		if opErr == nil {
			if err := l.putEntry(t, a, e); err != nil {
				return err
			}
			if to != nil {
				if err := l.putEntry(t, to, e); err != nil {
					return err
				}
			}
		}
		if a != nil {
			a.Last = e.TS
			if validReq {
				if err := l.remember(t, a, o.m.ReqID, e); err != nil {
					return err
				}
			}
			if err := t.putAccount(a); err != nil {
				return err
			}
		}
		if to != nil {
			to.Last = e.TS
			if err := t.putAccount(to); err != nil {
				return err
			}
		}
		rec = bank.Receipt{Event: e, ReplyTS: e.ReplyTS}
		return nil
	})
	if err != nil {
		return bank.Receipt{}, err
	}
	return rec, opErr
}

// retry answers a repeated request id from its first outcome, logging a
// retry event; nothing is applied again.
func (l *Ledger) retry(t *tx, o *moneyOp, a *record, first bank.Event, now time.Time) (bank.Receipt, error, error) {
	l.receive(a)
	e := l.newEvent(bank.KindRetry, o.m, o.id, o.to, o.amount, now)
	e.OrigTS = first.TS
	var rec bank.Receipt
	var opErr error
	if first.Kind != o.kind || first.Amount != o.amount || first.To != o.to {
		opErr = outcome.WithMessage(outcome.ErrRequestIDReused, fmt.Sprintf(
			"request id %s was already used for %s; use a new id for a new request", o.m.ReqID, describeRequest(first)))
		l.finish(&e, opErr)
		rec = bank.Receipt{Event: e, ReplyTS: e.ReplyTS}
	} else {
		e.Balance = first.Balance
		e.Detail = "repeated " + string(first.Kind) + ": first outcome " + first.Outcome
		l.finish(&e, nil)
		rec = bank.Receipt{Event: first, Duplicate: true, ReplyTS: e.ReplyTS}
		opErr = outcome.FromCode(first.Outcome)
	}
	return rec, opErr, t.putEventOn(e, a)
}

func describeRequest(e bank.Event) string {
	switch e.Kind {
	case bank.KindDeposit:
		return "a deposit of " + e.Amount.String()
	case bank.KindWithdraw:
		return "a withdrawal of " + e.Amount.String()
	case bank.KindTransfer:
		return "a transfer of " + e.Amount.String() + " to " + e.To
	}
	return "a " + string(e.Kind)
}

func (l *Ledger) checkAmount(a money.Cents) error {
	if a <= 0 {
		return fmt.Errorf("%w: must be positive, got %d cents", outcome.ErrInvalidAmount, a)
	}
	if a > l.opts.MaxAmount {
		return fmt.Errorf("%w: %s is above %s", outcome.ErrLimitExceeded, a, l.opts.MaxAmount)
	}
	return nil
}

// moveMoney validates and applies a money operation to the records read,
// filling the balances into e; the first result is the operation's
// refusal, the second a failure to read. Nothing changes unless all checks
// pass.
func (l *Ledger) moveMoney(t *tx, o *moneyOp, a, to *record, e *bank.Event) (error, error) {
	if o.m.ReqID == "" || len(o.m.ReqID) > 128 {
		return fmt.Errorf("%w: a mutating operation needs a request id of 1 to 128 bytes", outcome.ErrInvalidRequestID), nil
	}
	if a == nil {
		return notFound(o.id), nil
	}
	e.Balance = a.Balance
	if o.amount <= 0 || !o.opening {
		if err := l.checkAmount(o.amount); err != nil {
			return err, nil
		}
	}
	switch o.kind {
	case bank.KindDeposit, bank.KindWithdraw:
		tot, err := t.totals()
		if err != nil {
			return nil, err
		}
		if o.kind == bank.KindDeposit {
			nb, err := addCents(a.Balance, o.amount)
			if err != nil {
				return err, nil
			}
			d, err := addCents(tot.Deposits, o.amount)
			if err != nil {
				return err, nil
			}
			a.Balance, tot.Deposits = nb, d
		} else {
			if a.Balance < o.amount {
				return fmt.Errorf("%w: balance is %s", outcome.ErrInsufficientFunds, a.Balance), nil
			}
			w, err := addCents(tot.Withdrawals, o.amount)
			if err != nil {
				return err, nil
			}
			a.Balance, tot.Withdrawals = a.Balance-o.amount, w
		}
		if err := t.putJSON(l.totalsKey(), tot); err != nil {
			return nil, err
		}
	case bank.KindTransfer:
		if o.to == o.id {
			return outcome.ErrSameAccount, nil
		}
		if to == nil {
			return notFound(o.to), nil
		}
		if a.Balance < o.amount {
			return fmt.Errorf("%w: balance is %s", outcome.ErrInsufficientFunds, a.Balance), nil
		}
		nb, err := addCents(to.Balance, o.amount)
		if err != nil {
			return err, nil
		}
		a.Balance -= o.amount
		to.Balance = nb
		e.ToBalance = to.Balance
		e.Detail = to.Name
	}
	e.Balance = a.Balance
	return nil, nil
}

func addCents(a, b money.Cents) (money.Cents, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, outcome.ErrOverflow
	}
	return s, nil
}

// CreateAccount opens a new account with balance zero on the bank's own
// behalf (the command line, the default accounts).
func (l *Ledger) CreateAccount(ctx context.Context, id, name, pin string) (bank.Account, error) {
	r, err := l.OpenAccount(ctx, bank.Meta{Client: l.opts.ProcessID}, id, name, pin)
	if err != nil {
		return bank.Account{}, err
	}
	return bank.Account{ID: id, Name: r.Holder, Created: r.Event.Wall}, nil
}

// OpenAccount opens a new account with balance zero for a request. The
// attempt is logged whatever its outcome; Receipt.Holder is the name as
// stored (trimmed).
func (l *Ledger) OpenAccount(ctx context.Context, m bank.Meta, id, name, pin string) (bank.Receipt, error) {
	name = strings.TrimSpace(name)
	var refusal error
	var hash []byte
	switch {
	case !money.ValidAccountID(id):
		refusal = fmt.Errorf("%q: %w", id, outcome.ErrInvalidAccountID)
	case name == "":
		refusal = fmt.Errorf("%w: it is empty; use 1 to 80 characters on one line", outcome.ErrInvalidName)
	case !utf8.ValidString(name) || strings.ContainsAny(name, "\n\r\t"):
		refusal = fmt.Errorf("%w: it is not one line of text; use 1 to 80 characters on one line", outcome.ErrInvalidName)
	case utf8.RuneCountInString(name) > 80:
		refusal = fmt.Errorf("%w: holder name of %d characters: use 1 to 80 characters on one line",
			outcome.ErrInvalidName, utf8.RuneCountInString(name))
	case !money.Digits(pin, 4, 12):
		refusal = outcome.ErrInvalidPIN
	default:
		var err error
		if hash, err = bcrypt.GenerateFromPassword([]byte(pin), l.opts.PINCost); err != nil {
			return bank.Receipt{}, fmt.Errorf("hash PIN: %w", err)
		}
	}
	var rec bank.Receipt
	var opErr error
	err := l.run(ctx, "open", l.idKeys(id), func(t *tx) error {
		rec, opErr = bank.Receipt{}, refusal
		now := l.opts.Now()
		existing, err := t.account(id)
		if err != nil {
			return err
		}
		if opErr == nil && existing != nil {
			opErr = fmt.Errorf("account %s: %w", id, outcome.ErrAccountExists)
		}
		l.receive(existing)
		e := l.newEvent(bank.KindOpen, m, id, "", 0, now)
		if opErr != nil {
			l.finish(&e, opErr)
			if existing != nil {
				existing.Last = e.TS
				if err := t.putAccount(existing); err != nil {
					return err
				}
			}
			rec = bank.Receipt{Event: e, ReplyTS: e.ReplyTS}
			return t.putEvent(e)
		}
		e.Detail = name
		l.finish(&e, nil)
		if err := t.putEvent(e); err != nil {
			return err
		}
		a := &record{Account: bank.Account{ID: id, Name: name, PINHash: hash, Created: now}, Last: e.TS}
		if err := l.putEntry(t, a, e); err != nil {
			return err
		}
		rec = bank.Receipt{Event: e, ReplyTS: e.ReplyTS, Holder: name}
		return t.putAccount(a)
	})
	if err != nil {
		return bank.Receipt{}, err
	}
	return rec, opErr
}
