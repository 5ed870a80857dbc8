package etcdstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"atm/bank"
	"atm/bank/archive"
	"atm/bank/outcome"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Archiving (package archive). Each server's chain of segments is a chain
// of the archive, named by its process id; a record is one segment, its
// key's timestamp and its value as stored, so its hash checks in the
// archive as it does here. Where each chain's live log starts is kept in
// archived/<proc>:
//
//	{"through":<ts>,"hash":"<hex>","last":<ts>,"cut":<ts>}
//
// through is the key's timestamp of the chain's last archived segment,
// hash the chain's hash after it ("" for a segment without one), last its
// last event's timestamp (a chain whose every segment was archived goes
// on from there: see headOf), and cut
// the timestamp up to which the run that archived it archived every chain.
//
// A run archives the log up to one cut, the same for every chain, chosen
// so that no segment holds events on both sides of it: every archived
// event comes before every live one in (ts, proc) order, so the archive
// read then the live log is the whole log in order (bank.Ledger.
// VerifyArchived). The cut stays below the newest checkpoint's event and
// at or below the chain heads it recorded (Verify starts from them), and
// below the last keep events of the log and the last RememberRequests
// money requests (counted over the whole log, as a bank kept in a file
// does). A request remembered by its account whose first event was
// archived anyway (an account whose window reaches further back) is not
// answered from the archive: a retry of it gets ErrRequestArchived.
//
// Forget deletes a segment's keys in transactions of at most maxTxnOps
// operations, each moving the mark to the last segment it deletes and
// comparing the mark's revision: two archivers of one bank never both
// delete; the second finds the work done, or fails without deleting.

// ErrRequestArchived is the error of a retry of a money request whose
// first event was archived: the request was processed (its answer is in
// the archive, not in the live log), and it is not processed again. It
// matches outcome.ErrRequestIDReused.
var ErrRequestArchived = outcome.WithMessage(outcome.ErrRequestIDReused,
	"this request was already processed, long ago: its answer is archived (atm log --archive), so it cannot be repeated; check the balance or the statement")

// liveMark is the value of archived/<proc>.
type liveMark struct {
	Through uint64 `json:"through"`
	Hash    string `json:"hash"`
	Last    uint64 `json:"last"`
	Cut     uint64 `json:"cut"`
}

func (l *store) markKey(proc string) string { return l.k("archived/" + proc) }

// marks reads every chain's mark at revision rev (0: now), with the
// revision of each key.
func (l *store) marks(ctx context.Context, rev int64) (map[string]liveMark, map[string]int64, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev != 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	defer cancel()
	resp, err := l.cli.Get(cctx, l.k("archived/"), opts...)
	if err != nil {
		return nil, nil, l.unavailable(ctx, err)
	}
	out, err := l.decodeMarks(resp.Kvs)
	revs := map[string]int64{}
	for _, kv := range resp.Kvs {
		revs[strings.TrimPrefix(string(kv.Key), l.k("archived/"))] = kv.ModRevision
	}
	return out, revs, err
}

// decodeMarks reads the keys archived/<proc>.
func (l *store) decodeMarks(kvs []*mvccpb.KeyValue) (map[string]liveMark, error) {
	out := map[string]liveMark{}
	for _, kv := range kvs {
		proc := strings.TrimPrefix(string(kv.Key), l.k("archived/"))
		var m liveMark
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, bank.Damaged(fmt.Errorf("archive mark %s: damaged record: %w", kv.Key, err))
		}
		out[proc] = m
	}
	return out, nil
}

// chains lists the chains: the servers that have segments, and those
// whose every segment was archived.
func (l *store) chains(ctx context.Context) ([]string, map[string]liveMark, error) {
	procs, err := (&logReader{l: l, ctx: ctx}).procs()
	if err != nil {
		return nil, nil, err
	}
	marks, _, err := l.marks(ctx, 0)
	if err != nil {
		return nil, nil, err
	}
	for p := range marks {
		if !slices.Contains(procs, p) {
			procs = append(procs, p)
		}
	}
	slices.Sort(procs)
	return procs, marks, nil
}

// Live returns, per chain, where its live log starts (archive.Store).
func (l *store) Live(ctx context.Context) (map[string]archive.Mark, error) {
	procs, marks, err := l.chains(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]archive.Mark{}
	for _, p := range procs {
		out[p] = archive.Mark{Through: marks[p].Through, Hash: marks[p].Hash}
	}
	return out, nil
}

// evHead is what the cut reads of an event.
type evHead struct {
	TS    uint64    `json:"ts"`
	Proc  string    `json:"proc"`
	Kind  bank.Kind `json:"kind"`
	ReqID string    `json:"req_id"`
}

// segHeads reads a segment's events' heads; a void segment has none.
func segHeads(key string, raw []byte) ([]evHead, error) {
	if string(raw) == voidSegment {
		return nil, nil
	}
	s, err := decodeSegment(raw)
	var evs []evHead
	if err == nil {
		err = json.Unmarshal(s.events, &evs)
	}
	if err == nil && len(evs) == 0 {
		err = errors.New("no events")
	}
	if err != nil {
		return nil, bank.Damaged(fmt.Errorf("segment %s: damaged record: %w", key, err))
	}
	return evs, nil
}

// ArchiveUpTo returns the cut (see above), the same for every chain: 0
// when nothing may be archived (no checkpoint yet, or the log is short).
func (l *store) ArchiveUpTo(ctx context.Context, keep int) (map[string]uint64, error) {
	procs, _, err := l.chains(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, p := range procs {
		out[p] = 0
	}
	cut, err := l.cut(ctx, procs, keep)
	if err != nil || cut == 0 {
		return out, err
	}
	for _, p := range procs {
		out[p] = cut
	}
	return out, nil
}

func (l *store) cut(ctx context.Context, procs []string, keep int) (uint64, error) {
	sc, err := l.LastCheckpoint(ctx)
	if err != nil || sc == nil {
		return 0, err
	}
	c, err := bank.DecodeCheckpoint(sc.State)
	if err != nil {
		return 0, bank.Damaged(fmt.Errorf("checkpoint L=%d/%s: its state: %w", sc.Event.TS, sc.Event.Proc, err))
	}
	if sc.Event.TS == 0 {
		return 0, nil
	}
	remember, err := l.bankWindow(ctx)
	if err != nil {
		return 0, err
	}
	cut := sc.Event.TS - 1
	heads := map[string]uint64{}
	for _, h := range c.Heads {
		if h.TS > 0 { // a chain that had nothing yet stays whole, as one the checkpoint does not know
			heads[h.Chain] = h.TS
		}
	}
	// Each chain's newest events, at least keep and RememberRequests money
	// requests of it (or all it has): the newest of the whole log that
	// must stay are among them.
	var newest []evHead
	for _, p := range procs {
		if h, ok := heads[p]; ok {
			cut = min(cut, h)
		}
		n, money := 0, 0
		err := l.segmentsDown(ctx, p, ^uint64(0), func(key string, ts uint64, raw []byte) (bool, error) {
			evs, err := segHeads(key, raw)
			if err != nil {
				return false, err
			}
			if _, ok := heads[p]; !ok && len(evs) > 0 {
				cut = min(cut, ts-1) // a chain the checkpoint does not know stays whole
			}
			for i := len(evs) - 1; i >= 0; i-- {
				newest = append(newest, evs[i])
				n++
				if evs[i].Kind.IsMoney() && evs[i].ReqID != "" {
					money++
				}
			}
			_, known := heads[p]
			return known && n >= keep && money >= remember, nil
		})
		if err != nil {
			return 0, err
		}
	}
	slices.SortFunc(newest, func(a, b evHead) int {
		if a.TS != b.TS {
			return -cmp.Compare(a.TS, b.TS)
		}
		return -strings.Compare(a.Proc, b.Proc)
	})
	n, money, enough := 0, 0, false
	for _, e := range newest {
		n++
		if e.Kind.IsMoney() && e.ReqID != "" {
			money++
		}
		if n >= keep && money >= remember {
			if e.TS == 0 {
				return 0, nil
			}
			cut, enough = min(cut, e.TS-1), true
			break
		}
	}
	if !enough {
		return 0, nil // the whole log must stay
	}
	// No segment may hold events on both sides of the cut: lower it below
	// any that does, until none does.
	for moved := true; moved && cut > 0; {
		moved = false
		for _, p := range procs {
			err := l.segmentsDown(ctx, p, cut, func(key string, ts uint64, raw []byte) (bool, error) {
				evs, err := segHeads(key, raw)
				if err != nil || len(evs) == 0 {
					return false, err
				}
				if evs[len(evs)-1].TS > cut {
					cut, moved = ts-1, true
				}
				return true, nil
			})
			if err != nil {
				return 0, err
			}
		}
	}
	return cut, nil
}

// bankWindow reads the bank's window of remembered requests, as stored
// with it (a read-only ledger has not read it).
func (l *store) bankWindow(ctx context.Context) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	defer cancel()
	resp, err := l.cli.Get(cctx, l.rememberKey())
	if err != nil {
		return 0, l.unavailable(ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return l.opts.RememberRequests, nil
	}
	n, err := strconv.Atoi(string(resp.Kvs[0].Value))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: %s is %q, not a positive number", ErrLayout, l.rememberKey(), resp.Kvs[0].Value)
	}
	return n, nil
}

// segmentsDown calls fn for proc's segments whose key's timestamp is at or
// below top, newest first, until fn reports it is done.
func (l *store) segmentsDown(ctx context.Context, proc string, top uint64, fn func(key string, ts uint64, raw []byte) (bool, error)) error {
	prefix := l.k("log/" + proc + "/")
	end := clientv3.GetPrefixRangeEnd(prefix)
	if top != ^uint64(0) {
		end = l.segmentKey(proc, top) + "\x00"
	}
	for {
		cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
		resp, err := l.cli.Get(cctx, prefix, clientv3.WithRange(end),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(segmentsPage))
		cancel()
		if err != nil {
			return l.unavailable(ctx, err)
		}
		for _, kv := range resp.Kvs {
			ts, err := l.segmentTS(proc, string(kv.Key))
			if err != nil {
				return err
			}
			done, err := fn(string(kv.Key), ts, kv.Value)
			if err != nil || done {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		end = string(resp.Kvs[len(resp.Kvs)-1].Key)
	}
}

// segmentTS reads the timestamp of a segment's key.
func (l *store) segmentTS(proc, key string) (uint64, error) {
	tsStr := key[strings.LastIndexByte(key, '/')+1:]
	ts, err := strconv.ParseUint(tsStr, 10, 64)
	if err != nil || key != l.segmentKey(proc, ts) {
		return 0, bank.Damaged(fmt.Errorf("log key %s: not log/<proc>/<ts, 20 digits> (damaged log)", key))
	}
	return ts, nil
}

// ChainRecords reads at most limit segments of chain proc above
// timestamp after, as stored; void segments are skipped (archive.Store).
func (l *store) ChainRecords(ctx context.Context, proc string, after uint64, limit int) ([]archive.Record, error) {
	var out []archive.Record
	from := l.segmentKey(proc, after+1)
	end := clientv3.GetPrefixRangeEnd(l.k("log/" + proc + "/"))
	for len(out) < limit {
		cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
		resp, err := l.cli.Get(cctx, from, clientv3.WithRange(end), clientv3.WithLimit(int64(limit-len(out))))
		cancel()
		if err != nil {
			return nil, l.unavailable(ctx, err)
		}
		for _, kv := range resp.Kvs {
			ts, err := l.segmentTS(proc, string(kv.Key))
			if err != nil {
				return nil, err
			}
			if string(kv.Value) != voidSegment {
				out = append(out, archive.Record{TS: ts, Raw: kv.Value})
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return out, nil
}

// Codec reads the archived records of a bank kept in etcd, without the
// cluster (atm log --archive, atm verify --archive): each a segment.
var Codec archive.Codec = codec{}

type codec struct{}

// Decode reads an archived segment: its events, and its link in its
// server's chain.
func (codec) Decode(r archive.Record) ([]bank.Event, bank.Link, error) {
	s, err := decodeSegment(r.Raw)
	var evs []bank.Event
	if err == nil {
		err = json.Unmarshal(s.events, &evs)
	}
	if err == nil && (len(evs) == 0 || evs[0].TS != r.TS) {
		err = fmt.Errorf("it does not start at L=%d", r.TS)
	}
	if err != nil {
		return nil, bank.Link{}, fmt.Errorf("segment L=%d: %w", r.TS, err)
	}
	proc := evs[0].Proc
	for i, e := range evs {
		if e.Proc != proc || (i > 0 && e.TS <= evs[i-1].TS) {
			return nil, bank.Link{}, fmt.Errorf("segment L=%d/%s: event L=%d/%s is out of place", r.TS, proc, e.TS, e.Proc)
		}
	}
	return evs, s.link(fmt.Sprintf("log/%s/%020d", proc, r.TS), proc, r.TS), nil
}

// Decode reads an archived segment (archive.Codec).
func (l *store) Decode(r archive.Record) ([]bank.Event, bank.Link, error) { return Codec.Decode(r) }

// Forget deletes the segments of seg, an archived segment file of chain
// seg.Proc, and moves the chain's mark to its end (archive.Store): in
// transactions of at most maxTxnOps operations, each deleting segments in
// key order and moving the mark to the last one it deletes, if the mark
// is still what was read. A segment already forgotten is nothing to do;
// one that another archiver is forgetting meanwhile is finished or left
// to it; one that does not follow the live log's start, or whose records
// are not those live, is refused.
func (l *store) Forget(ctx context.Context, seg archive.Segment) error {
	for attempt := 0; ; attempt++ {
		done, err := l.forgetOnce(ctx, seg)
		if err != nil || done {
			return err
		}
		if attempt >= 10 {
			return fmt.Errorf("archive segment %s: the mark of %s keeps moving: another archiver is at work; try again later", seg.Name, seg.Proc)
		}
	}
}

// forgetOnce forgets what is left of seg after the mark as read; done is
// false when the mark moved meanwhile (another archiver): read it again.
func (l *store) forgetOnce(ctx context.Context, seg archive.Segment) (bool, error) {
	marks, revs, err := l.marks(ctx, 0)
	if err != nil {
		return false, err
	}
	m, rev := marks[seg.Proc], revs[seg.Proc]
	if seg.Last <= m.Through {
		return true, nil
	}
	if m.Through < seg.First && seg.Prev != m.Hash {
		return false, fmt.Errorf("archive segment %s does not start where the live log of %s does (after L=%d): %w",
			seg.Name, seg.Proc, m.Through, archive.ErrDamaged)
	}
	cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	resp, err := l.cli.Get(cctx, l.segmentKey(seg.Proc, m.Through+1), clientv3.WithRange(l.segmentKey(seg.Proc, seg.Last)+"\x00"))
	cancel()
	if err != nil {
		return false, l.unavailable(ctx, err)
	}
	if resp.Header.Revision < rev {
		return false, nil
	}
	type del struct {
		key  string
		mark *liveMark // the mark after it; nil for a void segment
	}
	var dels []del
	n, hash, lastTS := 0, m.Hash, uint64(0)
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		ts, err := l.segmentTS(seg.Proc, key)
		if err != nil {
			return false, err
		}
		if string(kv.Value) == voidSegment {
			dels = append(dels, del{key: key})
			continue
		}
		if n == 0 && m.Through < seg.First && ts != seg.First {
			return false, fmt.Errorf("archive segment %s starts at L=%d, the live log of %s at L=%d: %w", seg.Name, seg.First, seg.Proc, ts, archive.ErrDamaged)
		}
		evs, k, err := Codec.Decode(archive.Record{TS: ts, Raw: kv.Value})
		if err == nil && evs[0].Proc != seg.Proc {
			err = fmt.Errorf("it holds events of %s", evs[0].Proc)
		}
		if err != nil {
			return false, bank.Damaged(fmt.Errorf("%s: %w", key, err))
		}
		if k.Hashed {
			if k.Prev.String() != hash && !(hash == "" && k.Prev.IsZero()) {
				return false, fmt.Errorf("archive segment %s: the live segment %s does not follow the one before it: %w", seg.Name, key, archive.ErrDamaged)
			}
			hash = k.Hash.String()
		}
		n++
		lastTS = evs[len(evs)-1].TS
		dels = append(dels, del{key: key, mark: &liveMark{Through: ts, Hash: hash, Last: lastTS}})
	}
	if m.Through < seg.First && n != seg.Count || hash != seg.Hash || n == 0 {
		return false, fmt.Errorf("archive segment %s holds %d segments up to %s, the live log of %s %d up to %s in its range: %w",
			seg.Name, seg.Count, short(seg.Hash), seg.Proc, n, short(hash), archive.ErrDamaged)
	}
	cut := m.Cut
	if all, _, err := l.marks(ctx, 0); err == nil {
		for _, o := range all {
			cut = max(cut, o.Cut)
		}
	}
	cut = max(cut, lastTS)
	key := l.markKey(seg.Proc)
	for len(dels) > 0 {
		// A transaction's deletions end at a segment on the chain: its
		// mark is the one after them.
		k := min(len(dels), maxTxnOps-1)
		for k > 0 && dels[k-1].mark == nil {
			k--
		}
		if k == 0 {
			k = len(dels) // only void segments left: cannot happen, they end before seg.Last
		}
		mark := *dels[k-1].mark
		mark.Cut = cut
		val, _ := json.Marshal(mark)
		ops := []clientv3.Op{clientv3.OpPut(key, string(val))}
		for _, d := range dels[:k] {
			ops = append(ops, clientv3.OpDelete(d.key))
		}
		cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
		tr, err := l.cli.Txn(cctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(ops...).Commit()
		cancel()
		if err != nil {
			return false, l.unavailable(ctx, err)
		}
		if !tr.Succeeded {
			return false, nil
		}
		rev = tr.Header.Revision
		dels = dels[k:]
	}
	return true, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(the start)"
	}
	return h
}

// archivedCut returns the highest cut archiving recorded: a server's clock
// starts above it, so that its events come after every archived one.
func (l *store) archivedCut(ctx context.Context) (uint64, error) {
	marks, _, err := l.marks(ctx, 0)
	var cut uint64
	for _, m := range marks {
		cut = max(cut, m.Cut)
	}
	return cut, err
}

// archivedAt reports whether the segment (proc, seg) was archived, as
// marks (read at one revision with the segment) say.
func archivedAt(marks map[string]liveMark, proc string, seg uint64) bool {
	m, ok := marks[proc]
	return ok && seg <= m.Through
}

// Compact compacts etcd's history to the current revision, so that the
// space of the segments archiving deleted can be reused (etcd keeps every
// revision of a key until compacted); it returns the revision. Compacting
// a revision already compacted is nothing to do.
func (l *store) Compact(ctx context.Context) (int64, error) {
	cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	defer cancel()
	resp, err := l.cli.Get(cctx, l.formatKey())
	if err != nil {
		return 0, l.unavailable(ctx, err)
	}
	rev := resp.Header.Revision
	if _, err := l.cli.Compact(cctx, rev, clientv3.WithCompactPhysical()); err != nil && !strings.Contains(err.Error(), "compacted") {
		return rev, l.unavailable(ctx, err)
	}
	return rev, nil
}

// Defragment defragments every member of the cluster in turn, giving the
// space compaction freed back to the file system (etcd's quota,
// --quota-backend-bytes, counts the file's size), and disarms a NOSPACE
// alarm once every member is defragmented. A member is blocked while it
// is defragmented. It returns the members' summed database sizes before
// and after.
func (l *store) Defragment(ctx context.Context) (before, after int64, err error) {
	cctx, cancel := context.WithTimeout(ctx, 10*l.opts.CommitTimeout)
	defer cancel()
	ms, err := l.cli.MemberList(cctx)
	if err != nil {
		return 0, 0, l.unavailable(ctx, err)
	}
	for _, m := range ms.Members {
		if len(m.ClientURLs) == 0 {
			continue
		}
		url := m.ClientURLs[0]
		st, err := l.cli.Status(cctx, url)
		if err != nil {
			return before, after, fmt.Errorf("etcd member %s: %w", m.Name, err)
		}
		before += st.DbSize
		if _, err := l.cli.Defragment(cctx, url); err != nil {
			return before, after, fmt.Errorf("defragment etcd member %s: %w", m.Name, err)
		}
		if st, err = l.cli.Status(cctx, url); err != nil {
			return before, after, fmt.Errorf("etcd member %s: %w", m.Name, err)
		}
		after += st.DbSize
	}
	alarms, err := l.cli.AlarmList(cctx)
	if err != nil {
		return before, after, l.unavailable(ctx, err)
	}
	for _, a := range alarms.Alarms {
		if a.Alarm == etcdserverpb.AlarmType_NOSPACE {
			if _, err := l.cli.AlarmDisarm(cctx, (*clientv3.AlarmMember)(a)); err != nil {
				return before, after, l.unavailable(ctx, err)
			}
		}
	}
	return before, after, nil
}
