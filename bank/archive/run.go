package archive

import (
	"context"
	"errors"
	"fmt"
)

// A Store is a live log that can be archived. Its events form one chain
// of hashes or several (a bank kept in one file: one; in etcd: one per
// server), each named: a segment holds events of one chain.
type Store interface {
	// Live returns, per chain, where its live log starts.
	Live(ctx context.Context) (map[string]Mark, error)
	// ArchiveUpTo returns, per chain, the newest timestamp that may be
	// archived while keep events stay live (and whatever else the store
	// must keep: remembered requests, the newest checkpoint's state); 0:
	// none.
	ArchiveUpTo(ctx context.Context, keep int) (map[string]uint64, error)
	// ChainRecords reads at most limit live records of a chain above
	// timestamp after, in order, as the store keeps them.
	ChainRecords(ctx context.Context, chain string, after uint64, limit int) ([]Record, error)
	// Codec reads the store's records.
	Codec
	// Forget deletes the events of an archived segment from the live log
	// and records its end as where the live log starts, at once.
	Forget(ctx context.Context, seg Segment) error
}

// Options tell Run what to archive.
type Options struct {
	Dir  string // the archive's directory (it must exist)
	Keep int    // events that stay live at least
	Per  int    // records per segment; default 20 000
}

// Result says what Run archived.
type Result struct {
	Segments []Segment
	Records  int
}

// Run moves the oldest records of the store's live log into new segments
// of the archive, keeping at least o.Keep live. Each segment is written
// durably and checked (Write) before its events are deleted from the store
// (Store.Forget), so a crash between the two loses nothing; and Run first
// finishes what a crash left: a segment already written whose events are
// still live is forgotten without being written again, so nothing is
// archived twice.
func Run(ctx context.Context, st Store, o Options) (Result, error) {
	var res Result
	if o.Per <= 0 {
		o.Per = 20_000
	}
	if err := CheckDir(o.Dir); err != nil {
		return res, err
	}
	marks, err := st.Live(ctx)
	if err != nil {
		return res, err
	}
	segs, err := List(o.Dir)
	if err != nil {
		return res, err
	}
	// Finish what a crash left: the newest segment of a process past its
	// live log's start.
	ends := map[string]Segment{}
	for _, s := range segs {
		ends[s.Proc] = s
	}
	for proc, end := range ends {
		m := marks[proc]
		if end.Last <= m.Through {
			continue
		}
		h, err := checkSegment(o.Dir, end.Name, st)
		if err != nil {
			return res, err
		}
		if err := st.Forget(ctx, h.Segment); err != nil {
			return res, fmt.Errorf("archive: forget the events of %s: %w", end.Name, err)
		}
		marks[proc] = Mark{Through: h.Last, Hash: h.Hash}
	}
	upTo, err := st.ArchiveUpTo(ctx, o.Keep)
	if err != nil {
		return res, err
	}
	for proc, m := range marks {
		for m.Through < upTo[proc] {
			seg, err := archiveOne(ctx, st, o, proc, m, upTo[proc])
			if errors.Is(err, errNothing) {
				break
			}
			if err != nil {
				return res, err
			}
			res.Segments = append(res.Segments, seg)
			res.Records += seg.Count
			m = Mark{Through: seg.Last, Hash: seg.Hash}
		}
	}
	return res, nil
}

var errNothing = errors.New("nothing to archive")

// archiveOne archives the next segment of proc's live log, after m and up
// to upTo.
func archiveOne(ctx context.Context, st Store, o Options, proc string, m Mark, upTo uint64) (Segment, error) {
	var records []Record
	after := m.Through
	for len(records) < o.Per {
		page, err := st.ChainRecords(ctx, proc, after, min(1000, o.Per-len(records)))
		if err != nil {
			return Segment{}, err
		}
		done := len(page) == 0
		for _, r := range page {
			if r.TS > upTo {
				done = true
				break
			}
			records = append(records, r)
			after = r.TS
		}
		if done {
			break
		}
	}
	if len(records) == 0 {
		return Segment{}, errNothing
	}
	seg, err := Write(o.Dir, proc, records, m.Hash, st)
	if err != nil {
		return seg, err
	}
	if err := st.Forget(ctx, seg); err != nil {
		return seg, fmt.Errorf("archive: forget the records of %s: %w", seg.Name, err)
	}
	return seg, nil
}
