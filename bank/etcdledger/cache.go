package etcdledger

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
		if len(c.m) >= maxCached {
			for old := range c.m { // a random quarter
				delete(c.m, old)
				if len(c.m) < maxCached*3/4 {
					break
				}
			}
		}
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

// maxMemo bounds the decoded values a memo keeps.
const maxMemo = 1 << 12

// memo keeps values decoded from stored bytes by those bytes, so that a
// value this server wrote or read before is not decoded again.
type memo[T any] struct {
	mu sync.Mutex
	m  map[string]T
}

// get returns the value raw decodes to, decoding it once.
func (m *memo[T]) get(raw []byte, decode func([]byte) (T, error)) (T, error) {
	m.mu.Lock()
	v, ok := m.m[string(raw)]
	m.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := decode(raw)
	if err != nil {
		return v, err
	}
	m.keep(raw, v)
	return v, nil
}

// keep remembers that raw decodes to v.
func (m *memo[T]) keep(raw []byte, v T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]T{}
	}
	if len(m.m) >= maxMemo {
		for k := range m.m { // a random quarter
			delete(m.m, k)
			if len(m.m) < maxMemo*3/4 {
				break
			}
		}
	}
	m.m[string(raw)] = v
}

// recordMemo keeps decoded account records; it hands out private copies.
type recordMemo struct{ memo[*record] }

func (rm *recordMemo) decode(raw []byte) (*record, error) {
	r, err := rm.get(raw, func(raw []byte) (*record, error) {
		r := new(record)
		return r, json.Unmarshal(raw, r)
	})
	if err != nil {
		return nil, err
	}
	return r.clone(), nil
}

// keep remembers that raw holds r (copied).
func (rm *recordMemo) keep(raw []byte, r *record) { rm.memo.keep(raw, r.clone()) }

// clone returns a copy of r that shares nothing it may change.
func (r *record) clone() *record {
	c := *r
	c.Sources = slices.Clone(r.Sources)
	c.Entries = slices.Clip(r.Entries)
	c.Reqs = slices.Clip(r.Reqs)
	c.PINHash = slices.Clip(r.PINHash)
	return &c
}
