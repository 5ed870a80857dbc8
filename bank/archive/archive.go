// Package archive keeps the bank's archived history: events moved out of
// the live store, in append-only, compressed segment files in a directory.
//
// A segment holds consecutive events of one chain of hashes (a bank kept
// in one file has one, named after its process; a bank kept in etcd one
// per server): a header line, then one JSON line per event (bank.Event), all
// gzip-compressed. Its file name, "<proc>-<first ts, 20 digits>-<last ts,
// 20 digits>.events.gz", says what it holds; the header repeats it, with
// the number of events, the hash of the chain before the first event and
// the hash after the last. Segments are written whole to a temporary file,
// fsynced, renamed into place and the directory fsynced (Write), so a
// segment either exists whole or not at all; Write reads it back and
// checks it before it returns. Nothing ever changes a segment once
// written.
//
// Check reads every segment and checks that each is whole (gzip's CRC),
// holds what its name and header say, and that the segments of a process
// follow each other: timestamps rising and each segment's previous hash
// the last one's hash. A damaged, altered, missing or reordered segment is
// named in the error.
package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"atm/bank"
)

// ErrDamaged is matched by every error of Check and Read that names a
// segment that is not what it should be.
var ErrDamaged = errors.New("damaged archive")

// suffix ends every segment's file name.
const suffix = ".events.gz"

// Segment describes one segment file.
type Segment struct {
	Name  string `json:"-"` // the file name, in the directory
	Proc  string `json:"proc"`
	First uint64 `json:"first"` // timestamp of the first event
	Last  uint64 `json:"last"`  // timestamp of the last event
	Count int    `json:"count"`
	Prev  string `json:"prev"` // the chain's hash before the first event ("" at the start)
	Hash  string `json:"hash"` // the chain's hash after the last event
}

// header is a segment's first line.
type header struct {
	Format int `json:"archive"`
	Segment
}

// name is a segment's file name.
func name(proc string, first, last uint64) string {
	return fmt.Sprintf("%s-%020d-%020d%s", url.PathEscape(proc), first, last, suffix)
}

// parseName reads a segment's file name; ok is false for another file.
func parseName(n string) (s Segment, ok bool) {
	base, found := strings.CutSuffix(n, suffix)
	if !found || len(base) < 43 {
		return s, false
	}
	lastText, firstText, procText := base[len(base)-20:], base[len(base)-41:len(base)-21], base[:len(base)-42]
	if base[len(base)-21] != '-' || base[len(base)-42] != '-' {
		return s, false
	}
	first, err1 := strconv.ParseUint(firstText, 10, 64)
	last, err2 := strconv.ParseUint(lastText, 10, 64)
	proc, err3 := url.PathUnescape(procText)
	if err1 != nil || err2 != nil || err3 != nil || proc == "" {
		return s, false
	}
	return Segment{Name: n, Proc: proc, First: first, Last: last}, true
}

// Chain checks one event of a process's chain: given the hash before it,
// it returns the hash after it, or an error naming what does not match.
// The bank's own chain rule is passed in by the caller.
type Chain func(prev string, e bank.Event) (string, error)

// Write writes events, consecutive events of process proc whose chain
// starts at hash prev and ends at hash last, as a new segment of dir,
// durably, and checks what it wrote with chain (nil: no chain check). A
// segment of the same name that already exists and holds the same events
// is taken as written (a write repeated after a crash); any other is an
// error. It returns the segment.
func Write(dir, proc string, events []bank.Event, prev, last string, chain Chain) (Segment, error) {
	if len(events) == 0 {
		return Segment{}, errors.New("archive: no events to write")
	}
	seg := Segment{Proc: proc, First: events[0].TS, Last: events[len(events)-1].TS, Count: len(events), Prev: prev, Hash: last}
	seg.Name = name(proc, seg.First, seg.Last)
	path := filepath.Join(dir, seg.Name)
	if _, err := os.Stat(path); err == nil {
		return seg, sameSegment(dir, seg, events, chain)
	}
	tmp, err := os.CreateTemp(dir, ".segment-*")
	if err != nil {
		return seg, fmt.Errorf("archive: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeTo(tmp, seg, events); err != nil {
		tmp.Close()
		return seg, fmt.Errorf("archive: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return seg, fmt.Errorf("archive: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return seg, fmt.Errorf("archive: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return seg, fmt.Errorf("archive: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return seg, err
	}
	if _, err := checkSegment(dir, seg.Name, chain); err != nil {
		return seg, err
	}
	return seg, nil
}

// sameSegment checks that the segment of dir named like seg is seg, and
// holds events.
func sameSegment(dir string, seg Segment, events []bank.Event, chain Chain) error {
	i := 0
	other := fmt.Errorf("archive segment %s: exists, with other events than the ones to archive (%w)", seg.Name, ErrDamaged)
	got, err := read(dir, seg.Name, chain, func(e bank.Event) error {
		a, _ := json.Marshal(e)
		b, _ := json.Marshal(events[min(i, len(events)-1)])
		if i >= len(events) || !bytes.Equal(a, b) {
			return other
		}
		i++
		return nil
	})
	if err != nil {
		return err
	}
	if got.Segment != seg || i != len(events) {
		return other
	}
	return nil
}

func writeTo(w io.Writer, seg Segment, events []bank.Event) error {
	zw := gzip.NewWriter(w)
	bw := bufio.NewWriter(zw)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(header{Format: 1, Segment: seg}); err != nil {
		return err
	}
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return zw.Close()
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("archive: sync %s: %w", dir, err)
	}
	return nil
}

// CheckDir makes sure dir is a directory this process can write segments
// to: it exists, and a file can be created, synced and removed in it.
func CheckDir(dir string) error {
	if dir == "" {
		return errors.New("archive: no directory given")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("archive directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("archive directory %s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("archive directory %s cannot be written: %w", dir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		return fmt.Errorf("archive directory %s cannot be written: %w", dir, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("archive directory %s cannot be written: %w", dir, err)
	}
	return nil
}

// List returns the segments of dir by their names, in order: by process,
// then by first timestamp. Files that are not segments are ignored.
func List(dir string) ([]Segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	var out []Segment
	for _, de := range ents {
		if s, ok := parseName(de.Name()); ok && de.Type().IsRegular() {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Segment) int {
		if c := strings.Compare(a.Proc, b.Proc); c != 0 {
			return c
		}
		return compareU64(a.First, b.First)
	})
	return out, nil
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Read calls fn for every event of segment name in dir, in order, and
// checks the segment whole (see Check) as it goes: an error that is not
// fn's matches ErrDamaged and names the segment.
func Read(dir, name string, fn func(bank.Event) error) (Segment, error) {
	h, err := read(dir, name, nil, fn)
	return h.Segment, err
}

// checkSegment reads a whole segment, checking it.
func checkSegment(dir, name string, chain Chain) (header, error) {
	return read(dir, name, chain, nil)
}

func read(dir, name string, chain Chain, fn func(bank.Event) error) (header, error) {
	var h header
	want, ok := parseName(name)
	if !ok {
		return h, fmt.Errorf("archive: %s is not the name of a segment", name)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("archive segment %s: %s (%w)", name, fmt.Sprintf(format, a...), ErrDamaged)
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return h, bad("missing")
		}
		return h, fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return h, bad("not a gzip file: %v", err)
	}
	dec := json.NewDecoder(zr)
	if err := dec.Decode(&h); err != nil || h.Format != 1 {
		return h, bad("no segment header: %v", err)
	}
	h.Name = name
	if h.Proc != want.Proc || h.First != want.First || h.Last != want.Last || h.Count <= 0 {
		return h, bad("its header (%s, L=%d..%d, %d events) does not match its name", h.Proc, h.First, h.Last, h.Count)
	}
	hash := h.Prev
	var n int
	var last uint64
	for {
		var e bank.Event
		err := dec.Decode(&e)
		if err == io.EOF {
			break
		}
		if err != nil {
			return h, bad("event %d cannot be read: %v", n+1, err)
		}
		n++
		if (n == 1 && e.TS != h.First) || (n > 1 && e.TS <= last) || e.TS > h.Last {
			return h, bad("event L=%d is out of order", e.TS)
		}
		last = e.TS
		if chain != nil {
			if hash, err = chain(hash, e); err != nil {
				return h, bad("event L=%d of %s: %v", e.TS, e.Proc, err)
			}
		}
		if fn != nil {
			if err := fn(e); err != nil {
				return h, err
			}
		}
	}
	if n != h.Count || last != h.Last {
		return h, bad("holds %d events up to L=%d, its header says %d up to L=%d", n, last, h.Count, h.Last)
	}
	if chain != nil && hash != h.Hash {
		return h, bad("its events end the chain at %s, its header says %s", short(hash), short(h.Hash))
	}
	return h, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(the start)"
	}
	return h
}

// Report is what Check found.
type Report struct {
	Segments int
	Events   int
	// Ends are, per process, the last segment: where its live log must
	// go on (its last timestamp and hash).
	Ends map[string]Segment
}

// Check checks every segment of dir and that each process's segments
// follow each other: the first one starting the chain at "" (or at
// start[proc] when given), each next one starting where the last ended,
// timestamps rising. The error names the first segment that is damaged,
// altered, missing or out of order, and matches ErrDamaged.
func Check(dir string, chain Chain, start map[string]string) (Report, error) {
	rep := Report{Ends: map[string]Segment{}}
	segs, err := List(dir)
	if err != nil {
		return rep, err
	}
	for _, s := range segs {
		h, err := checkSegment(dir, s.Name, chain)
		if err != nil {
			return rep, err
		}
		prev, seen := rep.Ends[s.Proc]
		switch {
		case seen && h.First <= prev.Last:
			return rep, fmt.Errorf("archive segment %s: overlaps %s (%w)", s.Name, prev.Name, ErrDamaged)
		case seen && h.Prev != prev.Hash:
			return rep, fmt.Errorf("archive segment %s: does not follow %s: a segment between them is missing, or they are out of order (%w)", s.Name, prev.Name, ErrDamaged)
		case !seen && h.Prev != start[s.Proc]:
			return rep, fmt.Errorf("archive segment %s: the first segment of %s does not start the chain: an earlier segment is missing (%w)", s.Name, s.Proc, ErrDamaged)
		}
		rep.Ends[s.Proc] = h.Segment
		rep.Segments++
		rep.Events += h.Count
	}
	return rep, nil
}

// A Mark is where a process's live log starts: the timestamp of its last
// archived event (0: none) and the chain's hash after it.
type Mark struct {
	Through uint64
	Hash    string
}
