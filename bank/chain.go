package bank

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"atm/bank/money"
)

// The chain. Every record of the log carries a hash chained to the record
// before it on its chain: SHA-256(previous hash || the record's bytes as
// stored). A store with one writer keeps one chain and hashes each event
// (boltstore); a store several servers write keeps a chain per server and
// hashes each of its records, the events that server committed together
// (etcdstore's segments). The bytes hashed are the store's own record,
// byte for byte as it is kept: nothing is encoded again to check them, so
// neither map order nor field order can change a hash, and any changed
// byte of a record changes its hash. The first record of a chain is
// chained to the zero hash. A record written before the log was chained
// (an older format) has no hash: the chain starts at the first record
// that has one.
//
// A checkpoint is an event of the log (KindCheckpoint) that records the
// bank's state at its point: the totals, every balance, the clock (its
// timestamp) and the hash each chain has reached. The state is stored in
// full beside the log, encoded by Checkpoint.Encode, and the event records
// its digest, so a changed byte of the state is found as surely as one of
// the log. Verify checks the log from the newest checkpoint: the chain
// from the hashes it recorded, and the replay from its balances, so it
// never needs an event before it (see Ledger.Verify).

// Hash is a SHA-256 digest: of a record of the log, chained to the one
// before it, or of a checkpoint's state.
type Hash [sha256.Size]byte

// String returns h in hexadecimal.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero hash, which the first record of a
// chain is chained to.
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash reads a hash written by Hash.String, and nothing else: 64
// lowercase hexadecimal digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("hash %q: not %d hexadecimal digits", s, 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil || h.String() != s {
		return h, fmt.Errorf("hash %q: not %d lowercase hexadecimal digits", s, 2*len(h))
	}
	return h, nil
}

// ChainSum returns the hash of a record whose bytes are body, chained
// after the record whose hash is prev: SHA-256(prev || body).
func ChainSum(prev Hash, body []byte) Hash {
	d := sha256.New()
	d.Write(prev[:])
	d.Write(body)
	var h Hash
	d.Sum(h[:0])
	return h
}

// A Link is one record of a chained log as its store reads it back, for
// Replay.Link.
type Link struct {
	// Chain names the record's chain: "" on a store with one chain, the
	// server's process id on a store with a chain per server.
	Chain string
	// Name names the record in a message, with the timestamp and the
	// process id of its (first) event: "event L=42/bank deposit".
	Name string
	// Hashed is false for a record written before the log was chained: it
	// has no hash, and Body, Prev and Hash are not set.
	Hashed bool
	// Body is the record's bytes that its hash covers.
	Body []byte
	// Prev is the hash of the record before it, when the store keeps it
	// in the record; nil when it does not.
	Prev *Hash
	// Hash is the hash stored with the record.
	Hash Hash
}

// ChainHead is where one chain of the log stands: the timestamp of the
// last event its records hold, and the hash of its last record (zero when
// it has none, or none with a hash).
type ChainHead struct {
	Chain string
	TS    uint64
	Hash  Hash
}

// Balance is one account's balance in a checkpoint.
type Balance struct {
	ID      string
	Balance money.Cents
}

// Checkpoint is the bank's state at a checkpoint event: the event's
// timestamp (the clock then) and process id, the totals, every balance,
// ordered by id, and each chain's head before the event, ordered by chain.
// A reader of the log from the checkpoint starts each chain after its
// head, from its hash, and the balances from these.
type Checkpoint struct {
	TS       uint64
	Proc     string
	Totals   Totals
	Balances []Balance
	Heads    []ChainHead
}

// Total returns the sum of the checkpoint's balances, or an error if it
// does not fit in int64.
func (c *Checkpoint) Total() (money.Cents, error) {
	var sum money.Cents
	for _, b := range c.Balances {
		var err error
		if sum, err = addCents(sum, b.Balance); err != nil {
			return 0, fmt.Errorf("the balances' sum: %w", err)
		}
	}
	return sum, nil
}

// Head returns the head of the chain the checkpoint's own event is on:
// its server's, or the one chain of a store that keeps one.
func (c *Checkpoint) Head() ChainHead {
	for _, h := range c.Heads {
		if h.Chain == c.Proc || h.Chain == "" {
			return h
		}
	}
	return ChainHead{Chain: c.Proc}
}

// checkpointMagic starts an encoded checkpoint state, with its version.
const checkpointMagic = "atm checkpoint 1\n"

// Encode returns the checkpoint's state in its one encoding, field by
// field in a fixed order: the magic line, the timestamp, the process id,
// the totals, the balances by id, the heads by chain; numbers big-endian,
// 8 bytes (counts and lengths as uvarints), strings as their length then
// their bytes. Balances and heads are sorted first, so equal states
// encode to equal bytes.
func (c *Checkpoint) Encode() []byte {
	slices.SortFunc(c.Balances, func(a, b Balance) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(c.Heads, func(a, b ChainHead) int { return cmp.Compare(a.Chain, b.Chain) })
	n := len(checkpointMagic) + 64 + len(c.Proc) + len(c.Balances)*24 + len(c.Heads)*64
	b := make([]byte, 0, n)
	b = append(b, checkpointMagic...)
	b = binary.BigEndian.AppendUint64(b, c.TS)
	b = appendBytes(b, c.Proc)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Totals.Deposits))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Totals.Withdrawals))
	b = binary.AppendUvarint(b, uint64(len(c.Balances)))
	for _, x := range c.Balances {
		b = appendBytes(b, x.ID)
		b = binary.BigEndian.AppendUint64(b, uint64(x.Balance))
	}
	b = binary.AppendUvarint(b, uint64(len(c.Heads)))
	for _, h := range c.Heads {
		b = appendBytes(b, h.Chain)
		b = binary.BigEndian.AppendUint64(b, h.TS)
		b = append(b, h.Hash[:]...)
	}
	return b
}

func appendBytes(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errShortState is a checkpoint state that ends too soon.
var errShortState = errors.New("it ends too soon")

// stateReader reads the fields Encode wrote, remembering the first error.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = cmp.Or(r.err, errShortState)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *stateReader) count(min int) int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)/min) {
		r.err = errShortState
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *stateReader) string() string {
	n := r.count(1)
	if r.err != nil || len(r.b) < n {
		r.err = cmp.Or(r.err, errShortState)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// DecodeCheckpoint reads a checkpoint state that Encode wrote. It accepts
// nothing else: no trailing byte, balances and heads strictly in order.
func DecodeCheckpoint(state []byte) (Checkpoint, error) {
	var c Checkpoint
	if !bytes.HasPrefix(state, []byte(checkpointMagic)) {
		return c, errors.New("not a checkpoint state of this version")
	}
	r := stateReader{b: state[len(checkpointMagic):]}
	c.TS = r.u64()
	c.Proc = r.string()
	c.Totals.Deposits = money.Cents(r.u64())
	c.Totals.Withdrawals = money.Cents(r.u64())
	n := r.count(9)
	for i := 0; i < n && r.err == nil; i++ {
		c.Balances = append(c.Balances, Balance{ID: r.string(), Balance: money.Cents(r.u64())})
		if i > 0 && c.Balances[i-1].ID >= c.Balances[i].ID && r.err == nil {
			return c, fmt.Errorf("account %s is not after %s", c.Balances[i].ID, c.Balances[i-1].ID)
		}
	}
	n = r.count(41)
	for i := 0; i < n && r.err == nil; i++ {
		h := ChainHead{Chain: r.string(), TS: r.u64()}
		if len(r.b) < len(h.Hash) {
			r.err = cmp.Or(r.err, errShortState)
			break
		}
		copy(h.Hash[:], r.b)
		r.b = r.b[len(h.Hash):]
		c.Heads = append(c.Heads, h)
		if i > 0 && c.Heads[i-1].Chain >= h.Chain && r.err == nil {
			return c, fmt.Errorf("chain %q is not after %q", h.Chain, c.Heads[i-1].Chain)
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d bytes follow its end", len(r.b))
	}
	return c, r.err
}

// checkpointDetail is the detail of a checkpoint event: what it records,
// as key=value words. state is the digest of the stored state.
func checkpointDetail(c *Checkpoint, total money.Cents, state Hash) string {
	return fmt.Sprintf("accounts=%d total=%d deposits=%d withdrawals=%d state=%s chain=%s",
		len(c.Balances), int64(total), int64(c.Totals.Deposits), int64(c.Totals.Withdrawals), state, c.Head().Hash)
}

// checkpointFacts are what a checkpoint event's detail records.
type checkpointFacts struct {
	accounts                     int
	total, deposits, withdrawals money.Cents
	state, chain                 Hash
}

// parseCheckpointDetail reads the detail checkpointDetail wrote.
func parseCheckpointDetail(d string) (checkpointFacts, error) {
	var f checkpointFacts
	words := strings.Fields(d)
	keys := []string{"accounts", "total", "deposits", "withdrawals", "state", "chain"}
	if len(words) != len(keys) {
		return f, fmt.Errorf("its detail %q is not what a checkpoint records", d)
	}
	for i, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k != keys[i] {
			return f, fmt.Errorf("its detail %q is not what a checkpoint records", d)
		}
		var err error
		switch k {
		case "state":
			f.state, err = ParseHash(v)
		case "chain":
			f.chain, err = ParseHash(v)
		default:
			var n int64
			n, err = strconv.ParseInt(v, 10, 64)
			switch k {
			case "accounts":
				f.accounts = int(n)
			case "total":
				f.total = money.Cents(n)
			case "deposits":
				f.deposits = money.Cents(n)
			case "withdrawals":
				f.withdrawals = money.Cents(n)
			}
		}
		if err != nil {
			return f, fmt.Errorf("its detail's %s: %w", k, err)
		}
	}
	return f, nil
}
