package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Statement marks.
//
// An account's statement entries form a chain through the log, newest
// first: each entry carries the timestamp of the account's previous one,
// and the account's state holds the newest. A page from the newest entry,
// or from the cursor of the page before (which points just above the entry
// it starts at), is read directly from the chain. A page from any other
// cursor starts at the newest entry below it, which the chain alone finds
// only by walking down from the newest entry: every entry of the account
// in the worst case.
//
// So every markEvery-th entry of an account (its 32nd, 64th, ..., counted
// from its open event by the count in its state) is also a key of the
// marks bucket: the account and the entry's timestamp (markKey). A
// statement seeks the oldest mark at or above its cursor; the entry sought
// is at most markEvery links down the chain from it, or, when no mark is
// at or above the cursor, from the newest entry. A statement thus costs a
// seek, at most markEvery links and its page, whatever the cursor and the
// length of the account's history.
//
// A mark is written in the transaction of its entry, so marks and log
// never disagree. One key of about 30 bytes for markEvery entries keeps
// the file's growth and the dirty pages of a transaction small: a key per
// entry would dirty a page of the index for nearly every account a
// transaction touches.
const markEvery = 32

// markKey is the key of the mark of account id's entry at ts: the length
// of id, id, and ts big-endian, so that an account's marks are adjacent
// and in timestamp order.
func markKey(id string, ts uint64) []byte {
	k := make([]byte, 0, 1+len(id)+8)
	k = markPrefix(k, id)
	return binary.BigEndian.AppendUint64(k, ts)
}

func markPrefix(dst []byte, id string) []byte {
	dst = append(dst, byte(len(id)))
	return append(dst, id...)
}

// committedMark returns the oldest mark of account id at or above before
// in b, 0 when there is none.
func committedMark(b *bolt.Bucket, id string, before uint64) (uint64, error) {
	k, _ := b.Cursor().Seek(markKey(id, before))
	prefix := markPrefix(nil, id)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return 0, nil
	}
	if len(k) != len(prefix)+8 {
		return 0, fmt.Errorf("statement marks: key %x is %d bytes, not %d (damaged file)", k, len(k), len(prefix)+8)
	}
	return binary.BigEndian.Uint64(k[len(prefix):]), nil
}

// pendingMark is a mark written by a batch not yet known to be on disk.
type pendingMark struct {
	ts, seq uint64
}
