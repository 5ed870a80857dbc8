package boltstore

import (
	"fmt"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// upgrade turns a file of format 2 into one of this format, in tx: it
// counts every account's statement entries into its state and writes the
// marks of its chain (see marks.go), read from the log, then stores the
// new format. It is one transaction, the one Open prepares the file in: a
// crash before its commit leaves the file of format 2 as it was, and the
// next Open upgrades it again. Afterwards a version that reads format 2
// only refuses the file, naming its format.
//
// The chains, not the events' kinds, say which events are entries (an
// event recorded with Ledger.Record is none, whatever its kind), and a
// mark's place depends on the entry's number counted from the oldest, so
// the log is read twice from its newest event down: first to count each
// account's entries, then to mark them. Each pass reads the log once
// through, decoding only the entries; a link to an event that is not in
// the log, or not below the entry, is damage, and fails the upgrade (and
// so Open) naming it.
func upgrade(tx *bolt.Tx) error {
	states := tx.Bucket(bucketState)
	if states == nil || tx.Bucket(bucketEvents) == nil {
		return fmt.Errorf("bucket %s or %s is missing (damaged file)", bucketState, bucketEvents)
	}
	heads := make(map[string]acctState)
	err := states.ForEach(func(k, v []byte) error {
		s, err := decodeStateNoMarks(v)
		if err != nil {
			return fmt.Errorf("account %s: %w", k, err)
		}
		heads[string(k)] = s
		return nil
	})
	if err != nil {
		return err
	}
	counts := make(map[string]uint64, len(heads))
	err = walkChains(tx, heads, func(id string, _ uint64, n uint64) error {
		counts[id] = n + 1
		return nil
	})
	if err != nil {
		return err
	}
	marks, err := tx.CreateBucketIfNotExists(bucketMarks)
	if err != nil {
		return err
	}
	err = walkChains(tx, heads, func(id string, ts uint64, n uint64) error {
		if (counts[id]-n)%markEvery != 0 {
			return nil
		}
		return marks.Put(markKey(id, ts), []byte{})
	})
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(heads)) {
		s := heads[id]
		s.Count = counts[id]
		if err := states.Put([]byte(id), appendState(nil, s)); err != nil {
			return err
		}
	}
	return putU64(tx.Bucket(bucketMeta), keyFormat, formatVersion)
}

// walkChains calls fn for every entry of the accounts' chains, read from
// their heads down through the log in one pass from its newest event: the
// account, the entry's timestamp and its place in the account's chain (0
// for the newest).
func walkChains(tx *bolt.Tx, heads map[string]acctState, fn func(id string, ts, n uint64) error) error {
	type walk struct {
		id string
		n  uint64
	}
	next := make(map[uint64][]*walk) // the entries the walks reach next
	for id, s := range heads {
		if s.Last != 0 {
			next[s.Last] = append(next[s.Last], &walk{id: id})
		}
	}
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.Last(); k != nil && len(next) > 0; k, v = c.Prev() {
		ts, err := eventKey(k)
		if err != nil {
			return err
		}
		walks, ok := next[ts]
		if !ok {
			continue
		}
		delete(next, ts)
		account, prevA, prevB, ok := eventLinks(v)
		if !ok {
			return fmt.Errorf("event %d: unknown encoding (damaged file)", ts)
		}
		for _, w := range walks {
			if err := fn(w.id, ts, w.n); err != nil {
				return err
			}
			prev := prevB
			if string(account) == w.id {
				prev = prevA
			}
			if _, err := down(ts, prev); err != nil {
				return fmt.Errorf("account %s: %w", w.id, err)
			}
			if prev != 0 {
				w.n++
				next[prev] = append(next[prev], w)
			}
		}
	}
	if len(next) > 0 {
		ts := slices.Max(slices.Collect(maps.Keys(next)))
		return fmt.Errorf("account %s: statement entry %d is not in the log (damaged file)", next[ts][0].id, ts)
	}
	return nil
}
