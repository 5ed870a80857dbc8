// Package archive keeps the bank's archived history: events moved out of
// the live store, in append-only, compressed segment files in a directory.
//
// A segment holds consecutive records of one chain of hashes (a bank kept
// in one file has one; a bank kept in etcd one per server), exactly as the
// store kept them, so that their hashes (bank.ChainSum) check as they did
// in the store: a header line, then one JSON line per record (Record), all
// gzip-compressed. The store's Codec reads events from them. Its file name, "<proc>-<first ts, 20 digits>-<last ts,
// 20 digits>.events.gz", says what it holds; the header repeats it, with
// the number of records, the hash of the chain before the first record
// and the hash after the last. Segments are written whole to a temporary file,
// fsynced, renamed into place and the directory fsynced (Write), so a
// segment either exists whole or not at all; Write reads it back and
// checks it before it returns. Nothing ever changes a segment once
// written.
//
// Check reads every segment and checks that each is whole (gzip's CRC),
// holds what its name and header say, that its records are chained (each
// record's hash is bank.ChainSum of the one before and its bytes), and
// that the segments of a chain follow each other: timestamps rising and
// each segment's previous hash the last one's hash. A damaged, altered,
// missing or reordered segment is named in the error.
package archive

import (
	"bufio"
	"bytes"
	"cmp"
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
	Name  string `json:"-"`     // the file name, in the directory
	Proc  string `json:"proc"`  // the chain's name
	First uint64 `json:"first"` // timestamp of the first record
	Last  uint64 `json:"last"`  // timestamp of the last record
	Count int    `json:"count"` // records
	Prev  string `json:"prev"`  // the chain's hash before the first record ("": none, the chain's start or a log kept before hashes)
	Hash  string `json:"hash"`  // the chain's hash after the last record ("": none)
}

// header is a segment's first line.
type header struct {
	Format int `json:"archive"`
	Segment
}

// A Record is one record of a chain as its store keeps it: the timestamp
// of its (first) event, which orders the chain, and its bytes.
type Record struct {
	TS  uint64 `json:"ts"`
	Raw []byte `json:"raw"`
}

// A Codec reads a store's records: their events, and their links in the
// chain of hashes (bank.Link: the bytes the hash covers and the hash).
type Codec interface {
	Decode(r Record) ([]bank.Event, bank.Link, error)
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

// Write writes records, consecutive records of chain proc that follow
// the hash prev, as a new segment of dir, durably, and checks what it
// wrote (codec reads them). A segment of the same name that already exists
// and holds the same records is taken as written (a write repeated after a
// crash); any other is an error. It returns the segment.
func Write(dir, proc string, records []Record, prev string, codec Codec) (Segment, error) {
	if len(records) == 0 {
		return Segment{}, errors.New("archive: no records to write")
	}
	last, err := chainOf(prev, records, codec)
	if err != nil {
		return Segment{}, fmt.Errorf("archive: the records to archive: %w", err)
	}
	seg := Segment{Proc: proc, First: records[0].TS, Last: records[len(records)-1].TS, Count: len(records), Prev: prev, Hash: last}
	seg.Name = name(proc, seg.First, seg.Last)
	path := filepath.Join(dir, seg.Name)
	if _, err := os.Stat(path); err == nil {
		return seg, sameSegment(dir, seg, records, codec)
	}
	tmp, err := os.CreateTemp(dir, ".segment-*")
	if err != nil {
		return seg, fmt.Errorf("archive: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeTo(tmp, seg, records); err != nil {
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
	if _, err := checkSegment(dir, seg.Name, codec); err != nil {
		return seg, err
	}
	return seg, nil
}

// chainOf checks that records follow each other on the chain from prev,
// and returns the hash after the last ("" when they are not hashed).
func chainOf(prev string, records []Record, codec Codec) (string, error) {
	hash := prev
	for i, r := range records {
		if i > 0 && r.TS <= records[i-1].TS {
			return "", fmt.Errorf("record L=%d is out of order", r.TS)
		}
		_, k, err := codec.Decode(r)
		if err != nil {
			return "", err
		}
		if hash, err = link(hash, k); err != nil {
			return "", err
		}
	}
	return hash, nil
}

// link checks one record's link after the hash prev, and returns the hash
// after it. A record without a hash may only come before any with one.
func link(prev string, k bank.Link) (string, error) {
	if !k.Hashed {
		if prev != "" {
			return "", fmt.Errorf("%s: it has no hash, but the records before it on its chain have one", k.Name)
		}
		return "", nil
	}
	var p bank.Hash
	if prev != "" {
		var err error
		if p, err = bank.ParseHash(prev); err != nil {
			return "", err
		}
	}
	if k.Prev != nil && *k.Prev != p {
		return "", fmt.Errorf("%s: it is chained to %s, not to the record before it (%s)", k.Name, short(k.Prev.String()), short(prev))
	}
	if sum := bank.ChainSum(p, k.Body); sum != k.Hash {
		return "", fmt.Errorf("%s: its bytes hash to %s, not to %s, the hash stored with it", k.Name, short(sum.String()), short(k.Hash.String()))
	}
	return k.Hash.String(), nil
}

// sameSegment checks that the segment of dir named like seg is seg, and
// holds records.
func sameSegment(dir string, seg Segment, records []Record, codec Codec) error {
	i := 0
	other := fmt.Errorf("archive segment %s: exists, with other records than the ones to archive (%w)", seg.Name, ErrDamaged)
	got, err := readRecords(dir, seg.Name, codec, func(r Record, _ []bank.Event) error {
		if i >= len(records) || r.TS != records[i].TS || !bytes.Equal(r.Raw, records[i].Raw) {
			return other
		}
		i++
		return nil
	})
	if err != nil {
		return err
	}
	if got.Segment != seg || i != len(records) {
		return other
	}
	return nil
}

func writeTo(w io.Writer, seg Segment, records []Record) error {
	zw := gzip.NewWriter(w)
	bw := bufio.NewWriter(zw)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(header{Format: 1, Segment: seg}); err != nil {
		return err
	}
	for _, r := range records {
		if err := enc.Encode(r); err != nil {
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
		return cmp.Compare(a.First, b.First)
	})
	return out, nil
}

// Read calls fn for every event of segment name in dir, in order (codec
// reads them from its records), and checks the segment whole (see Check)
// as it goes: an error that is not fn's matches ErrDamaged and names the
// segment.
func Read(dir, name string, codec Codec, fn func(bank.Event) error) (Segment, error) {
	h, err := readRecords(dir, name, codec, func(_ Record, es []bank.Event) error {
		for _, e := range es {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
	if fe, ok := err.(errFn); ok {
		err = fe.error
	}
	return h.Segment, err
}

// checkSegment reads a whole segment, checking it.
func checkSegment(dir, name string, codec Codec) (header, error) {
	return readRecords(dir, name, codec, nil)
}

// errFn marks an error of a reader's fn, returned as it is.
type errFn struct{ error }

func (e errFn) Unwrap() error { return e.error }

func readRecords(dir, name string, codec Codec, fn func(Record, []bank.Event) error) (header, error) {
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
		return h, bad("its header (%s, L=%d..%d, %d records) does not match its name", h.Proc, h.First, h.Last, h.Count)
	}
	hash := h.Prev
	var n int
	var last uint64
	for {
		var r Record
		err := dec.Decode(&r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return h, bad("record %d cannot be read: %v", n+1, err)
		}
		n++
		if (n == 1 && r.TS != h.First) || (n > 1 && r.TS <= last) || r.TS > h.Last {
			return h, bad("record L=%d is out of order", r.TS)
		}
		last = r.TS
		es, k, err := codec.Decode(r)
		if err != nil {
			return h, bad("record L=%d: %v", r.TS, err)
		}
		if hash, err = link(hash, k); err != nil {
			return h, bad("%v", err)
		}
		if fn != nil {
			if err := fn(r, es); err != nil {
				if errors.Is(err, ErrDamaged) {
					return h, err
				}
				return h, errFn{err}
			}
		}
	}
	if n != h.Count || last != h.Last {
		return h, bad("holds %d records up to L=%d, its header says %d up to L=%d", n, last, h.Count, h.Last)
	}
	if hash != h.Hash {
		return h, bad("its records end the chain at %s, its header says %s", short(hash), short(h.Hash))
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
	Records  int
	// Ends are, per process, the last segment: where its live log must
	// go on (its last timestamp and hash).
	Ends map[string]Segment
}

// Check checks every segment of dir and that each chain's segments follow
// each other: the first one starting the chain at "" (its start), each
// next one starting where the last ended, timestamps rising. fn, if not
// nil, is called with every record's link and events, chain after chain,
// in order. The error
// names the first segment that is damaged, altered, missing or out of
// order, and matches ErrDamaged.
func Check(dir string, codec Codec, fn func(bank.Link, []bank.Event) error) (Report, error) {
	rep := Report{Ends: map[string]Segment{}}
	segs, err := List(dir)
	if err != nil {
		return rep, err
	}
	for _, s := range segs {
		h, err := readRecords(dir, s.Name, codec, func(r Record, es []bank.Event) error {
			if fn == nil {
				return nil
			}
			_, k, _ := codec.Decode(r)
			return fn(k, es)
		})
		if fe, ok := err.(errFn); ok {
			return rep, fe.error
		}
		if err != nil {
			return rep, err
		}
		prev, seen := rep.Ends[s.Proc]
		switch {
		case seen && h.First <= prev.Last:
			return rep, fmt.Errorf("archive segment %s: overlaps %s (%w)", s.Name, prev.Name, ErrDamaged)
		case seen && h.Prev != prev.Hash:
			return rep, fmt.Errorf("archive segment %s: does not follow %s: a segment between them is missing, or they are out of order (%w)", s.Name, prev.Name, ErrDamaged)
		case !seen && h.Prev != "":
			return rep, fmt.Errorf("archive segment %s: the first segment of %s does not start the chain: an earlier segment is missing (%w)", s.Name, s.Proc, ErrDamaged)
		}
		rep.Ends[s.Proc] = h.Segment
		rep.Segments++
		rep.Records += h.Count
	}
	return rep, nil
}

// A Mark is where a process's live log starts: the timestamp of its last
// archived event (0: none) and the chain's hash after it.
type Mark struct {
	Through uint64
	Hash    string
}
