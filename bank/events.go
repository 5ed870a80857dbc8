package bank

import (
	bolt "go.etcd.io/bbolt"
)

// EventsAfter returns at most limit events of the log with timestamps above
// after, oldest first, read in one consistent read transaction. It is how
// a running server hands its log to an operator.
func (b *Bank) EventsAfter(after uint64, limit int) ([]Event, error) {
	var out []Event
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(u64key(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			ts, err := eventKey(k)
			if err != nil {
				return err
			}
			e, _, _, err := decodeEvent(ts, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
