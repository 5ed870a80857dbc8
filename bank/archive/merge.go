package archive

import (
	"strings"

	"atm/bank"
)

// Merge checks the archive in dir as Check does, then reads it again,
// its chains side by side: event calls fn with every archived event in
// (ts, proc) order, and link, if not nil, is called with each record's
// link just before its first event. With one chain it reads the chain in
// order; with several (a bank kept in etcd, a chain per server) it merges
// them as the live log is merged.
func Merge(dir string, codec Codec, link func(bank.Link) error, event func(bank.Event) error) (Report, error) {
	rep, err := Check(dir, codec, nil)
	if err != nil {
		return rep, err
	}
	segs, err := List(dir)
	if err != nil {
		return rep, err
	}
	byProc := map[string]*mergeCursor{}
	var cursors []*mergeCursor
	for _, s := range segs {
		c := byProc[s.Proc]
		if c == nil {
			c = &mergeCursor{proc: s.Proc}
			byProc[s.Proc] = c
			cursors = append(cursors, c)
		}
		c.segs = append(c.segs, s.Name)
	}
	for {
		var best *mergeCursor
		var bestEv bank.Event
		for _, c := range cursors {
			e, ok, err := c.peek(dir, codec)
			if err != nil {
				return rep, err
			}
			if ok && (best == nil || e.TS < bestEv.TS || e.TS == bestEv.TS && strings.Compare(e.Proc, bestEv.Proc) < 0) {
				best, bestEv = c, e
			}
		}
		if best == nil {
			return rep, nil
		}
		r := &best.recs[0]
		if !r.linked {
			r.linked = true
			if link != nil {
				if err := link(r.link); err != nil {
					return rep, err
				}
			}
		}
		r.events = r.events[1:]
		if len(r.events) == 0 {
			best.recs = best.recs[1:]
		}
		if err := event(bestEv); err != nil {
			return rep, err
		}
	}
}

// mergeCursor reads one chain's segments, one segment in memory at a
// time.
type mergeCursor struct {
	proc string
	segs []string // the segments not read yet
	recs []mergeRecord
}

type mergeRecord struct {
	link   bank.Link
	events []bank.Event
	linked bool
}

// peek returns the chain's next event.
func (c *mergeCursor) peek(dir string, codec Codec) (bank.Event, bool, error) {
	for len(c.recs) == 0 && len(c.segs) > 0 {
		name := c.segs[0]
		c.segs = c.segs[1:]
		_, err := readRecords(dir, name, codec, func(r Record, es []bank.Event) error {
			_, k, _ := codec.Decode(r)
			c.recs = append(c.recs, mergeRecord{link: k, events: es})
			return nil
		})
		if fe, ok := err.(errFn); ok {
			err = fe.error
		}
		if err != nil {
			return bank.Event{}, false, err
		}
	}
	for len(c.recs) > 0 && len(c.recs[0].events) == 0 {
		c.recs = c.recs[1:] // the stores' records all hold events
	}
	if len(c.recs) == 0 {
		return bank.Event{}, false, nil
	}
	return c.recs[0].events[0], true, nil
}
