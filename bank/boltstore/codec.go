package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"atm/bank"
	"atm/bank/money"
	"atm/bank/outcome"
)

// On-disk encodings. Events and account states are written on every
// operation, so they use a compact binary form instead of JSON: a smaller
// record means fewer dirty pages per transaction and less to fsync.

// formatVersion is stored in the meta bucket. Format 3: events carry their
// chain's hash, checkpoints are kept beside the log, statement marks (see
// marks.go) and each account's entry count are in its state. A file of
// format 2 (events without a hash, no checkpoints, no marks) is read as it
// is by OpenReadOnly; Open upgrades it (see upgrade.go: marks and counts
// from the log) and marks it 3, leaving its events as they were, so its
// chain starts at the first event written after. A file of another format
// is refused.
const (
	formatVersion   = 3
	formatUnchained = 2
	formatNoMarks   = formatUnchained
)

// eventVersion is the first byte of every stored event: 1, or 2 for an
// event that carries receive reports (Event.Seen), appended after the
// fields of version 1, or 3 for one that also carries an Origin, after
// the reports (their count may be 0). With eventHashed set (every event
// written since format 3), the record ends with its hash: SHA-256 of the
// previous event's hash, then the event's 8-byte key and its record
// before the hash (see bank.ChainSum).
const (
	eventVersion       = 1
	eventVersionSeen   = 2
	eventVersionOrigin = 3
	eventHashed        = 0x80
)

// splitHash splits a stored event into its record and its hash, and
// reports whether it has one.
func splitHash(b []byte) (rec []byte, sum bank.Hash, hashed bool) {
	if len(b) == 0 || b[0]&eventHashed == 0 {
		return b, sum, false
	}
	if len(b) < 1+len(sum) {
		return b[:1], sum, true // too short: decodes as a truncated record
	}
	n := len(b) - len(sum)
	copy(sum[:], b[n:])
	return b[:n], sum, true
}

// recordLink returns a stored event as a link of the log's chain, named
// after the event it holds (its record as stored, decoded if it can be).
func recordLink(key, val []byte) bank.Link {
	ts := binary.BigEndian.Uint64(key)
	rec, sum, hashed := splitHash(val)
	name := fmt.Sprintf("event L=%d", ts)
	if e, _, _, err := decodeEvent(ts, val); err == nil {
		name = fmt.Sprintf("event L=%d/%s %s", ts, e.Proc, e.Kind)
	}
	k := bank.Link{Name: name, Hashed: hashed}
	if hashed {
		k.Body = append(append(make([]byte, 0, len(key)+len(rec)), key...), rec...)
		k.Hash = sum
	}
	return k
}

var errShortRecord = errors.New("truncated record")

// appendEvent encodes e (its TS is the record's key and is not repeated)
// with the statement links: prevA is the previous statement entry of
// e.Account and prevB that of e.To (0 when none, or when e is not a
// statement entry).
func appendEvent(dst []byte, e *bank.Event, prevA, prevB uint64) []byte {
	if e.Origin != "" {
		dst = append(dst, eventVersionOrigin)
	} else if len(e.Seen) > 0 {
		dst = append(dst, eventVersionSeen)
	} else {
		dst = append(dst, eventVersion)
	}
	dst = appendString(dst, e.Proc)
	dst = appendString(dst, string(e.Kind))
	dst = appendString(dst, e.Outcome)
	dst = appendString(dst, e.Account)
	dst = appendString(dst, e.To)
	dst = binary.AppendVarint(dst, int64(e.Amount))
	dst = binary.AppendVarint(dst, int64(e.Balance))
	dst = binary.AppendVarint(dst, int64(e.ToBalance))
	dst = appendString(dst, e.ReqID)
	dst = appendString(dst, e.Client)
	dst = binary.AppendUvarint(dst, e.ClientTS)
	dst = binary.AppendUvarint(dst, e.RecvTS)
	dst = binary.AppendUvarint(dst, e.ApplyTS)
	dst = binary.AppendUvarint(dst, e.ReplyTS)
	dst = binary.AppendUvarint(dst, e.OrigTS)
	dst = appendString(dst, e.Detail)
	var wall int64
	if !e.Wall.IsZero() {
		wall = e.Wall.UnixNano()
	}
	dst = binary.AppendVarint(dst, wall)
	dst = binary.AppendUvarint(dst, prevA)
	dst = binary.AppendUvarint(dst, prevB)
	if len(e.Seen) > 0 || e.Origin != "" {
		dst = binary.AppendUvarint(dst, uint64(len(e.Seen)))
		for _, r := range e.Seen {
			dst = binary.AppendUvarint(dst, r.TS)
			dst = binary.AppendUvarint(dst, r.At)
		}
	}
	if e.Origin != "" {
		dst = appendString(dst, e.Origin)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decoder reads the fields appendEvent wrote, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errShortRecord
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return intern(d.bytes()) }

// intern returns the common short strings of the log without allocating.
func intern(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case outcome.OutcomeOK:
		return outcome.OutcomeOK
	}
	return string(b)
}

// kind reads an event's kind, the kinds most logged without allocating.
func (d *decoder) kind() bank.Kind {
	b := d.bytes()
	switch bank.Kind(b) {
	case bank.KindDeposit:
		return bank.KindDeposit
	case bank.KindWithdraw:
		return bank.KindWithdraw
	case bank.KindTransfer:
		return bank.KindTransfer
	case bank.KindBalance:
		return bank.KindBalance
	case bank.KindLogin:
		return bank.KindLogin
	}
	return bank.Kind(b)
}

// decodeEvent decodes a stored event with key ts.
func decodeEvent(ts uint64, b []byte) (e bank.Event, prevA, prevB uint64, err error) {
	b, _, _ = splitHash(b)
	if len(b) == 0 || b[0]&^eventHashed < eventVersion || b[0]&^eventHashed > eventVersionOrigin {
		return e, 0, 0, fmt.Errorf("event L=%d: unknown encoding", ts)
	}
	ver := b[0] &^ eventHashed
	d := decoder{b: b[1:]}
	e.TS = ts
	e.Proc = d.string()
	e.Kind = d.kind()
	e.Outcome = d.string()
	e.Account = d.string()
	e.To = d.string()
	e.Amount = money.Cents(d.varint())
	e.Balance = money.Cents(d.varint())
	e.ToBalance = money.Cents(d.varint())
	e.ReqID = d.string()
	e.Client = d.string()
	e.ClientTS = d.uvarint()
	e.RecvTS = d.uvarint()
	e.ApplyTS = d.uvarint()
	e.ReplyTS = d.uvarint()
	e.OrigTS = d.uvarint()
	e.Detail = d.string()
	if wall := d.varint(); wall != 0 {
		e.Wall = time.Unix(0, wall)
	}
	prevA = d.uvarint()
	prevB = d.uvarint()
	if ver == eventVersionSeen || ver == eventVersionOrigin {
		n := d.uvarint()
		if n > uint64(len(d.b)) { // each report takes at least two bytes
			d.err = errShortRecord
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			e.Seen = append(e.Seen, bank.Seen{TS: d.uvarint(), At: d.uvarint()})
		}
	}
	if ver == eventVersionOrigin {
		e.Origin = d.string()
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after its end", len(d.b))
	}
	if d.err != nil {
		return bank.Event{}, 0, 0, fmt.Errorf("event L=%d: %w", ts, d.err)
	}
	return e, prevA, prevB, nil
}

// eventLinks decodes only what a walk along statement chains needs: the
// event's account and its links to the previous entries of its accounts.
func eventLinks(b []byte) (account []byte, prevA, prevB uint64, ok bool) {
	if len(b) == 0 || b[0]&^eventHashed < eventVersion || b[0]&^eventHashed > eventVersionOrigin {
		return nil, 0, 0, false
	}
	d := decoder{b: b[1:]}
	d.bytes() // proc
	d.bytes() // kind
	d.bytes() // outcome
	account = d.bytes()
	d.bytes() // to
	d.varint()
	d.varint()
	d.varint()
	d.bytes() // request id
	d.bytes() // client
	for range 5 {
		d.uvarint() // ClientTS, RecvTS, ApplyTS, ReplyTS, OrigTS
	}
	d.bytes()  // detail
	d.varint() // wall
	prevA = d.uvarint()
	prevB = d.uvarint()
	return account, prevA, prevB, d.err == nil
}

// eventHead decodes only what the idempotency index needs: the kind, the
// account and the request id.
func eventHead(b []byte) (kind, account, reqID []byte, ok bool) {
	if len(b) == 0 || b[0]&^eventHashed < eventVersion || b[0]&^eventHashed > eventVersionOrigin {
		return nil, nil, nil, false
	}
	d := decoder{b: b[1:]}
	d.bytes() // proc
	kind = d.bytes()
	d.bytes() // outcome
	account = d.bytes()
	d.bytes() // to
	d.varint()
	d.varint()
	d.varint()
	reqID = d.bytes()
	return kind, account, reqID, d.err == nil
}

// acctState is the part of an account that money operations change, kept
// apart from the account record so that a transaction touches few pages:
// the balance, the timestamp of the newest statement entry (the head of the
// account's statement chain through the log), the number of statement
// entries (which says when the next one is marked, see marks.go) and the
// holder's name.
type acctState struct {
	Balance money.Cents
	Last    uint64
	Count   uint64
	Name    string
}

// stateSize is the fixed part of a stored state: balance, head and count,
// 8 bytes each, before the name. Format 2 had no count.
const (
	stateSize        = 24
	stateSizeNoMarks = 16
)

func appendState(dst []byte, s acctState) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.Balance))
	dst = binary.BigEndian.AppendUint64(dst, s.Last)
	dst = binary.BigEndian.AppendUint64(dst, s.Count)
	return append(dst, s.Name...)
}

func decodeState(b []byte) (acctState, error) {
	if err := checkState(b, stateSize); err != nil {
		return acctState{}, err
	}
	return acctState{
		Balance: money.Cents(binary.BigEndian.Uint64(b)),
		Last:    binary.BigEndian.Uint64(b[8:]),
		Count:   binary.BigEndian.Uint64(b[16:]),
		Name:    string(b[stateSize:]),
	}, nil
}

// decodeStateNoMarks decodes a state of format 2, which has no count.
func decodeStateNoMarks(b []byte) (acctState, error) {
	if err := checkState(b, stateSizeNoMarks); err != nil {
		return acctState{}, err
	}
	return acctState{
		Balance: money.Cents(binary.BigEndian.Uint64(b)),
		Last:    binary.BigEndian.Uint64(b[8:]),
		Name:    string(b[stateSizeNoMarks:]),
	}, nil
}

func checkState(b []byte, size int) error {
	if b == nil {
		return errors.New("state missing (damaged file)")
	}
	if len(b) < size {
		return fmt.Errorf("state is %d bytes, not at least %d (damaged file)", len(b), size)
	}
	return nil
}
