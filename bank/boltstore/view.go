package boltstore

import (
	"bytes"
	"encoding/json"
	"fmt"

	"atm/bank"
	"atm/bank/money"

	bolt "go.etcd.io/bbolt"
)

// The applier's view of the ledger is the last committed state under an
// overlay: the writes of the batches not yet known to be on disk. Each
// operation's writes go to the open batch and to the overlay; seal hands
// the batch to the writer, and reset, after a failed transaction, forgets
// everything not on disk.

// overlayEntry is a value written by a batch not yet known to be on disk.
type overlayEntry struct {
	val []byte
	seq uint64
}

// overlayView is the applier's view of the ledger: the last committed state (a
// read transaction) under the writes of the batches not yet committed.
type overlayView struct {
	b       *store
	tx      *bolt.Tx // opened lazily; closed before the applier blocks
	overlay map[string]overlayEntry
	marks   map[string][]pendingMark // by account, oldest first
	cur     *batch
	seq     uint64 // of cur
	epoch   uint64
	txSeq   uint64 // batches up to this one are visible in tx

	loaded                bool // totals and the chain's head read from disk
	deposits, withdrawals money.Cents
	dirtyTotals           bool
	head                  bank.Hash // the hash of the newest event applied
	headTS                uint64    // and its timestamp
	buf                   []byte
	recs                  []*record // see record
	nrecs                 int
}

func newOverlayView(b *store) *overlayView {
	v := &overlayView{b: b, overlay: make(map[string]overlayEntry), marks: make(map[string][]pendingMark)}
	v.cur = &batch{seq: 1}
	v.seq = 1
	return v
}

func overlayKey(bucket byte, key []byte) string {
	return string(append([]byte{bucket}, key...))
}

// ensureTx opens a read transaction on the committed state if none is
// open, and forgets overlay entries it already shows.
func (v *overlayView) ensureTx() error {
	if v.tx != nil {
		return nil
	}
	committed := v.b.committedSeq.Load()
	tx, err := v.b.db.Begin(false)
	if err != nil {
		return err
	}
	v.tx = tx
	if committed > v.txSeq {
		v.txSeq = committed
		for k, e := range v.overlay {
			if e.seq <= committed {
				delete(v.overlay, k)
			}
		}
		for id, ms := range v.marks {
			n := 0
			for n < len(ms) && ms[n].seq <= committed {
				n++
			}
			if n == len(ms) {
				delete(v.marks, id)
			} else if n > 0 {
				v.marks[id] = ms[n:]
			}
		}
	}
	if !v.loaded {
		meta := tx.Bucket(bucketMeta)
		d, err := readU64(meta, keyDeposits)
		if err == nil {
			var wd uint64
			wd, err = readU64(meta, keyWithdrawals)
			v.withdrawals = money.Cents(wd)
		}
		if err == nil {
			v.headTS, v.head, err = lastHash(tx)
		}
		if err != nil { // nothing can be applied without the totals
			v.closeTx()
			return err
		}
		v.deposits = money.Cents(d)
		v.loaded = true
	}
	return nil
}

// closeTx ends the read transaction, so that the writer is never kept
// waiting on it (bbolt remaps the file only with no reader open).
func (v *overlayView) closeTx() {
	if v.tx != nil {
		_ = v.tx.Rollback()
		v.tx = nil
	}
}

func (v *overlayView) get(bucket byte, key []byte) []byte {
	if e, ok := v.overlay[overlayKey(bucket, key)]; ok {
		return e.val
	}
	return v.tx.Bucket(bucketNames[bucket]).Get(key)
}

// put records a write in the open batch. val must not change afterwards.
func (v *overlayView) put(bucket byte, key, val []byte) {
	v.cur.writes = append(v.cur.writes, write{bucket, key, val})
	v.overlay[overlayKey(bucket, key)] = overlayEntry{val, v.seq}
}

// seal finishes the open batch with the running totals and opens the next
// one. (The writer stores the clock's lease in each transaction.)
func (v *overlayView) seal() *batch {
	bt := v.cur
	if v.dirtyTotals {
		v.put(bMeta, keyDeposits, u64key(uint64(v.deposits)))
		v.put(bMeta, keyWithdrawals, u64key(uint64(v.withdrawals)))
		v.dirtyTotals = false
	}
	if len(bt.events) > 0 {
		v.put(bMeta, keyChain, bytes.Clone(v.head[:]))
	}
	bt.epoch = v.epoch
	v.seq++
	v.cur = &batch{seq: v.seq, ops: make([]*op, 0, len(bt.ops)), writes: make([]write, 0, len(bt.writes))}
	return bt
}

// reset forgets everything not on disk after a failed transaction, failing
// the operations of the open batch with err.
func (v *overlayView) reset(err error) {
	v.b.fail(v.cur, err)
	v.closeTx()
	clear(v.overlay)
	clear(v.marks)
	v.cur = &batch{seq: v.seq}
	v.dirtyTotals = false
	v.loaded = false
	v.epoch++
	// Rebuild the remembered request ids from the log on disk.
	reqs := newRequests(v.b.opts.RememberRequests)
	if verr := v.b.db.View(func(tx *bolt.Tx) error { return loadRequests(tx, reqs) }); verr == nil {
		v.b.reqs = reqs
	}
}

// The overlay view is the rules' bank.View: an account's record (its PIN
// hash and wrong-PIN counts, as JSON) is read and written only for logins
// and new accounts; money operations and reads touch its state alone.
var _ bank.View = (*overlayView)(nil)

// record is an account as an operation reads it, with its state, in one
// allocation: Record.Store points to s.
type record struct {
	bank.Record
	s acctState
}

// record returns a record for the operation being applied: the view's
// own, reused from one operation to the next (an operation reads at most
// two accounts, and the rules keep none once it is applied).
func (v *overlayView) record(a bank.Account, whole bool, s acctState) *bank.Record {
	if v.nrecs == len(v.recs) {
		v.recs = append(v.recs, &record{})
	}
	r := v.recs[v.nrecs]
	v.nrecs++
	*r = record{Record: bank.Record{Account: a, Whole: whole}, s: s}
	r.Store = &r.s
	return &r.Record
}

// Account reads account id's state.
func (v *overlayView) Account(id string) (*bank.Record, error) {
	raw := v.get(bState, []byte(id))
	if raw == nil {
		return nil, nil
	}
	s, err := decodeState(raw)
	if err != nil {
		return nil, bank.Damaged(fmt.Errorf("account %s: %w", id, err))
	}
	return v.record(bank.Account{ID: id, Name: s.Name, Balance: s.Balance}, false, s), nil
}

// Login reads account id whole: its record and its state.
func (v *overlayView) Login(id string) (*bank.Record, error) {
	raw := v.get(bAccounts, []byte(id))
	if raw == nil {
		return nil, nil
	}
	st := v.get(bState, []byte(id))
	a, err := decodeAccount(id, raw, st, decodeState)
	if err != nil {
		return nil, bank.Damaged(err)
	}
	s, _ := decodeState(st) // decodeAccount checked it
	return v.record(a, true, s), nil
}

// Totals returns the running totals, read with the view's transaction.
func (v *overlayView) Totals() (bank.Totals, error) {
	return bank.Totals{Deposits: v.deposits, Withdrawals: v.withdrawals}, nil
}

// PutTotals changes the running totals; the batch stores them once, when
// it is sealed.
func (v *overlayView) PutTotals(t bank.Totals) error {
	v.deposits, v.withdrawals, v.dirtyTotals = t.Deposits, t.Withdrawals, true
	return nil
}

// Remembered returns the first outcome of request req on account id.
func (v *overlayView) Remembered(id string, _ *bank.Record, req string) (bank.Event, bool, error) {
	ts, ok := v.b.reqs.get(id, req)
	if !ok {
		return bank.Event{}, false, nil
	}
	raw := v.event(ts)
	if raw == nil {
		return bank.Event{}, false, fmt.Errorf("request %s on %s: remembered event missing", req, id)
	}
	e, _, _, err := decodeEvent(ts, raw)
	if err != nil {
		return bank.Event{}, false, err
	}
	return e, true, nil
}

// Remember remembers request req on id in memory: its event, in the log,
// is what a restart remembers it from.
func (v *overlayView) Remember(id string, _ *bank.Record, req string, e bank.Event) error {
	v.b.reqs.add(id, req, e.TS)
	return nil
}

// Statement follows a's chain of entries through the log, from the mark
// nearest its cursor when the cursor is not a page's (see marks.go).
func (v *overlayView) Statement(a *bank.Record, before uint64, limit int) (bank.StatementPage, error) {
	mark := func(before uint64) (uint64, error) { return v.mark(a.ID, before) }
	return statement(v.event, mark, a.ID, stateOf(a).Last, before, limit, v.b.archived.Load())
}

// mark returns the oldest mark of account id at or above before, committed
// or not, 0 when there is none.
func (v *overlayView) mark(id string, before uint64) (uint64, error) {
	ts, err := committedMark(v.tx.Bucket(bucketMarks), id, before)
	if err != nil {
		return 0, err
	}
	// The batches not on disk hold the newest marks (and perhaps some the
	// read transaction already shows).
	for _, m := range v.marks[id] {
		if m.ts >= before {
			if ts == 0 || m.ts < ts {
				ts = m.ts
			}
			break
		}
	}
	return ts, nil
}

// stateOf returns the state read with a; a new account's has none yet.
func stateOf(a *bank.Record) *acctState {
	if s, ok := a.Store.(*acctState); ok {
		return s
	}
	s := &acctState{}
	a.Store = s
	return s
}

// Append stores e, linked into the statement chain of each account it is
// an entry of, and the state (and, when whole, the record) of each account
// changed.
func (v *overlayView) Append(e bank.Event, entry bool, a, to *bank.Record) error {
	var prev [2]uint64 // the entries e links back to: e.Account's, e.To's
	for i, r := range [2]*bank.Record{a, to} {
		if r == nil {
			continue
		}
		s := stateOf(r)
		if entry {
			prev[i], s.Last = s.Last, e.TS
			if s.Count++; s.Count%markEvery == 0 {
				v.putMark(r.ID, e.TS)
			}
		}
		if r.Changed || entry {
			s.Balance, s.Name = r.Balance, r.Name
			v.putState(r.ID, *s)
		}
		if r.Whole && r.Changed {
			if err := v.putAccount(&r.Account); err != nil {
				return err
			}
		}
	}
	v.putEvent(e, prev[0], prev[1])
	return nil
}

// putAccount stores the account record; the balance is stored with the
// state, not here.
func (v *overlayView) putAccount(a *bank.Account) error {
	rec := *a
	rec.Balance = 0
	val, err := json.Marshal(&rec)
	if err != nil {
		return err
	}
	v.put(bAccounts, []byte(a.ID), val)
	return nil
}

func (v *overlayView) putState(id string, s acctState) {
	v.put(bState, []byte(id), appendState(make([]byte, 0, stateSize+len(s.Name)), s))
}

// putMark marks account id's entry at ts. The batch writes it; the view
// keeps it apart, in order, since the overlay cannot be searched by range.
func (v *overlayView) putMark(id string, ts uint64) {
	v.cur.writes = append(v.cur.writes, write{bMarks, markKey(id, ts), []byte{}})
	v.marks[id] = append(v.marks[id], pendingMark{ts, v.seq})
}

// putEvent stores e with its statement links (see appendEvent), chained
// to the event before it: its record ends with its hash.
func (v *overlayView) putEvent(e bank.Event, prevA, prevB uint64) {
	key := u64key(e.TS)
	v.buf = appendEvent(append(v.buf[:0], key...), &e, prevA, prevB)
	v.buf[len(key)] |= eventHashed
	v.head, v.headTS = bank.ChainSum(v.head, v.buf), e.TS
	val := make([]byte, 0, len(v.buf)-len(key)+len(v.head))
	val = append(append(val, v.buf[len(key):]...), v.head[:]...)
	v.put(bEvents, key, val)
	v.cur.events = append(v.cur.events, e)
}

// Balances reads every account's balance: the state bucket under the
// overlay.
func (v *overlayView) Balances() ([]bank.Balance, error) {
	var out []bank.Balance
	add := func(k, raw []byte) error {
		s, err := decodeState(raw)
		if err != nil {
			return bank.Damaged(fmt.Errorf("account %s: %w", k, err))
		}
		out = append(out, bank.Balance{ID: string(k), Balance: s.Balance})
		return nil
	}
	st := v.tx.Bucket(bucketState)
	err := st.ForEach(func(k, raw []byte) error {
		if e, ok := v.overlay[overlayKey(bState, k)]; ok {
			raw = e.val
		}
		return add(k, raw)
	})
	for key, e := range v.overlay { // accounts opened since the last commit
		if err == nil && key[0] == bState && st.Get([]byte(key[1:])) == nil {
			err = add([]byte(key[1:]), e.val)
		}
	}
	return out, err // Checkpoint.Encode sorts them
}

// Heads returns the one chain's head: the newest event applied.
func (v *overlayView) Heads() ([]bank.ChainHead, error) {
	return []bank.ChainHead{{TS: v.headTS, Hash: v.head}}, nil
}

// PutCheckpoint stores a checkpoint's state, keyed by its timestamp.
func (v *overlayView) PutCheckpoint(c *bank.Checkpoint, state []byte) error {
	v.put(bCheckpoints, u64key(c.TS), state)
	return nil
}

func (v *overlayView) event(ts uint64) []byte { return v.get(bEvents, u64key(ts)) }
