package etcdstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"atm/bank"
	"atm/bank/money"

	clientv3 "go.etcd.io/etcd/client/v3"
)

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
	framed, err := decodeSegment(raw)
	var seg []json.RawMessage
	if err == nil {
		err = json.Unmarshal(framed.events, &seg)
	}
	if err != nil {
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

// statement reads a page of the account's entries: the newest from its
// record a, then chunks of older ones, then the events they name, from
// the segments of the log. The commit depends on the account's record,
// which every entry changes, and chunks and segments never change once
// written, so the page is the one of the state read.
func (l *store) statement(t *tx, a *record, before uint64, limit int) (bank.StatementPage, error) {
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
		if !page.Add(e, id, limit) {
			break
		}
	}
	return page, nil
}

// eventsAt reads the events refs name, in their order, reading each
// segment once, in one round trip (linearizable: a page must not miss a
// segment committed before the record that names it). The events end
// before the first one archived (see archive.go): a statement's online
// history ends there.
func (l *store) eventsAt(ctx context.Context, refs []ref) ([]bank.Event, error) {
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
	resp, err := l.cli.Txn(ctx).Then(append(gets, clientv3.OpGet(l.k("archived/"), clientv3.WithPrefix()))...).Commit()
	if err != nil {
		return nil, l.unavailable(ctx, err)
	}
	raw := map[string][]byte{}
	var marks map[string]liveMark
	for i, rr := range resp.Responses {
		kvs := rr.GetResponseRange().Kvs
		if i == len(keys) {
			if marks, err = l.decodeMarks(kvs); err != nil {
				return nil, err
			}
			continue
		}
		if len(kvs) > 0 {
			raw[keys[i]] = kvs[0].Value
		}
	}
	out := make([]bank.Event, 0, len(refs))
	for _, r := range refs {
		k := l.segmentKey(r.proc, r.seg)
		if _, ok := raw[k]; !ok {
			if archivedAt(marks, r.proc, r.seg) {
				break // archived: the online history ends
			}
			return nil, fmt.Errorf("the segment %s of an entry is missing (damaged log)", k)
		}
		e, err := eventIn(k, raw[k], r.ts)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// idKeys returns the key of account id to prefetch, if id is valid.
func (l *store) idKeys(id string) []string {
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
func (l *store) putEntry(t *tx, a *record, e bank.Event) error {
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
