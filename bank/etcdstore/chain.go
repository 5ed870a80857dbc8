package etcdstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"atm/bank"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The chain. Each server's segments form a chain of their own (see
// package bank): a segment's value is
//
//	{"prev":"<hash>","hash":"<hash>","events":[...]}
//
// exactly so, with no space, each hash 64 lowercase hexadecimal digits:
// prev is the hash of the server's segment before it (zero for its
// first), and hash is SHA-256(prev || the events' JSON array, byte for
// byte as stored). So every byte of the value is covered: the frame is
// checked to the byte, the hashes are checked against their text, and
// the events against the hash. A void segment ("[]", written by settle
// at the key of a transaction that never committed) holds no events and
// is not on the chain: the segment after it is chained to the one before
// it. A segment of layout 2 is a bare JSON array, without a hash: a
// server's chain starts at its first segment that has one.

// The frame of a chained segment, around its two hashes and its events.
const (
	segOpen   = `{"prev":"`
	segMiddle = `","hash":"`
	segEvents = `","events":`
	segClose  = `}`
	hexLen    = 2 * len(bank.Hash{})
)

// encodeSegment returns the value of a segment whose events' JSON array
// is events, chained after prev, and its hash.
func encodeSegment(prev bank.Hash, events []byte) ([]byte, bank.Hash) {
	sum := bank.ChainSum(prev, events)
	v := make([]byte, 0, len(segOpen)+len(segMiddle)+len(segEvents)+len(segClose)+2*hexLen+len(events))
	v = append(v, segOpen...)
	v = append(v, prev.String()...)
	v = append(v, segMiddle...)
	v = append(v, sum.String()...)
	v = append(v, segEvents...)
	v = append(v, events...)
	v = append(v, segClose...)
	return v, sum
}

// segment is a segment's value read: its events' JSON array and, when
// chained, its two hashes.
type segment struct {
	events     []byte
	chained    bool
	prev, hash bank.Hash
}

// errFrame is a chained segment's value that is not exactly its frame.
var errFrame = errors.New(`not {"prev":"<hash>","hash":"<hash>","events":[...]} to the byte`)

// decodeSegment reads a segment's value: a chained one, or a bare array of
// layout 2 (a void segment is one). The events are not decoded.
func decodeSegment(raw []byte) (segment, error) {
	if len(raw) > 0 && raw[0] == '[' {
		return segment{events: raw}, nil
	}
	s := segment{chained: true}
	rest, ok := bytes.CutPrefix(raw, []byte(segOpen))
	var prev, hash []byte
	if ok && len(rest) >= hexLen {
		prev, rest = rest[:hexLen], rest[hexLen:]
		rest, ok = bytes.CutPrefix(rest, []byte(segMiddle))
	} else {
		ok = false
	}
	if ok && len(rest) >= hexLen {
		hash, rest = rest[:hexLen], rest[hexLen:]
		rest, ok = bytes.CutPrefix(rest, []byte(segEvents))
	} else {
		ok = false
	}
	if ok {
		s.events, ok = bytes.CutSuffix(rest, []byte(segClose))
	}
	if !ok || len(s.events) == 0 || s.events[0] != '[' {
		return s, errFrame
	}
	var err error
	if s.prev, err = bank.ParseHash(string(prev)); err != nil {
		return s, fmt.Errorf("its prev: %w", err)
	}
	if s.hash, err = bank.ParseHash(string(hash)); err != nil {
		return s, fmt.Errorf("its hash: %w", err)
	}
	return s, nil
}

// segName names a segment in a message: its server and its first event's
// timestamp, and its key.
func segName(key, proc string, ts uint64) string {
	return fmt.Sprintf("segment L=%d/%s (%s)", ts, proc, key)
}

// link returns the segment as a link of its server's chain.
func (s segment) link(key, proc string, ts uint64) bank.Link {
	k := bank.Link{Chain: proc, Name: segName(key, proc, ts), Hashed: s.chained}
	if s.chained {
		k.Body, k.Hash = s.events, s.hash
		prev := s.prev
		k.Prev = &prev
	}
	return k
}

// ownChain is this server's chain as its committer knows it: the head
// its next segment is chained to, and the head it would have if the
// transaction whose outcome is unsettled committed (see settle).
type ownChain struct {
	head, pending bank.Hash
	ts, pendingTS uint64 // their last events' timestamps
}

// segmentHead returns a segment's head: its hash (zero when it has none)
// and its last event's timestamp.
func segmentHead(key string, raw []byte) (bank.ChainHead, error) {
	s, err := decodeSegment(raw)
	if err != nil {
		return bank.ChainHead{}, fmt.Errorf("segment %s: damaged record: %w", key, err)
	}
	var events []struct {
		TS uint64 `json:"ts"`
	}
	if err := json.Unmarshal(s.events, &events); err != nil || len(events) == 0 {
		return bank.ChainHead{}, fmt.Errorf("segment %s: damaged record: %v", key, err)
	}
	h := bank.ChainHead{TS: events[len(events)-1].TS}
	if s.chained {
		h.Hash = s.hash
	}
	return h, nil
}

// headOf reads where proc's chain stands at revision rev (0: now): its
// last segment that is not void.
func (l *store) headOf(ctx context.Context, proc string, rev int64) (bank.ChainHead, error) {
	prefix := l.k("log/" + proc + "/")
	end := clientv3.GetPrefixRangeEnd(prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(16)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
		resp, err := l.cli.Get(cctx, prefix, opts...)
		cancel()
		if err != nil {
			return bank.ChainHead{}, l.unavailable(ctx, err)
		}
		for _, kv := range resp.Kvs {
			if string(kv.Value) == voidSegment {
				continue
			}
			h, err := segmentHead(string(kv.Key), kv.Value)
			if err != nil {
				return h, bank.Damaged(err)
			}
			h.Chain = proc
			return h, nil
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return l.archivedHead(ctx, proc, rev)
		}
		end = string(resp.Kvs[len(resp.Kvs)-1].Key)
	}
}

// archivedHead returns where proc's chain stands at revision rev when
// none of its segments is live: at its last archived one (see archive.go),
// or at its start.
func (l *store) archivedHead(ctx context.Context, proc string, rev int64) (bank.ChainHead, error) {
	marks, _, err := l.marks(ctx, rev)
	if err != nil {
		return bank.ChainHead{}, err
	}
	h := bank.ChainHead{Chain: proc}
	if m, ok := marks[proc]; ok {
		h.TS = m.Last
		if m.Hash != "" {
			if h.Hash, err = bank.ParseHash(m.Hash); err != nil {
				return h, bank.Damaged(fmt.Errorf("archive mark of %s: %w", proc, err))
			}
		}
	}
	return h, nil
}

// checkpointKey is the key of the state of the checkpoint at (ts, proc).
func (l *store) checkpointKey(ts uint64, proc string) string {
	return l.k(fmt.Sprintf("checkpoints/%020d/%s", ts, proc))
}

// LastCheckpoint reads the newest checkpoint, the last one committed:
// its state, and its event, the first of the segment its key names.
func (l *store) LastCheckpoint(ctx context.Context) (*bank.StoredCheckpoint, error) {
	cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	defer cancel()
	resp, err := l.cli.Get(cctx, l.k("checkpoints/"), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return nil, l.unavailable(ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	key := string(resp.Kvs[0].Key)
	tsText, proc, _ := strings.Cut(strings.TrimPrefix(key, l.k("checkpoints/")), "/")
	ts, err := strconv.ParseUint(tsText, 10, 64)
	if err != nil || key != l.checkpointKey(ts, proc) {
		return nil, fmt.Errorf("checkpoint key %s: not checkpoints/<ts, 20 digits>/<proc> (damaged)", key)
	}
	where := fmt.Sprintf("checkpoint L=%d/%s", ts, proc)
	seg := l.segmentKey(proc, ts)
	got, err := l.cli.Get(cctx, seg)
	if err != nil {
		return nil, l.unavailable(ctx, err)
	}
	if len(got.Kvs) == 0 {
		return nil, fmt.Errorf("%s: its segment %s is not in the log (removed, or the checkpoint's key changed)", where, seg)
	}
	e, err := eventIn(seg, got.Kvs[0].Value, ts)
	if err != nil {
		return nil, fmt.Errorf("%s: its event: %w", where, err)
	}
	return &bank.StoredCheckpoint{State: resp.Kvs[0].Value, Event: e}, nil
}

// CheckpointState reads the state of the checkpoint at (ts, proc).
func (l *store) CheckpointState(ctx context.Context, ts uint64, proc string) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	defer cancel()
	resp, err := l.cli.Get(cctx, l.checkpointKey(ts, proc))
	if err != nil {
		return nil, l.unavailable(ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}

// checkpointRead is what a checkpoint reads, at one revision: every
// account, the totals and the head of every other server's chain.
type checkpointRead struct {
	rev      int64
	accounts []record
	totals   bank.Totals
	heads    []bank.ChainHead
}

// readForCheckpoint reads every account and the totals, then the other
// servers' chain heads, at the revision of the first read.
func (l *store) readForCheckpoint(ctx context.Context) (*checkpointRead, error) {
	cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	resp, err := l.cli.Txn(cctx).Then(
		clientv3.OpGet(l.k("accounts/"), clientv3.WithPrefix()),
		clientv3.OpGet(l.totalsKey()),
	).Commit()
	cancel()
	if err != nil {
		return nil, l.unavailable(ctx, err)
	}
	c := &checkpointRead{rev: resp.Header.Revision}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		if err := json.Unmarshal(kvs[0].Value, &c.totals); err != nil {
			return nil, bank.Damaged(fmt.Errorf("totals: damaged record: %w", err))
		}
	}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var r record
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, bank.Damaged(fmt.Errorf("account %s: damaged record: %w", kv.Key, err))
		}
		c.accounts = append(c.accounts, r)
	}
	procs, err := (&logReader{l: l, ctx: ctx, rev: c.rev}).procs()
	if err != nil {
		return nil, err
	}
	marks, _, err := l.marks(ctx, c.rev)
	if err != nil {
		return nil, err
	}
	for p := range marks { // a server whose every segment was archived
		if !slices.Contains(procs, p) {
			procs = append(procs, p)
		}
	}
	slices.Sort(procs)
	for _, p := range procs {
		if p == l.opts.ProcessID {
			continue
		}
		h, err := l.headOf(ctx, p, c.rev)
		if err != nil {
			return nil, err
		}
		c.heads = append(c.heads, h)
	}
	return c, nil
}

// A checkpoint on etcd records the bank as it was at one revision: every
// account and the totals, and each server's chain head (its last segment
// that is not void), all read at that revision; its event and its state
// commit in this server's next transaction, first of its segment. Its
// state is history, which nothing can change, so its commit compares
// nothing and never conflicts, however busy the other servers are. What
// they commit meanwhile is in segments after their heads: replayed after
// the checkpoint, as it must be, since the state does not hold it. This
// server commits nothing meanwhile (it is computing this batch), so its
// own head is the segment before the checkpoint's.

// Balances reads every account's balance for a checkpoint, with the
// totals and the other servers' chain heads, at one revision (Totals and
// Heads then return those). A checkpoint starts its segment, so it waits
// for the next batch if the batch has events already.
func (t *tx) Balances() ([]bank.Balance, error) {
	if t.base != nil && len(t.base.events) > 0 {
		return nil, errOverlap
	}
	c, err := t.l.readForCheckpoint(t.ctx)
	if err != nil {
		return nil, err
	}
	t.checkpoint = c
	out := make([]bank.Balance, 0, len(c.accounts))
	for i := range c.accounts {
		t.l.receive(&c.accounts[i])
		out = append(out, bank.Balance{ID: c.accounts[i].ID, Balance: c.accounts[i].Balance})
	}
	return out, nil
}

// Heads returns every server's chain head as Balances read them, and
// this server's own as its committer knows it.
func (t *tx) Heads() ([]bank.ChainHead, error) {
	if t.checkpoint == nil {
		if _, err := t.Balances(); err != nil {
			return nil, err
		}
	}
	own := t.l.com.chain
	return append([]bank.ChainHead{{Chain: t.l.opts.ProcessID, TS: own.ts, Hash: own.head}}, t.checkpoint.heads...), nil
}

// PutCheckpoint writes a checkpoint's state under checkpoints/<ts>/<proc>.
func (t *tx) PutCheckpoint(c *bank.Checkpoint, state []byte) error {
	t.put(t.l.checkpointKey(c.TS, c.Proc), state)
	return nil
}
