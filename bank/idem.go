package bank

// requests remembers, for idempotency, the timestamp of the first outcome of
// the last limit request ids, keyed by (account, request id). It lives in
// memory, owned by the committer, and is rebuilt from the tail of the event
// log when the file is opened: the log already records every money event
// with its account and request id, so remembering costs no write at all.
//
// Entries added during a transaction are pending until it commits, so a
// transaction that fails leaves the table as it was.
type requests struct {
	limit   int
	ts      map[string]uint64
	order   []string // keys in the order remembered, oldest first, from head
	head    int
	pending map[string]uint64
	porder  []string
}

func newRequests(limit int) *requests {
	return &requests{limit: limit, ts: make(map[string]uint64), pending: make(map[string]uint64)}
}

func reqKey(account, req string) string { return account + "\x00" + req }

// get returns the timestamp of the first outcome of req on account.
func (r *requests) get(account, req string) (uint64, bool) {
	k := reqKey(account, req)
	if ts, ok := r.pending[k]; ok {
		return ts, true
	}
	ts, ok := r.ts[k]
	return ts, ok
}

// add remembers req on account, pending until commit.
func (r *requests) add(account, req string, ts uint64) {
	k := reqKey(account, req)
	r.pending[k] = ts
	r.porder = append(r.porder, k)
}

// commit makes the pending entries permanent and forgets the oldest beyond
// the limit.
func (r *requests) commit() {
	for _, k := range r.porder {
		r.insert(k, r.pending[k])
	}
	r.rollback()
}

// rollback drops the pending entries.
func (r *requests) rollback() {
	clear(r.pending)
	r.porder = r.porder[:0]
}

func (r *requests) insert(k string, ts uint64) {
	if _, ok := r.ts[k]; ok {
		return
	}
	r.ts[k] = ts
	r.order = append(r.order, k)
	for len(r.ts) > r.limit {
		old := r.order[r.head]
		r.order[r.head] = ""
		r.head++
		delete(r.ts, old)
	}
	// Compact the queue once its dead prefix is as long as the live part.
	if r.head > 1024 && r.head >= len(r.order)-r.head {
		n := copy(r.order, r.order[r.head:])
		clear(r.order[n:])
		r.order = r.order[:n]
		r.head = 0
	}
}
