package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"atm/bank"
	"atm/bank/archive"

	bolt "go.etcd.io/bbolt"
)

// Archiving. Events older than the live log's start have been moved to an
// archive (package archive) and deleted from the file; the meta bucket
// records where the live log starts (keyArchived, keyArchivedHash), in the
// transaction that deletes them. bbolt reuses the freed pages, so the file
// stops growing once archiving keeps pace; it shrinks only when copied
// (bbolt's compaction: `bbolt compact`, with the server stopped).

var (
	keyArchived     = []byte("archived")      // 8 bytes: the last archived event's ts; absent: none
	keyArchivedHash = []byte("archived_hash") // the chain's hash after it
)

// ChainName names the file's one chain of events in its archive: the
// events of every process that served the file, in timestamp order.
const ChainName = "bank"

// Live returns where the live log starts: the last archived event and the
// chain's hash after it.
func (b *Bank) Live(context.Context) (map[string]archive.Mark, error) {
	var m archive.Mark
	err := b.s.db.View(func(tx *bolt.Tx) error {
		var err error
		m, err = liveMark(tx)
		return err
	})
	return map[string]archive.Mark{ChainName: m}, err
}

func liveMark(tx *bolt.Tx) (archive.Mark, error) {
	meta := tx.Bucket(bucketMeta)
	through, err := readU64(meta, keyArchived)
	return archive.Mark{Through: through, Hash: string(meta.Get(keyArchivedHash))}, err
}

// ArchiveUpTo returns the newest timestamp the live log may be archived
// through, so that at least keep events stay live, every remembered
// request's first event (Options.RememberRequests, the last money
// requests) stays, and so does the newest checkpoint, from which verify
// starts: 0 when nothing may be archived (no checkpoint yet).
func (b *Bank) ArchiveUpTo(_ context.Context, keep int) (map[string]uint64, error) {
	var upTo uint64
	err := b.s.db.View(func(tx *bolt.Tx) error {
		cp, err := lastCheckpoint(tx)
		if err != nil || cp == nil {
			return err
		}
		c := tx.Bucket(bucketEvents).Cursor()
		n, money := 0, 0
		k, v := c.Last()
		for ; k != nil; k, v = c.Prev() {
			kind, _, req, ok := eventHead(v)
			if !ok {
				ts, _ := eventKey(k)
				return fmt.Errorf("event log: event %d: unknown encoding (damaged file)", ts)
			}
			if bank.Kind(kind).IsMoney() && len(req) > 0 {
				money++
			}
			n++
			if n > keep && money >= b.s.opts.RememberRequests {
				break
			}
		}
		if k == nil {
			return nil // the whole log must stay
		}
		// k is the newest event that may go.
		ts, err := eventKey(k)
		upTo = min(ts, cp.Event.TS-1)
		return err
	})
	return map[string]uint64{ChainName: upTo}, err
}

// forgetMarks deletes the statement marks of entries at or below through
// (archived: statements stop above them), account by account, so that the
// marks, like the log, hold the live history only.
func forgetMarks(tx *bolt.Tx, through uint64) error {
	marks := tx.Bucket(bucketMarks)
	if marks == nil {
		return nil
	}
	c := marks.Cursor()
	return tx.Bucket(bucketState).ForEach(func(id, _ []byte) error {
		prefix := markPrefix(nil, string(id))
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, _ = c.Seek(prefix) {
			if binary.BigEndian.Uint64(k[len(prefix):]) > through {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// ChainRecords reads at most limit live records above timestamp after,
// as stored: one event each.
func (b *Bank) ChainRecords(_ context.Context, _ string, after uint64, limit int) ([]archive.Record, error) {
	var out []archive.Record
	err := b.s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(u64key(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			ts, err := eventKey(k)
			if err != nil {
				return err
			}
			out = append(out, archive.Record{TS: ts, Raw: bytes.Clone(v)})
		}
		return nil
	})
	return out, err
}

// Decode reads an archived record of a bank kept in a file: its event,
// and its link in the chain (archive.Codec).
func (b *Bank) Decode(r archive.Record) ([]bank.Event, bank.Link, error) { return Codec.Decode(r) }

// Codec reads the archived records of a bank kept in a file, without the
// file (atm log --archive, atm verify --archive).
var Codec archive.Codec = codec{}

type codec struct{}

func (codec) Decode(r archive.Record) ([]bank.Event, bank.Link, error) {
	e, _, _, err := decodeEvent(r.TS, r.Raw)
	if err != nil {
		return nil, bank.Link{}, err
	}
	return []bank.Event{e}, recordLink(u64key(r.TS), r.Raw), nil
}

// Forget deletes the events of seg, an archived segment of this bank, from
// the file, and records its end as where the live log starts, in one
// transaction. A segment already forgotten is nothing to do; a segment
// that does not start right after the live log's start is refused.
func (b *Bank) Forget(_ context.Context, seg archive.Segment) error {
	if seg.Proc != ChainName {
		return fmt.Errorf("archive segment %s is of chain %s, not of a bank kept in a file (%s)", seg.Name, seg.Proc, ChainName)
	}
	// Statements stop at the live log's start: move it first, so that
	// none looks for an event being deleted.
	was := b.s.archived.Load()
	b.s.archived.Store(max(was, seg.Last))
	err := b.s.db.Update(func(tx *bolt.Tx) error {
		m, err := liveMark(tx)
		if err != nil {
			return err
		}
		if seg.Last <= m.Through {
			return nil
		}
		if seg.Prev != m.Hash {
			return fmt.Errorf("archive segment %s does not start where the live log does (after L=%d): %w", seg.Name, m.Through, archive.ErrDamaged)
		}
		c := tx.Bucket(bucketEvents).Cursor()
		n := 0
		// Each deletion seeks again from the start: the events before
		// it are gone (a cursor's Next after Delete skips a key).
		start := u64key(m.Through + 1)
		for k, _ := c.Seek(start); k != nil; k, _ = c.Seek(start) {
			ts, err := eventKey(k)
			if err != nil {
				return err
			}
			if ts > seg.Last {
				break
			}
			if n == 0 && ts != seg.First {
				return fmt.Errorf("archive segment %s starts at L=%d, the live log at L=%d: %w", seg.Name, seg.First, ts, archive.ErrDamaged)
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		if n != seg.Count {
			return fmt.Errorf("archive segment %s holds %d events, the live log %d in its range: %w", seg.Name, seg.Count, n, archive.ErrDamaged)
		}
		if err := forgetMarks(tx, seg.Last); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if err := putU64(meta, keyArchived, seg.Last); err != nil {
			return err
		}
		return meta.Put(keyArchivedHash, []byte(seg.Hash))
	})
	if err != nil {
		b.s.archived.Store(was)
	}
	return err
}

// Compact copies the bank in the file at src into a new file at dst, with
// no free pages: after archiving, the copy is as small as the live bank.
// src must not be held by a server; dst must not exist. The copy is
// synced to disk before Compact returns; src is left as it was.
func Compact(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("%s exists: compact into a new file", dst)
	}
	from, err := bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return openError(src, err)
	}
	defer from.Close()
	if err := from.View(checkBank); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	to, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	if err := bolt.Compact(to, from, 64<<20); err != nil {
		to.Close()
		os.Remove(dst)
		return fmt.Errorf("compact %s into %s: %w", src, dst, err)
	}
	if err := to.Sync(); err != nil {
		to.Close()
		return err
	}
	return to.Close()
}
