package archive_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"atm/bank"
	"atm/bank/archive"
)

// rec is a record of the tests' store: an event and the chain's hash
// after it, the hash of the event's JSON chained to the record before.
type rec struct {
	E    bank.Event `json:"e"`
	Hash string     `json:"h"`
}

// codec reads the tests' records.
type codec struct{}

func (codec) Decode(r archive.Record) ([]bank.Event, bank.Link, error) {
	var x rec
	if err := json.Unmarshal(r.Raw, &x); err != nil {
		return nil, bank.Link{}, err
	}
	body, _ := json.Marshal(x.E)
	h, err := bank.ParseHash(x.Hash)
	if err != nil {
		return nil, bank.Link{}, err
	}
	return []bank.Event{x.E}, bank.Link{Name: fmt.Sprintf("event L=%d", x.E.TS), Hashed: true, Body: body, Hash: h}, nil
}

// records makes n records of deposits from timestamp first, every other
// timestamp, chained after prev; it returns them and the hash after them.
func records(first uint64, n int, prev string) ([]archive.Record, string) {
	var out []archive.Record
	var p bank.Hash
	if prev != "" {
		p, _ = bank.ParseHash(prev)
	}
	for i := range n {
		e := bank.Event{TS: first + 2*uint64(i), Proc: "bank", Kind: bank.KindDeposit, Amount: 100, Account: "123", Outcome: "ok"}
		body, _ := json.Marshal(e)
		p = bank.ChainSum(p, body)
		raw, _ := json.Marshal(rec{E: e, Hash: p.String()})
		out = append(out, archive.Record{TS: e.TS, Raw: raw})
	}
	return out, p.String()
}

// archiveOf writes segs segments of 50 records of chain "bank" to a new
// directory and returns it with the segments.
func archiveOf(t *testing.T, segs int) (string, []archive.Segment) {
	t.Helper()
	dir := t.TempDir()
	var out []archive.Segment
	prev, ts := "", uint64(1)
	for range segs {
		rs, last := records(ts, 50, prev)
		s, err := archive.Write(dir, "bank", rs, prev, codec{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Hash != last {
			t.Fatalf("segment %s ends at %s, want %s", s.Name, s.Hash, last)
		}
		out = append(out, s)
		prev, ts = last, rs[len(rs)-1].TS+1
	}
	return dir, out
}

func TestSegmentsAreWrittenReadAndChecked(t *testing.T) {
	t.Parallel()
	dir, segs := archiveOf(t, 3)
	rep, err := archive.Check(dir, codec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Segments != 3 || rep.Records != 150 || rep.Ends["bank"].Hash != segs[2].Hash {
		t.Fatalf("check: %+v", rep)
	}
	var got []uint64
	for _, s := range segs {
		if _, err := archive.Read(dir, s.Name, codec{}, func(e bank.Event) error { got = append(got, e.TS); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 150 || got[0] != 1 || got[149] != 297 {
		t.Fatalf("read %d events, %v..%v", len(got), got[0], got[len(got)-1])
	}
	// Writing the same segment again (after a crash before the store
	// forgot its events) is taken as done; other events under the same
	// name are not.
	rs, _ := records(1, 50, "")
	if _, err := archive.Write(dir, "bank", rs, "", codec{}); err != nil {
		t.Fatalf("the same segment again: %v", err)
	}
	other, _ := records(1, 50, segs[2].Hash)
	if _, err := archive.Write(dir, "bank", other, segs[2].Hash, codec{}); !errors.Is(err, archive.ErrDamaged) {
		t.Fatalf("other records under the same name: %v", err)
	}
	// Records that do not chain are refused before anything is written.
	rs[3].Raw = bytes.Replace(rs[3].Raw, []byte(`"amount":100`), []byte(`"amount":900`), 1)
	if _, err := archive.Write(t.TempDir(), "bank", rs, "", codec{}); err == nil || !strings.Contains(err.Error(), "L=7") {
		t.Fatalf("records that do not chain: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// A damaged, altered, missing or reordered segment is named, and the
// check fails.
func TestDamageIsNamed(t *testing.T) {
	t.Parallel()
	cases := map[string]func(t *testing.T, dir string, segs []archive.Segment) string{
		"a flipped byte": func(t *testing.T, dir string, segs []archive.Segment) string {
			p := filepath.Join(dir, segs[1].Name)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x01
			os.WriteFile(p, b, 0o644)
			return segs[1].Name
		},
		"truncated": func(t *testing.T, dir string, segs []archive.Segment) string {
			p := filepath.Join(dir, segs[2].Name)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-9], 0o644)
			return segs[2].Name
		},
		"an altered event, recompressed": func(t *testing.T, dir string, segs []archive.Segment) string {
			p := filepath.Join(dir, segs[1].Name)
			lines := strings.Split(gunzip(t, p), "\n")
			var r archive.Record
			json.Unmarshal([]byte(lines[5]), &r)
			r.Raw = bytes.Replace(r.Raw, []byte(`"amount":100`), []byte(`"amount":900`), 1)
			b, _ := json.Marshal(r)
			lines[5] = string(b)
			gzipTo(t, p, strings.Join(lines, "\n"))
			return segs[1].Name
		},
		"a missing segment": func(t *testing.T, dir string, segs []archive.Segment) string {
			os.Remove(filepath.Join(dir, segs[1].Name))
			return segs[2].Name
		},
		"a missing first segment": func(t *testing.T, dir string, segs []archive.Segment) string {
			os.Remove(filepath.Join(dir, segs[0].Name))
			return segs[1].Name
		},
		"two segments swapped": func(t *testing.T, dir string, segs []archive.Segment) string {
			a, b := filepath.Join(dir, segs[0].Name), filepath.Join(dir, segs[1].Name)
			os.Rename(a, a+".x")
			os.Rename(b, a)
			os.Rename(a+".x", b)
			return segs[0].Name
		},
	}
	for what, damage := range cases {
		t.Run(what, func(t *testing.T) {
			t.Parallel()
			dir, segs := archiveOf(t, 3)
			named := damage(t, dir, segs)
			_, err := archive.Check(dir, codec{}, nil)
			if !errors.Is(err, archive.ErrDamaged) || !strings.Contains(err.Error(), named) {
				t.Fatalf("check after %s: %v, want an error naming %s", what, err, named)
			}
		})
	}
}

func gunzip(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func gzipTo(t *testing.T, p, text string) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(text))
	zw.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A directory that is missing, not a directory, or full is refused with
// a clear error, and nothing is left in it.
func TestBadDirectories(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope")
	if err := archive.CheckDir(missing); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("missing directory: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if err := archive.CheckDir(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("a file: %v", err)
	}
	rs, _ := records(1, 50, "")
	if _, err := archive.Write(missing, "bank", rs, "", codec{}); err == nil {
		t.Fatal("wrote to a missing directory")
	}
	full := fullDir(t)
	if err := archive.CheckDir(full); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a full directory: %v", err)
	}
	many, _ := records(1, 20_000, "")
	if _, err := archive.Write(full, "bank", many, "", codec{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing to a full directory: %v", err)
	}
	if left, _ := os.ReadDir(full); len(left) != 1 { // the filler
		t.Fatalf("left in the full directory: %v", left)
	}
}

// fullDir mounts a small tmpfs of its own, fills it, and unmounts it at
// the end of the test.
func fullDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a small tmpfs (the test needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	return dir
}
