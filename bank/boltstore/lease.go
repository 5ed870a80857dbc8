package boltstore

import (
	"context"

	"atm/bank/lamport"

	bolt "go.etcd.io/bbolt"
)

// saveLease stores the clock's lease in a transaction of its own.
func (b *store) saveLease(context.Context) error { return b.db.Update(b.storeLease) }

// storeLease writes the clock plus the lease into tx, never lowering what
// the file holds, and reports it to the lease once the transaction has
// committed. The writer calls it in every transaction.
func (b *store) storeLease(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	old, err := readU64(meta, keyClock)
	if err != nil {
		return err
	}
	v := max(old, min(b.lease.Target(), lamport.MaxTS))
	if err := putU64(meta, keyClock, v); err != nil {
		return err
	}
	tx.OnCommit(func() { b.lease.Stored(v) })
	return nil
}

// storeExactClock records the clock's value itself, for a clean Close: no
// tick can follow, so no lease is needed.
func (b *store) storeExactClock() error {
	<-b.lease.Stopped()
	return b.db.Update(func(tx *bolt.Tx) error {
		return putU64(tx.Bucket(bucketMeta), keyClock, b.clock.Now())
	})
}
