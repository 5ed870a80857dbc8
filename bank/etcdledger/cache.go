package etcdledger

import "sync"

// maxCached bounds the keys a server's cache holds.
const maxCached = 1 << 16

// cache holds the values, with their revisions, of the keys this server
// last wrote or read (account records, request-id chunks, the totals), so
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
