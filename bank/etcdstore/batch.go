package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"atm/bank"
	"atm/bank/outcome"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Group commit. The operations of a server go through one committer
// goroutine (commitLoop), which commits them in batches: the operations
// that queue up while a transaction is in flight make the next one.
//
// A batch is computed sequentially on its own view: each operation runs on
// a tx whose base is the batch computed so far, so it reads the values the
// earlier operations of the batch wrote (two deposits share the totals key,
// so leaving out overlapping operations would serialize every deposit and
// withdrawal) and only keys nobody in the batch read or wrote come from
// etcd. The batch commits in one etcd Txn whose If compares the revision of
// every key first read from etcd (and that the batch's segment key is new),
// and whose Then holds the last value written to each key, once. So the
// batch is exactly the operations one after the other, applied to the
// state read: per-account Lamport order holds (an operation receives the
// "last" the previous one on the account wrote), a repeated request id in
// the same batch sees the first one remembered, and the money change and
// its log record are in the same Txn as ever.
//
// An operation that fails while computing (a read that fails, a damaged
// record) is dropped from the batch with nothing written; a statement
// waits for the next batch if the batch before it changes that account
// (its newest entries would name the batch's own segment). A batch holds
// at most maxTxnOps comparisons and maxTxnOps writes (etcd's
// --max-txn-ops, which bounds each list); an operation that would pass it
// waits for the next batch. Before computing, the committer gathers the
// keys the operations announce (their accounts, the totals) from the
// cache or in one etcd round trip, then the keys that never change that
// they need (chunks of request ids, a repeat's first event).
//
// Nothing is answered before the Txn's reply. If it fails, every
// operation of the batch gets ErrUnavailable with bank.ErrOutcomeUnknown.
// If it conflicts (another server changed a key read), the whole batch is
// computed again from fresh reads after a jittered backoff, each operation
// counting an attempt; after consecutive conflicts the batch is halved each
// time, down to one operation, so that two servers contending on the same
// accounts still make progress.

// maxTxnOps is etcd's default limit on the comparisons, and on the
// operations, of one transaction (--max-txn-ops).
const maxTxnOps = 128

// errOverlap defers an operation to the next batch.
var errOverlap = errors.New("overlaps the batch")

// Request states: a caller whose context ends while its request waits
// takes it back; once the committer has taken it, the outcome is unknown
// until the commit answers.
const (
	reqWaiting int32 = iota
	reqTaken
	reqAbandoned
)

type request struct {
	ctx  context.Context
	what string
	keys []string // keys the operation will likely read, to prefetch
	// more returns further keys to prefetch, given the keys read, or
	// nil: keys that never change once written (see tx.getFixed).
	more     func(pre map[string]preKV) []string
	fn       func(*tx) error
	state    atomic.Int32
	attempts int
	done     chan error // buffered
}

type committer struct {
	mu      sync.Mutex
	queue   []*request
	stopped bool
	wake    chan struct{}
	exited  chan struct{}

	cache   cache
	records recordMemo
	window  windowIndex

	// unsettled is the segment key of the last transaction whose outcome
	// the committer did not learn (see settle), "" when there is none.
	unsettled string
	chain     ownChain // this server's chain of segments (see chain.go)

	txns, ops, conflicts, lateReads atomic.Uint64
}

// Stats counts the committed transactions and the operations they
// committed, the transactions that failed on a conflict, and the keys
// operations read one by one while their batch was computed (each a round
// trip that holds up the whole batch) instead of with the batch's
// prefetch.
type Stats struct {
	Txns      uint64
	Ops       uint64
	Conflicts uint64
	LateReads uint64
}

// Stats returns the committer's running totals.
func (l *store) Stats() Stats {
	c := &l.com
	return Stats{Txns: c.txns.Load(), Ops: c.ops.Load(), Conflicts: c.conflicts.Load(), LateReads: c.lateReads.Load()}
}

// run runs fn as an optimistic transaction, in a batch with other
// operations, until it commits without conflict. fn computes the attempt's
// writes; it is called again, with fresh reads, after a conflict, so it
// must reset whatever it returns. An error of fn ends run at once, with
// nothing written. keys are the keys fn will likely read, and more, if
// set, returns the keys to prefetch given those: keys that never change
// once written.
func (l *store) run(ctx context.Context, what string, keys []string, more func(map[string]preKV) []string, fn func(t *tx) error) error {
	if l.isClosed() {
		return fmt.Errorf("%s: %w", what, outcome.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err // nothing sent
	}
	r := &request{ctx: ctx, what: what, keys: keys, more: more, fn: fn, done: make(chan error, 1)}
	c := &l.com
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", what, outcome.ErrClosed)
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqWaiting, reqAbandoned) {
			return ctx.Err() // nothing sent
		}
		select {
		case err := <-r.done:
			return err
		default:
		}
		return fmt.Errorf("%s: %w: %w", what, bank.ErrOutcomeUnknown, ctx.Err())
	}
}

func (l *store) startCommitter() {
	l.com.wake = make(chan struct{}, 1)
	l.com.exited = make(chan struct{})
	go l.commitLoop()
}

// commitLoop is the committer: it commits the queued operations, batch
// after batch, until the ledger closes.
func (l *store) commitLoop() {
	c := &l.com
	defer close(c.exited)
	var carry []*request // operations left for the next batch, first
	conflicts := 0       // consecutive conflicts
	for {
		if len(carry) == 0 {
			select {
			case <-c.wake:
			case <-l.done:
			}
		}
		c.mu.Lock()
		reqs := append(carry, c.queue...)
		c.queue = nil
		closed := l.isClosed()
		if closed {
			c.stopped = true
		}
		c.mu.Unlock()
		if closed {
			for _, r := range reqs {
				r.done <- fmt.Errorf("%s: %w", r.what, outcome.ErrClosed)
			}
			return
		}
		limit := max(1, len(reqs)>>min(conflicts, 30))
		var conflicted bool
		carry, conflicted = l.commitBatch(reqs, limit, conflicts == 0)
		if !conflicted {
			conflicts = 0
			continue
		}
		conflicts++
		backoff := time.Duration(rand.Int64N(int64(time.Millisecond) << min(conflicts-1, 5)))
		select {
		case <-time.After(backoff):
		case <-l.done:
		}
	}
}

// commitBatch computes and commits a batch of at most limit of reqs, in
// their order; it returns the operations left for the next batch, and
// whether the commit conflicted. With local, the batch reads the member's
// own copy of the keys (etcd's serializable reads, no quorum round): a
// copy that is behind fails the commit's comparisons like any change by
// another server, and the attempt after a conflict reads through the
// quorum.
func (l *store) commitBatch(reqs []*request, limit int, local bool) ([]*request, bool) {
	err := l.settle()
	var pre map[string]preKV
	if err == nil {
		pre, err = l.prefetch(reqs[:min(limit, len(reqs))], local)
	}
	if err != nil {
		// As the operations' own reads would: nothing was sent.
		for _, r := range reqs {
			if r.state.CompareAndSwap(reqWaiting, reqTaken) {
				r.done <- fmt.Errorf("%s: %w", r.what, l.unavailable(r.ctx, err))
			}
		}
		return nil, false
	}
	base, in, evs, carry := l.compute(reqs, limit, pre, local)
	if len(in) == 0 {
		return carry, false
	}
	if err := l.ready(base); err != nil {
		answer(in, err)
		return carry, false
	}
	cctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	resp, err := l.cli.Txn(cctx).If(base.cmps...).Then(base.thenOps()...).Commit()
	cancel()
	if err != nil || !resp.Succeeded {
		l.com.cache.drop(base.order...)
		l.com.cache.drop(slices.Collect(maps.Keys(base.read))...)
	}
	if err != nil {
		if len(base.events) > 0 {
			l.com.unsettled = l.segmentKey(l.opts.ProcessID, base.events[0].TS)
			l.com.chain.pending, l.com.chain.pendingTS = base.segSum, base.events[len(base.events)-1].TS
		}
		answer(in, fmt.Errorf("%w; %w: retry with the same request id (%v)", ErrUnavailable, bank.ErrOutcomeUnknown, err))
		return carry, false
	}
	if !resp.Succeeded {
		return append(l.conflicted(in), carry...), true
	}
	l.com.txns.Add(1)
	l.com.ops.Add(uint64(len(in)))
	l.cacheWrites(base, resp.Header.Revision)
	if len(base.events) > 0 {
		l.com.chain.head, l.com.chain.ts = base.segSum, base.events[len(base.events)-1].TS
		l.appended.Notify()
	}
	if l.opts.OnEvent != nil {
		for _, es := range evs {
			for _, e := range es {
				l.opts.OnEvent(e)
			}
		}
	}
	answer(in, nil)
	return carry, false
}

// voidSegment is the value settle writes at the key of a segment whose
// transaction never committed: a segment with no events, which readers
// of the log skip.
const voidSegment = "[]"

// settle settles the outcome of the last transaction the committer did
// not learn the outcome of, before it commits another one: that
// transaction wrote its segment only if the key was new, so settle writes
// a void segment at the key if it is still new, and the transaction can
// never commit afterwards; if the key holds the segment, it committed.
// Either way, the server's segments are published in key order, which
// reading the log from a cursor depends on (see logread.go). The
// server's chain goes on from that segment if it committed, and from the
// one before if it is void. While etcd cannot be reached, settle fails
// and nothing else is committed.
func (l *store) settle() error {
	key := l.com.unsettled
	if key == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	resp, err := l.cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(key), "=", 0)).
		Then(clientv3.OpPut(key, voidSegment)).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return err
	}
	// The key holds something: the segment, which committed, or the void
	// segment of an earlier settle whose own outcome was not learned.
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 1 && string(kvs[0].Value) != voidSegment {
			l.com.chain.head, l.com.chain.ts = l.com.chain.pending, l.com.chain.pendingTS
		}
	}
	l.com.unsettled = ""
	return nil
}

// compute computes the operations of reqs, in order, on one base: those
// in the batch (at most limit, within etcd's limits on a transaction),
// their events, and those carried to the next batch.
func (l *store) compute(reqs []*request, limit int, pre map[string]preKV, local bool) (base *tx, in []*request, evs [][]bank.Event, carry []*request) {
	base = &tx{l: l, ctx: context.Background(), pre: pre, local: local, read: map[string]readKV{}}
	for i, r := range reqs {
		if len(in) == limit {
			return base, in, evs, append(carry, reqs[i:]...)
		}
		if !r.state.CompareAndSwap(reqWaiting, reqTaken) {
			continue // abandoned
		}
		t := &tx{l: l, ctx: r.ctx, base: base, pre: pre, local: local, read: map[string]readKV{}}
		err := r.fn(t)
		if errors.Is(err, errOverlap) && len(in) > 0 {
			r.state.Store(reqWaiting)
			carry = append(carry, r)
			continue
		}
		if err != nil {
			r.done <- fmt.Errorf("%s: %w", r.what, err)
			continue
		}
		if cmps, ops := base.sizeWith(t); len(in) > 0 && (cmps > maxTxnOps || ops > maxTxnOps) {
			r.state.Store(reqWaiting)
			return base, in, evs, append(carry, reqs[i:]...)
		}
		base.merge(t)
		in = append(in, r)
		evs = append(evs, t.events)
	}
	return base, in, evs, carry
}

// ready adds the batch's segment to its writes and waits until the clock's
// lease covers its timestamps.
func (l *store) ready(base *tx) error {
	if err := base.putSegment(); err != nil {
		return err
	}
	if base.maxTS > 0 {
		return l.lease.Wait(context.Background(), base.maxTS)
	}
	return nil
}

// conflicted returns the operations of a batch that conflicted to be
// computed again, failing those out of attempts.
func (l *store) conflicted(in []*request) []*request {
	l.com.conflicts.Add(1)
	var again []*request
	for _, r := range in {
		r.attempts++
		if r.attempts >= l.opts.MaxAttempts {
			r.done <- fmt.Errorf("%s: %w: gave up after %d conflicting attempts", r.what, outcome.ErrInternal, l.opts.MaxAttempts)
			continue
		}
		r.state.Store(reqWaiting) // nothing was written
		again = append(again, r)
	}
	return again
}

// answer answers the operations of a batch: nil, or err after their names.
func answer(in []*request, err error) {
	for _, r := range in {
		if err != nil {
			r.done <- fmt.Errorf("%s: %w", r.what, err)
		} else {
			r.done <- nil
		}
	}
}

// prefetch reads the keys the operations announce, then, in up to
// maxMoreRounds rounds, the keys their more asks for given those, in
// transactions of at most maxTxnOps reads. With local, the announced keys
// come first from the cache (see cache), then from the member's own copy.
// The keys more asks for never change once written: they are read through
// the quorum (a member's copy may lack them).
func (l *store) prefetch(reqs []*request, local bool) (map[string]preKV, error) {
	pre := map[string]preKV{}
	var keys []string
	for _, r := range reqs {
		keys = append(keys, r.keys...)
	}
	if local {
		l.com.cache.fill(pre, keys)
	}
	read := map[string]preKV{}
	if err := l.readInto(pre, read, keys, local); err != nil {
		return nil, err
	}
	for range maxMoreRounds {
		keys = keys[:0]
		for _, r := range reqs {
			if r.more == nil {
				continue
			}
			for _, k := range r.more(pre) {
				if _, ok := pre[k]; !ok {
					keys = append(keys, k)
				}
			}
		}
		if len(keys) == 0 {
			break
		}
		if err := l.readInto(pre, read, keys, false); err != nil {
			return nil, err
		}
	}
	l.com.cache.store(read)
	return pre, nil
}

// maxMoreRounds bounds the rounds of prefetch that follow the announced
// keys: a request's window of ids, then the first event of a repeat.
const maxMoreRounds = 3

// cacheWrites caches the account records and totals a batch committed at
// revision rev.
func (l *store) cacheWrites(base *tx, rev int64) {
	kvs := map[string]preKV{}
	for _, k := range base.order {
		if w := base.writes[k]; !w.del && l.cacheable(k) {
			kvs[k] = preKV{readKV: readKV{val: w.val, ok: true}, rev: rev}
		}
	}
	l.com.cache.store(kvs)
}

// cacheable reports whether key is one the cache keeps: an account's
// record or the totals, the keys operations announce. Segments, chunks of
// statement entries (never read by operations) and chunks of request ids
// (kept decoded by the window index) are not.
func (l *store) cacheable(key string) bool {
	return strings.HasPrefix(key, l.k("accounts/")) || key == l.totalsKey()
}

// readInto reads the keys not yet in pre into it and into read (a missing
// key with revision 0).
func (l *store) readInto(pre, read map[string]preKV, keys []string, local bool) error {
	var opts []clientv3.OpOption
	if local {
		opts = append(opts, clientv3.WithSerializable())
	}
	var ops []clientv3.Op
	var batch []string
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
		resp, err := l.cli.Txn(ctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return err
		}
		for i, rr := range resp.Responses {
			p := preKV{}
			if kvs := rr.GetResponseRange().Kvs; len(kvs) > 0 {
				p = preKV{readKV: readKV{val: kvs[0].Value, ok: true}, rev: kvs[0].ModRevision}
			}
			pre[batch[i]] = p
			if p.ok && l.cacheable(batch[i]) {
				read[batch[i]] = p
			}
		}
		ops, batch = ops[:0], batch[:0]
		return nil
	}
	for _, k := range keys {
		if _, ok := pre[k]; ok || slices.Contains(batch, k) {
			continue
		}
		ops = append(ops, clientv3.OpGet(k, opts...))
		batch = append(batch, k)
		if len(ops) == maxTxnOps {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
