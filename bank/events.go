package bank

import (
	"encoding/binary"
	"fmt"

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

// eventKey reads the timestamp of a stored event's key, refusing a key of
// the wrong length (a damaged file).
func eventKey(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("event log: key %x is %d bytes, not 8 (damaged file)", k, len(k))
	}
	return binary.BigEndian.Uint64(k), nil
}
