package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"atm/bank"
	"atm/bank/money"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// tx is one operation's part of an attempt of an optimistic transaction:
// the keys it read, with the comparisons that make the commit fail if any
// of them changed, and the writes it will commit. Within a batch (see
// batch.go) it sees base, the operations computed before it in the same
// batch, as if they had committed already.
type tx struct {
	l      *store
	ctx    context.Context
	base   *tx               // the batch so far, or nil
	pre    map[string]preKV  // the attempt's prefetched keys, or nil
	local  bool              // read the member's copy (see commitBatch)
	read   map[string]readKV // keys read from etcd (or the prefetch) by this tx
	cmps   []clientv3.Cmp
	writes map[string]write
	order  []string // the keys of writes in the order first written
	maxTS  uint64
	events []bank.Event
	segSum bank.Hash // the hash of the batch's segment, once put

	checkpoint *checkpointRead // what a checkpoint read (see Balances)
}

type readKV struct {
	val []byte
	ok  bool
}

// preKV is a prefetched key with its ModRevision (0 when missing).
type preKV struct {
	readKV
	rev int64
}

// write is a pending put, or a delete.
type write struct {
	val []byte
	del bool
}

func newTx(l *store, ctx context.Context) *tx {
	return &tx{l: l, ctx: ctx, read: map[string]readKV{}}
}

// get reads key once per attempt and makes the commit depend on it being
// unchanged (a missing key must still be missing). A key written earlier
// in the attempt reads as written, and a key the batch already read is not
// read again.
func (t *tx) get(key string) ([]byte, bool, error) {
	if w, ok := t.writes[key]; ok {
		return w.val, !w.del, nil
	}
	if b := t.base; b != nil {
		if w, ok := b.writes[key]; ok {
			return w.val, !w.del, nil
		}
		if r, ok := b.read[key]; ok {
			return r.val, r.ok, nil
		}
	}
	if r, ok := t.read[key]; ok {
		return r.val, r.ok, nil
	}
	var r readKV
	var rev int64
	if p, ok := t.pre[key]; ok {
		r, rev = p.readKV, p.rev
	} else {
		t.l.com.lateReads.Add(1)
		ctx, cancel := context.WithTimeout(t.ctx, t.l.opts.CommitTimeout)
		defer cancel()
		var opts []clientv3.OpOption
		if t.local {
			opts = append(opts, clientv3.WithSerializable())
		}
		resp, err := t.l.cli.Get(ctx, key, opts...)
		if err != nil {
			return nil, false, t.l.unavailable(t.ctx, err)
		}
		if len(resp.Kvs) > 0 {
			r = readKV{val: resp.Kvs[0].Value, ok: true}
			rev = resp.Kvs[0].ModRevision
		}
	}
	t.read[key] = r
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
	return r.val, r.ok, nil
}

func (t *tx) setWrite(key string, w write) {
	if t.writes == nil {
		t.writes = map[string]write{}
	}
	if _, ok := t.writes[key]; !ok {
		t.order = append(t.order, key)
	}
	t.writes[key] = w
}

func (t *tx) put(key string, v []byte) { t.setWrite(key, write{val: v}) }

func (t *tx) del(key string) { t.setWrite(key, write{del: true}) }

// merge adds the reads, comparisons, writes and events of c, computed on
// t as its base, to t.
func (t *tx) merge(c *tx) {
	maps.Copy(t.read, c.read)
	t.cmps = append(t.cmps, c.cmps...)
	for _, k := range c.order {
		t.setWrite(k, c.writes[k])
	}
	t.maxTS = max(t.maxTS, c.maxTS)
	t.events = append(t.events, c.events...)
}

// sizeWith returns the comparisons and the puts and deletes of t's commit
// once c is merged into it.
func (t *tx) sizeWith(c *tx) (cmps, ops int) {
	ops = len(t.order)
	for _, k := range c.order {
		if _, ok := t.writes[k]; !ok {
			ops++
		}
	}
	cmps = len(t.cmps) + len(c.cmps)
	if len(t.events)+len(c.events) > 0 { // the segment
		cmps, ops = cmps+1, ops+1
	}
	return cmps, ops
}

// putSegment adds to the writes of a batch its events, as one segment of
// the log chained to the server's last one (see chain.go), written only
// if its key is new.
func (t *tx) putSegment() error {
	if len(t.events) == 0 {
		return nil
	}
	key := t.l.segmentKey(t.l.opts.ProcessID, t.events[0].TS)
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.Version(key), "=", 0))
	raw, err := json.Marshal(t.events)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	var val []byte
	val, t.segSum = encodeSegment(t.l.com.chain.head, raw)
	t.put(key, val)
	return nil
}

// thenOps returns t's writes, one per key: etcd refuses a transaction that
// writes a key twice.
func (t *tx) thenOps() []clientv3.Op {
	ops := make([]clientv3.Op, 0, len(t.order))
	for _, k := range t.order {
		if w := t.writes[k]; w.del {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(w.val)))
		}
	}
	return ops
}

func (t *tx) putJSON(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	t.put(key, raw)
	return nil
}

// putEvent appends e to the log: to the segment the batch commits, which
// is written only if its key is new (see commitBatch).
func (t *tx) putEvent(e bank.Event) error {
	t.maxTS = max(t.maxTS, e.TS, e.ReplyTS)
	t.events = append(t.events, e)
	return nil
}

// refOf returns the reference of an event t has put: the segment it will
// be committed in is the batch's, named by the batch's first event.
func (t *tx) refOf(e bank.Event) string {
	seg := e.TS
	if t.base != nil && len(t.base.events) > 0 {
		seg = t.base.events[0].TS
	} else if len(t.events) > 0 {
		seg = t.events[0].TS
	}
	return fmt.Sprintf("%d/%d/%s", e.TS, e.TS-seg, e.Proc)
}

// record is an account as stored: bank's account, its balance included,
// with the timestamp of its last event, its newest statement entries
// (references, oldest first), and the newest requests it remembers
// (oldest first) with the count of the chunks of older ones (see
// requests.go).
type record struct {
	bank.Account
	Last      uint64     `json:"last"`
	Entries   []string   `json:"entries,omitempty"`
	Reqs      []reqEntry `json:"reqs,omitempty"`
	ReqChunks uint64     `json:"req_chunks,omitempty"`
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
	r, err := t.l.com.records.decode(raw)
	if err != nil {
		return nil, bank.Damaged(fmt.Errorf("account %s: damaged record: %w", id, err))
	}
	return r, nil
}

func (t *tx) putAccount(r *record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode account %s: %w", r.ID, err)
	}
	t.put(t.l.accountKey(r.ID), raw)
	t.l.com.records.keep(raw, r)
	return nil
}

func (t *tx) totals() (bank.Totals, error) {
	var tot bank.Totals
	raw, ok, err := t.get(t.l.totalsKey())
	if err != nil || !ok {
		return tot, err
	}
	if err := json.Unmarshal(raw, &tot); err != nil {
		return tot, fmt.Errorf("totals: damaged record: %w", err)
	}
	return tot, nil
}

// receive makes the clock receive the account's last timestamp, so that
// the next tick is above it.
func (l *store) receive(r *record) {
	if r != nil {
		l.clock.Receive(r.Last)
	}
}
