package boltstore

// requests remembers, for idempotency, the timestamp of the first outcome of
// the last limit request ids, keyed by (account, request id). It lives in
// memory, owned by the committer's applier, and is rebuilt from the tail of
// the event log when the file is opened (or after a failed transaction):
// the log already records every money event with its account and request
// id, so remembering costs no write at all.
type requests struct {
	limit int
	ts    map[string]uint64
	order []string // keys in the order remembered, oldest first, from head
	head  int
}

func newRequests(limit int) *requests {
	return &requests{limit: limit, ts: make(map[string]uint64)}
}

func reqKey(account, req string) string { return account + "\x00" + req }

// get returns the timestamp of the first outcome of req on account.
func (r *requests) get(account, req string) (uint64, bool) {
	ts, ok := r.ts[reqKey(account, req)]
	return ts, ok
}

// add remembers req on account, forgetting the oldest beyond the limit.
func (r *requests) add(account, req string, ts uint64) { r.insert(reqKey(account, req), ts) }

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
