package archive

import (
	"context"
	"errors"
	"fmt"

	"atm/bank"
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
	// ChainEvents reads at most limit live events of a chain above
	// timestamp after, in order.
	ChainEvents(ctx context.Context, chain string, after uint64, limit int) ([]bank.Event, error)
	// Forget deletes the events of an archived segment from the live log
	// and records its end as where the live log starts, at once.
	Forget(ctx context.Context, seg Segment) error
}

// Options tell Run what to archive.
type Options struct {
	Dir   string // the archive's directory (it must exist)
	Keep  int    // events that stay live at least
	Per   int    // events per segment; default 50 000
	Chain Chain  // the chain rule; nil: hashes are not checked
	// Hash returns the chain's hash after an event as the store recorded
	// it; nil: no hashes.
	Hash func(bank.Event) string
}

// Result says what Run archived.
type Result struct {
	Segments []Segment
	Events   int
}

// Run moves the oldest events of the store's live log into new segments
// of the archive, keeping at least o.Keep live. Each segment is written
// durably and checked (Write) before its events are deleted from the store
// (Store.Forget), so a crash between the two loses nothing; and Run first
// finishes what a crash left: a segment already written whose events are
// still live is forgotten without being written again, so nothing is
// archived twice.
func Run(ctx context.Context, st Store, o Options) (Result, error) {
	var res Result
	if o.Per <= 0 {
		o.Per = 50_000
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
		h, err := checkSegment(o.Dir, end.Name, o.Chain)
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
			res.Events += seg.Count
			m = Mark{Through: seg.Last, Hash: seg.Hash}
		}
	}
	return res, nil
}

var errNothing = errors.New("nothing to archive")

// archiveOne archives the next segment of proc's live log, after m and up
// to upTo.
func archiveOne(ctx context.Context, st Store, o Options, proc string, m Mark, upTo uint64) (Segment, error) {
	var events []bank.Event
	after := m.Through
	for len(events) < o.Per {
		page, err := st.ChainEvents(ctx, proc, after, min(1000, o.Per-len(events)))
		if err != nil {
			return Segment{}, err
		}
		done := len(page) == 0
		for _, e := range page {
			if e.TS > upTo {
				done = true
				break
			}
			events = append(events, e)
			after = e.TS
		}
		if done {
			break
		}
	}
	if len(events) == 0 {
		return Segment{}, errNothing
	}
	last := ""
	if o.Hash != nil {
		last = o.Hash(events[len(events)-1])
	}
	seg, err := Write(o.Dir, proc, events, m.Hash, last, o.Chain)
	if err != nil {
		return seg, err
	}
	if err := st.Forget(ctx, seg); err != nil {
		return seg, fmt.Errorf("archive: forget the events of %s: %w", seg.Name, err)
	}
	return seg, nil
}
