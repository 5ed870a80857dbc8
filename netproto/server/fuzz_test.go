package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
	"unicode/utf8"

	"atm/netproto/wire"

	"atm/bank/outcome"
)

// FuzzDecode feeds arbitrary bytes through the server's decoding path: line
// framing with a length limit, JSON decoding of the wire.Message and the amount
// parser. It must never panic, never return a line longer than the limit or
// one holding a newline, and what it accepts must survive a round trip.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"type":"login","id":"r1","proc":"atm-1","ts":1,"account":"123","pin":"1234"}`,
		`{"type":"deposit","id":"r2","proc":"atm-1","ts":2,"amount":5000}`,
		`{"type":"transfer","id":"r3","proc":"atm-1","ts":3,"to":"456","amount":1}`,
		`{"type":"withdraw","id":"r4","proc":"atm-1","ts":4,"amount":9223372036854775807}`,
		`{"type":"withdraw","id":"r5","proc":"atm-1","ts":5,"amount":9223372036854775808}`,
		`{"type":"deposit","id":"r6","amount":-1}`,
		`{"type":"deposit","id":"r7","amount":1.5}`,
		`{"type":"deposit","id":"r8","amount":1e3}`,
		`{"type":"deposit","id":"r9","amount":"100"}`,
		`{"type":"statement","id":"s","before":18446744073709551615,"limit":-1}`,
		`{"type":"audit","id":"a","token":"x"}`,
		"{\"type\":\"balance\",\"id\":\"b\"}\r\n{\"type\":\"logout\",\"id\":\"c\"}\n",
		`{"type":`,
		`[[[[[[[[[[]]]]]]]]]]`,
		"\x00\xff\xfe\n\n",
		`{"type":"deposit","id":"\ud800","amount":0}`,
		`{"ts":-1}`,
		`{"ts":"1"}`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 256
		br := bufio.NewReaderSize(bytes.NewReader(data), 16)
		var scratch []byte
		for range 1 + len(data) {
			line, err := wire.ReadLine(br, max, &scratch)
			if err != nil {
				if errors.Is(err, wire.ErrLineTooLong) || err == io.EOF {
					return
				}
				t.Fatalf("readLine: unexpected error %v", err)
			}
			if len(line) > max {
				t.Fatalf("readLine returned %d bytes, over the limit of %d", len(line), max)
			}
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("readLine returned a line holding a newline: %q", line)
			}
			decodeLine(t, line)
		}
		t.Fatalf("readLine did not reach the end of %d bytes", len(data))
	})
}

// decodeLine checks one framed line the way the server reads it.
func decodeLine(t *testing.T, line []byte) {
	// The server's own reading: never a panic; a line it accepts is valid
	// UTF-8 JSON whose request decodes the same way.
	d := decodeRequest(line)
	if d.req == nil {
		t.Fatalf("decodeRequest returned no request for %q", line)
	}
	if d.fault == nil {
		if !utf8.Valid(line) || !json.Valid(line) {
			t.Fatalf("decodeRequest accepted a line that is not valid UTF-8 JSON: %q", line)
		}
	}
	var m wire.Message
	if err := json.Unmarshal(line, &m); err != nil {
		return
	}
	if m.Amount != "" {
		if c, err := m.Amount.Cents(); err == nil {
			if back, err := wire.AmountOf(c).Cents(); err != nil || back != c {
				t.Fatalf("amount %q parsed to %d, which reads back as %d (%v)", m.Amount, c, back, err)
			}
		} else if !errors.Is(err, outcome.ErrInvalidAmount) {
			t.Fatalf("amount %q: error %v does not match ErrInvalidAmount", m.Amount, err)
		}
	}
	out, err := json.Marshal(&m)
	if err != nil {
		t.Fatalf("a decoded wire.Message does not encode: %v", err)
	}
	var again wire.Message
	if err := json.Unmarshal(out, &again); err != nil {
		t.Fatalf("an encoded wire.Message does not decode: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(normal(m), normal(again)) {
		t.Fatalf("round trip changed the wire.Message:\n%+v\n%+v", m, again)
	}
}

// normal clears what JSON cannot round-trip exactly: empty slices become
// absent and times lose their monotonic reading.
func normal(m wire.Message) wire.Message {
	if len(m.Entries) == 0 {
		m.Entries = nil
	}
	if len(m.Accounts) == 0 {
		m.Accounts = nil
	}
	if len(m.Negative) == 0 {
		m.Negative = nil
	}
	for i := range m.Entries {
		m.Entries[i].Wall = m.Entries[i].Wall.Round(0)
	}
	m.Until = m.Until.Round(0)
	return m
}
