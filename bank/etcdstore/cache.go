package etcdstore

import (
	"encoding/json"
	"slices"
	"sync"
)

// maxCached bounds the keys a server's cache holds.
const maxCached = 1 << 14

// cache holds the values, with their revisions, of the account records and
// the totals this server last wrote or read, so
// that a batch need not read them again: a batch's first attempt takes
// them from here, and its commit compares their revisions like any read.
// A stale entry (another server changed the key) fails that comparison;
// the attempt after a conflict reads everything through the quorum and
// refreshes the cache. So the cache saves round trips and never decides
// an outcome. Entries are dropped when a watched segment of another server
// names their account, when a commit's outcome is unknown, and at random
// when the cache is full.
type cache struct {
	mu sync.Mutex
	m  map[string]preKV
}

// fill copies the cached keys among keys into pre.
func (c *cache) fill(pre map[string]preKV, keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if v, ok := c.m[k]; ok {
			pre[k] = v
		}
	}
}

// store caches values read or committed.
func (c *cache) store(kvs map[string]preKV) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]preKV{}
	}
	for k, v := range kvs {
		makeRoom(c.m, maxCached)
		c.m[k] = v
	}
}

// drop forgets keys.
func (c *cache) drop(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		delete(c.m, k)
	}
}

// maxMemo bounds the decoded records a server keeps.
const maxMemo = 1 << 12

// recordMemo keeps decoded account records by their stored bytes, so that
// a record this server wrote or read before is not decoded again. It hands
// out private copies.
type recordMemo struct {
	mu sync.Mutex
	m  map[string]*record
}

// decode returns the record raw holds.
func (rm *recordMemo) decode(raw []byte) (*record, error) {
	rm.mu.Lock()
	r, ok := rm.m[string(raw)]
	rm.mu.Unlock()
	if !ok {
		r = new(record)
		if err := json.Unmarshal(raw, r); err != nil {
			return nil, err
		}
		rm.keep(raw, r)
	}
	return r.clone(), nil
}

// keep remembers that raw holds r (copied).
func (rm *recordMemo) keep(raw []byte, r *record) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.m == nil {
		rm.m = map[string]*record{}
	}
	makeRoom(rm.m, maxMemo)
	rm.m[string(raw)] = r.clone()
}

// makeRoom drops a random quarter of m's entries once it holds max.
func makeRoom[K comparable, V any](m map[K]V, max int) {
	if len(m) < max {
		return
	}
	for k := range m {
		delete(m, k)
		if len(m) < max*3/4 {
			return
		}
	}
}

// clone returns a copy of r that shares nothing it may change.
func (r *record) clone() *record {
	c := *r
	c.Sources = slices.Clone(r.Sources)
	c.Entries = slices.Clip(r.Entries)
	c.Reqs = slices.Clip(r.Reqs)
	c.PINHash = slices.Clip(r.PINHash)
	return &c
}
