package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"atm/bank"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Reading the log. Each server's segments (log/<proc>/<ts>) hold rising
// timestamps and never overlap, so a server's events in key order are in
// timestamp order, and the whole log in (ts, proc) order is a merge of the
// servers' sequences, read side by side at one etcd revision.

// segmentsPage is how many segments a reader reads at a time.
const segmentsPage = 32

// logReader merges the servers' segments in (ts, proc) order.
type logReader struct {
	l       *store
	ctx     context.Context
	rev     int64
	cursors []*segCursor
}

// segCursor reads one server's segments in key order, checking that they
// are what their keys say: events of that server with rising timestamps,
// the first at the key's timestamp.
type segCursor struct {
	proc    string
	from    string // the next key to read
	end     string
	more    bool
	after   uint64 // events at or below are skipped
	lastTS  uint64 // the last event read, to check the order
	lastSeg string
	buf     []bank.Event
	// link, if set, is given each segment after after, as a link of the
	// server's chain, before its events are decoded (see chain.go).
	link func(bank.Link) error
}

// newLogReader opens a reader of the events after the cursor, at the etcd
// revision of its first read (the current one).
func (l *store) newLogReader(ctx context.Context, at bank.ProcCursor) (*logReader, error) {
	return l.newLogReaderAt(ctx, 0, at)
}

// newLogReaderAt opens a reader of the events after the cursor at
// revision rev (0: the current one).
func (l *store) newLogReaderAt(ctx context.Context, rev int64, at bank.ProcCursor) (*logReader, error) {
	r := &logReader{l: l, ctx: ctx, rev: rev}
	procs, err := r.procs()
	if err != nil {
		return nil, err
	}
	for _, p := range procs {
		prefix := l.k("log/" + p + "/")
		after := at.After(p)
		c := &segCursor{proc: p, from: prefix, end: clientv3.GetPrefixRangeEnd(prefix), more: true, after: after}
		if after > 0 {
			// Start at the segment that holds after+1: the last one
			// named at or below it.
			resp, err := r.get(prefix, clientv3.WithRange(l.segmentKey(p, after+1)+"\x00"),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1), clientv3.WithKeysOnly())
			if err != nil {
				return nil, err
			}
			if len(resp.Kvs) > 0 {
				c.from = string(resp.Kvs[0].Key)
			}
		}
		r.cursors = append(r.cursors, c)
	}
	return r, nil
}

// get reads at the reader's revision, fixing it at the first read.
func (r *logReader) get(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if r.rev != 0 {
		opts = append(opts, clientv3.WithRev(r.rev))
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.l.opts.CommitTimeout)
	defer cancel()
	resp, err := r.l.cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, r.l.unavailable(r.ctx, err)
	}
	if r.rev == 0 {
		r.rev = resp.Header.Revision
	}
	return resp, nil
}

// procs lists the process ids that have segments, skipping from one to
// the next.
func (r *logReader) procs() ([]string, error) {
	prefix := r.l.k("log/")
	end := clientv3.GetPrefixRangeEnd(prefix)
	var out []string
	from := prefix
	for {
		resp, err := r.get(from, clientv3.WithRange(end), clientv3.WithLimit(1), clientv3.WithKeysOnly())
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) == 0 {
			return out, nil
		}
		rel := strings.TrimPrefix(string(resp.Kvs[0].Key), prefix)
		proc, _, ok := strings.Cut(rel, "/")
		if !ok || proc == "" {
			return nil, fmt.Errorf("log key %s: not log/<proc>/<ts> (damaged log)", resp.Kvs[0].Key)
		}
		out = append(out, proc)
		from = prefix + proc + "0" // the first key after every "<proc>/..."
	}
}

// fill reads the cursor's next page of segments, until it has an event or
// none are left.
func (r *logReader) fill(c *segCursor) error {
	for len(c.buf) == 0 && c.more {
		resp, err := r.get(c.from, clientv3.WithRange(c.end), clientv3.WithLimit(segmentsPage))
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			if err := c.add(r.l, string(kv.Key), kv.Value); err != nil {
				return err
			}
		}
		c.more = resp.More && len(resp.Kvs) > 0
		if len(resp.Kvs) > 0 {
			c.from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	return nil
}

// add checks a segment and queues its events above the cursor's after.
func (c *segCursor) add(l *store, key string, raw []byte) error {
	tsStr := key[strings.LastIndexByte(key, '/')+1:]
	ts, err := strconv.ParseUint(tsStr, 10, 64)
	if err != nil || len(tsStr) != 20 || key != l.segmentKey(c.proc, ts) {
		return fmt.Errorf("log key %s: not log/<proc>/<ts, 20 digits> (damaged log)", key)
	}
	if string(raw) == voidSegment {
		return nil // a transaction that never committed (see settle)
	}
	framed, err := decodeSegment(raw)
	if err != nil {
		return fmt.Errorf("%s: damaged record: %w", segName(key, c.proc, ts), err)
	}
	if c.link != nil && ts > c.after {
		if err := c.link(framed.link(key, c.proc, ts)); err != nil {
			return err
		}
	}
	var seg []bank.Event
	if err := json.Unmarshal(framed.events, &seg); err != nil {
		return fmt.Errorf("segment %s: damaged record: %w", key, err)
	}
	if len(seg) == 0 || seg[0].TS != ts {
		return fmt.Errorf("segment %s: does not start at L=%d (damaged log)", key, ts)
	}
	for _, e := range seg {
		if e.Proc != c.proc {
			return fmt.Errorf("segment %s: holds an event of %s (damaged log)", key, e.Proc)
		}
		if e.TS <= c.lastTS && c.lastSeg != "" {
			return fmt.Errorf("segment %s: event L=%d is not after L=%d of %s (damaged log)", key, e.TS, c.lastTS, c.lastSeg)
		}
		c.lastTS, c.lastSeg = e.TS, key
		if e.TS > c.after {
			c.buf = append(c.buf, e)
		}
	}
	return nil
}

// next returns the next event in (ts, proc) order; ok is false at the end.
func (r *logReader) next() (e bank.Event, ok bool, err error) {
	var best *segCursor
	for _, c := range r.cursors {
		if err := r.fill(c); err != nil {
			return e, false, err
		}
		if len(c.buf) == 0 {
			continue
		}
		if best == nil || c.buf[0].TS < best.buf[0].TS || c.buf[0].TS == best.buf[0].TS && c.proc < best.proc {
			best = c
		}
	}
	if best == nil {
		return e, false, nil
	}
	e, best.buf = best.buf[0], best.buf[1:]
	return e, true, nil
}
