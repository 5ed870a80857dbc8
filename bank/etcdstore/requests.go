package etcdstore

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"atm/bank"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The window of remembered requests. An account remembers the ids of its
// money requests with a reference to each one's first event: the newest
// ones (fewer than a chunk's worth) in its record, the older ones in
// chunks, reqids/<account>/<n>, written whole once and deleted once they
// fall out of the window, both in transactions that also write the
// account's record. So whoever holds the record, compared at commit, knows
// which chunks exist, and a chunk read once (or written by this server) is
// good for as long as it exists.

// reqEntry is a remembered request: its id and its first event's
// reference.
type reqEntry struct {
	ID  string `json:"id"`
	Ref string `json:"ref"`
}

// reqWindow returns how many requests a chunk holds, and how many chunks
// an account keeps: at least RememberRequests requests in all.
func (l *store) reqWindow() (per, chunks uint64) {
	n := uint64(l.opts.RememberRequests)
	per = min(entryChunk, n)
	return per, (n + per - 1) / per
}

// window returns the numbers of the chunks of requests account a keeps:
// [lo, hi).
func (l *store) window(a *record) (lo, hi uint64) {
	_, chunks := l.reqWindow()
	hi = a.ReqChunks
	if hi > chunks {
		lo = hi - chunks
	}
	return lo, hi
}

// remember records the request's first event e in account a's window; a
// full list moves to a chunk, and the chunk that falls out of the window
// is deleted.
func (l *store) remember(t *tx, a *record, req string, e bank.Event) error {
	a.Reqs = append(a.Reqs, reqEntry{ID: req, Ref: t.refOf(e)})
	per, chunks := l.reqWindow()
	if uint64(len(a.Reqs)) < per {
		return nil
	}
	if err := t.putJSON(l.reqChunkKey(a.ID, a.ReqChunks), a.Reqs); err != nil {
		return err
	}
	a.Reqs = nil
	a.ReqChunks++
	if a.ReqChunks > chunks {
		t.del(l.reqChunkKey(a.ID, a.ReqChunks-1-chunks))
	}
	return nil
}

// lookup finds req among entries, newest first.
func lookup(entries []reqEntry, req string) (string, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].ID == req {
			return entries[i].Ref, true
		}
	}
	return "", false
}

// findRequest returns the first event of request req if account a (as
// read by t) remembers it.
func (l *store) findRequest(t *tx, a *record, req string) (bank.Event, bool, error) {
	lo, hi := l.window(a)
	at, ok, missing := l.com.window.find(a, lo, hi, req)
	for _, n := range missing {
		if ok {
			break
		}
		key := l.reqChunkKey(a.ID, n)
		var entries []reqEntry
		written := false
		for _, x := range []*tx{t, t.base} {
			if w, in := x.writesOf(key); in { // not committed yet: not indexed
				written = true
				if !w.del {
					if err := json.Unmarshal(w.val, &entries); err != nil {
						return bank.Event{}, false, fmt.Errorf("request ids %s: %w", key, err)
					}
				}
				break
			}
		}
		if !written {
			raw, found, err := t.getFixed(key)
			if err != nil {
				return bank.Event{}, false, err
			}
			if !found {
				continue // a record read before the chunk was forgotten: the commit fails
			}
			if err := json.Unmarshal(raw, &entries); err != nil {
				return bank.Event{}, false, fmt.Errorf("request ids %s: damaged record: %w", key, err)
			}
			l.com.window.add(a, n, entries, lo)
		}
		at, ok = lookup(entries, req)
	}
	if !ok {
		return bank.Event{}, false, nil
	}
	r, err := parseRef(at)
	if err != nil {
		return bank.Event{}, false, err
	}
	if e, ok := t.pendingEvent(r.proc, r.ts); ok {
		return e, true, nil // put earlier in this batch: its segment is not written yet
	}
	key := l.segmentKey(r.proc, r.seg)
	raw, found, err := t.getFixed(key)
	if err != nil {
		return bank.Event{}, false, err
	}
	if !found {
		marks, _, err := l.marks(t.ctx, 0)
		if err != nil {
			return bank.Event{}, false, err
		}
		if archivedAt(marks, r.proc, r.seg) {
			return bank.Event{}, false, fmt.Errorf("%w (its first event, L=%d/%s, was archived)", ErrRequestArchived, r.ts, r.proc)
		}
		return bank.Event{}, false, fmt.Errorf("the segment %s of a remembered request is missing (damaged log)", key)
	}
	e, err := eventIn(key, raw, r.ts)
	return e, true, err
}

// pendingEvent returns the event at ts of process proc if t, or the batch
// before it, has put it: an event of the segment the batch will commit.
func (t *tx) pendingEvent(proc string, ts uint64) (bank.Event, bool) {
	if proc != t.l.opts.ProcessID {
		return bank.Event{}, false
	}
	for _, x := range []*tx{t, t.base} {
		if x == nil {
			continue
		}
		for _, e := range x.events {
			if e.TS == ts {
				return e, true
			}
		}
	}
	return bank.Event{}, false
}

// writesOf returns t's pending write of key, if any (t may be nil).
func (t *tx) writesOf(key string) (write, bool) {
	if t == nil {
		return write{}, false
	}
	w, ok := t.writes[key]
	return w, ok
}

// moreKeys returns the keys a money request on account id will read
// beyond those it announced, given the keys read so far: the chunks of its
// window neither indexed nor read yet, then the segment of the first event
// of a repeated request. Read with the batch, they cost no round trip of
// their own.
func (l *store) moreKeys(pre map[string]preKV, id, req string) []string {
	p := pre[l.accountKey(id)]
	if !p.ok {
		return nil
	}
	a, err := l.com.records.decode(p.val)
	if err != nil {
		return nil // the operation reports the damage
	}
	lo, hi := l.window(a)
	at, ok, missing := l.com.window.find(a, lo, hi, req)
	var keys []string
	for _, n := range missing {
		if ok {
			break
		}
		key := l.reqChunkKey(id, n)
		v, read := pre[key]
		if !read {
			keys = append(keys, key)
			continue
		}
		if !v.ok {
			continue
		}
		var entries []reqEntry
		if json.Unmarshal(v.val, &entries) != nil {
			return nil
		}
		l.com.window.add(a, n, entries, lo)
		at, ok = lookup(entries, req)
	}
	if !ok {
		return keys
	}
	r, err := parseRef(at)
	if err != nil {
		return nil
	}
	return []string{l.segmentKey(r.proc, r.seg)}
}

// getFixed reads a key that never changes once written (a segment of the
// log, a chunk of request ids): from the attempt or the prefetch, or else
// through the quorum (the prefetch reads these keys through the quorum
// too), without a comparison of its own. A key that should exist but is
// missing is compared as existing, so that the commit fails and the next
// attempt reads afresh.
func (t *tx) getFixed(key string) ([]byte, bool, error) {
	if w, ok := t.writes[key]; ok {
		return w.val, !w.del, nil
	}
	if b := t.base; b != nil {
		if w, ok := b.writes[key]; ok {
			return w.val, !w.del, nil
		}
		if r, ok := b.read[key]; ok && r.ok {
			return r.val, true, nil
		}
	}
	if r, ok := t.read[key]; ok && r.ok {
		return r.val, true, nil
	}
	p, ok := t.pre[key]
	if !ok {
		t.l.com.lateReads.Add(1)
		if err := t.l.readInto(t.pre, map[string]preKV{}, []string{key}, false); err != nil {
			return nil, false, t.l.unavailable(t.ctx, err)
		}
		p = t.pre[key]
	}
	if !p.ok {
		t.cmps = append(t.cmps, clientv3.Compare(clientv3.Version(key), ">", 0))
		return nil, false, nil
	}
	t.read[key] = p.readKV
	return p.val, true, nil
}

// maxIndexed bounds the accounts the window index holds.
const maxIndexed = 1 << 12

// windowIndex holds the chunks of requests this server read from the
// store, by account, with their ids gathered for one lookup: a chunk never
// changes once written, and its number is never reused.
type windowIndex struct {
	mu sync.Mutex
	m  map[string]*acctWindow
}

// acctWindow is what the index holds of one account.
type acctWindow struct {
	created time.Time // the account's: a bank made anew starts afresh
	chunks  map[uint64][]reqEntry
	ids     map[string]idAt // the ids of chunks, each in its newest chunk
}

type idAt struct {
	ref string
	n   uint64
}

// find looks req up in account a's newest requests, then in the indexed
// chunks of [lo, hi); missing lists the chunks of [lo, hi) not indexed,
// newest first, when req was not found.
func (w *windowIndex) find(a *record, lo, hi uint64, req string) (string, bool, []uint64) {
	if ref, ok := lookup(a.Reqs, req); ok {
		return ref, true, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	aw := w.m[a.ID]
	if aw != nil && !aw.created.Equal(a.Created) {
		aw = nil
	}
	if aw != nil {
		if at, ok := aw.ids[req]; ok && lo <= at.n && at.n < hi {
			return at.ref, true, nil
		}
	}
	var missing []uint64
	for n := hi; n > lo; n-- {
		if aw == nil || aw.chunks[n-1] == nil {
			missing = append(missing, n-1)
		}
	}
	return "", false, missing
}

// add indexes chunk n of account a, and forgets its chunks below lo.
func (w *windowIndex) add(a *record, n uint64, entries []reqEntry, lo uint64) {
	if n < lo {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]*acctWindow{}
	}
	aw := w.m[a.ID]
	if aw == nil || !aw.created.Equal(a.Created) {
		makeRoom(w.m, maxIndexed)
		aw = &acctWindow{created: a.Created, chunks: map[uint64][]reqEntry{}, ids: map[string]idAt{}}
		w.m[a.ID] = aw
	}
	for old, es := range aw.chunks {
		if old < lo {
			for _, e := range es {
				if aw.ids[e.ID].n == old {
					delete(aw.ids, e.ID)
				}
			}
			delete(aw.chunks, old)
		}
	}
	if aw.chunks[n] != nil {
		return
	}
	aw.chunks[n] = entries
	for _, e := range entries {
		if at, ok := aw.ids[e.ID]; !ok || at.n < n {
			aw.ids[e.ID] = idAt{ref: e.Ref, n: n}
		}
	}
}
