package boltstore

import (
	"atm/bank"
	"atm/bank/money"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta     = []byte("meta")
	bucketAccounts = []byte("accounts") // id -> JSON Account without its balance
	bucketState    = []byte("balances") // id -> acctState (binary)
	bucketEvents   = []byte("events")   // big-endian TS -> event (binary)
	// big-endian TS of a checkpoint event -> its state (bank.Checkpoint.Encode)
	bucketCheckpoints = []byte("checkpoints")
	bucketMarks       = []byte("marks") // markKey -> empty: statement marks (marks.go)

	keyFormat      = []byte("format")
	keyChain       = []byte("chain") // the hash of the newest event (32 bytes)
	keyClock       = []byte("clock")
	keyDeposits    = []byte("deposits")
	keyWithdrawals = []byte("withdrawals")
	keyRemember    = []byte("remember_requests") // the bank's window of remembered requests
)

// lastTick is the highest timestamp the file records: the stored clock or
// the newest event's, whichever is higher.
func lastTick(tx *bolt.Tx) (uint64, error) {
	start, err := readU64(tx.Bucket(bucketMeta), keyClock)
	if err != nil {
		return 0, err
	}
	if k, _ := tx.Bucket(bucketEvents).Cursor().Last(); k != nil {
		last, err := eventKey(k)
		if err != nil {
			return 0, err
		}
		start = max(start, last)
	}
	return start, nil
}

// stateDecoder returns the decoder of the account states of tx's file: a
// file of format 2, read by OpenReadOnly, has states without a count.
func stateDecoder(tx *bolt.Tx) func([]byte) (acctState, error) {
	if f, _ := readU64(tx.Bucket(bucketMeta), keyFormat); f == formatNoMarks {
		return decodeStateNoMarks
	}
	return decodeState
}

// decodeAccount builds account id from its stored record and its state,
// which holds the balance, read with decode.
func decodeAccount(id string, rec, state []byte, decode func([]byte) (acctState, error)) (bank.Account, error) {
	var a bank.Account
	if err := json.Unmarshal(rec, &a); err != nil {
		return a, fmt.Errorf("account %s: stored record is not valid (damaged file): %w", id, err)
	}
	s, err := decode(state)
	if err != nil {
		return a, fmt.Errorf("account %s: balance: %w", id, err)
	}
	a.Balance = s.Balance
	return a, nil
}

// eachAccount calls fn for every account, balance included, in id order.
func eachAccount(tx *bolt.Tx, fn func(bank.Account) error) error {
	st, decode := tx.Bucket(bucketState), stateDecoder(tx)
	return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
		a, err := decodeAccount(string(k), v, st.Get(k), decode)
		if err != nil {
			return err
		}
		return fn(a)
	})
}

// loadRequests fills r from the newest money events of the log.
func loadRequests(tx *bolt.Tx, r *requests) error {
	type entry struct {
		key string
		ts  uint64
	}
	var found []entry
	seen := make(map[string]bool)
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.Last(); k != nil && len(found) < r.limit; k, v = c.Prev() {
		ts, err := eventKey(k)
		if err != nil {
			return err
		}
		kind, account, req, ok := eventHead(v)
		if !ok {
			return fmt.Errorf("event log: event L=%d: unknown encoding (damaged file)", ts)
		}
		if !bank.Kind(kind).IsMoney() {
			continue
		}
		if len(req) == 0 {
			continue
		}
		key := reqKey(string(account), string(req))
		if seen[key] {
			continue
		}
		seen[key] = true
		found = append(found, entry{key, ts})
	}
	for i := len(found) - 1; i >= 0; i-- {
		r.insert(found[i].key, found[i].ts)
	}
	return nil
}

// eachEvent calls fn for every event above after, in timestamp order,
// until fn returns an error.
func eachEvent(tx *bolt.Tx, after uint64, fn func(bank.Event) error) error {
	c := tx.Bucket(bucketEvents).Cursor()
	k, v := c.First() // a damaged key shorter than 8 bytes comes first
	if after > 0 {
		k, v = c.Seek(u64key(after + 1))
	}
	for ; k != nil; k, v = c.Next() {
		ts, err := eventKey(k)
		if err != nil {
			return err
		}
		e, _, _, err := decodeEvent(ts, v)
		if err == nil {
			err = fn(e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// lastHash returns the newest event's timestamp and hash: the head of the
// log's chain (a zero hash when that event has none, or there is none).
func lastHash(tx *bolt.Tx) (uint64, bank.Hash, error) {
	k, v := tx.Bucket(bucketEvents).Cursor().Last()
	if k == nil {
		return 0, bank.Hash{}, nil
	}
	ts, err := eventKey(k)
	if err != nil {
		return 0, bank.Hash{}, err
	}
	_, sum, _ := splitHash(v)
	return ts, sum, nil
}

// replayLog reads the log for r, in one read transaction: each event as a
// link of the chain, then as an event, from after the chain's head r
// starts from (the first event when none); then the head the file
// records, and the accounts and totals.
func replayLog(tx *bolt.Tx, r *bank.Replay) ([]bank.Account, bank.Totals, error) {
	var after uint64
	for _, h := range r.From() {
		if h.Chain == "" {
			after = h.TS
		}
	}
	c := tx.Bucket(bucketEvents).Cursor()
	k, v := c.First() // a damaged key shorter than 8 bytes comes first
	if after > 0 {
		k, v = c.Seek(u64key(after + 1))
	}
	for ; k != nil; k, v = c.Next() {
		ts, err := eventKey(k)
		if err != nil {
			return nil, bank.Totals{}, err
		}
		if err := r.Link(recordLink(k, v)); err != nil {
			return nil, bank.Totals{}, err
		}
		e, _, _, err := decodeEvent(ts, v)
		if err != nil {
			return nil, bank.Totals{}, fmt.Errorf("event log: %w (damaged file)", err)
		}
		if err := r.Event(e); err != nil {
			return nil, bank.Totals{}, err
		}
	}
	if head := tx.Bucket(bucketMeta).Get(keyChain); head != nil {
		var h bank.Hash
		if len(head) != len(h) {
			return nil, bank.Totals{}, fmt.Errorf("meta: %s is %d bytes, not %d (damaged file)", keyChain, len(head), len(h))
		}
		copy(h[:], head)
		if err := r.End("", h); err != nil {
			return nil, bank.Totals{}, err
		}
	}
	return snapshot(tx)
}

// checkpointState reads the state of the checkpoint at ts (nil: none).
func checkpointState(tx *bolt.Tx, ts uint64) []byte {
	cb := tx.Bucket(bucketCheckpoints)
	if cb == nil {
		return nil
	}
	return bytes.Clone(cb.Get(u64key(ts)))
}

// lastCheckpoint reads the newest checkpoint (nil: none): its state, and
// its event from the log.
func lastCheckpoint(tx *bolt.Tx) (*bank.StoredCheckpoint, error) {
	cb := tx.Bucket(bucketCheckpoints)
	if cb == nil {
		return nil, nil
	}
	k, v := cb.Cursor().Last()
	if k == nil {
		return nil, nil
	}
	if len(k) != 8 {
		return nil, fmt.Errorf("checkpoints: key %x is %d bytes, not 8 (damaged file)", k, len(k))
	}
	ts := binary.BigEndian.Uint64(k)
	raw := tx.Bucket(bucketEvents).Get(k)
	if raw == nil {
		return nil, fmt.Errorf("checkpoint L=%d: its event is not in the log (removed, or the checkpoint's key changed)", ts)
	}
	e, _, _, err := decodeEvent(ts, raw)
	if err != nil {
		return nil, fmt.Errorf("checkpoint L=%d: its event: %w (damaged file)", ts, err)
	}
	return &bank.StoredCheckpoint{State: bytes.Clone(v), Event: e}, nil
}

func u64key(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

// readU64 reads an 8-byte meta value: 0 when absent, an error naming the
// damage when present with another length.
func readU64(b *bolt.Bucket, k []byte) (uint64, error) {
	v := b.Get(k)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("meta: %s is %d bytes, not 8 (damaged file)", k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// eventKey decodes the key of a stored event: its 8-byte big-endian
// timestamp.
func eventKey(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("event log: key %x is %d bytes, not 8 (damaged file)", k, len(k))
	}
	return binary.BigEndian.Uint64(k), nil
}

func putU64(b *bolt.Bucket, k []byte, v uint64) error { return b.Put(k, u64key(v)) }

// totals reads the running totals.
func totals(tx *bolt.Tx) (bank.Totals, error) {
	meta := tx.Bucket(bucketMeta)
	d, err := readU64(meta, keyDeposits)
	if err != nil {
		return bank.Totals{}, err
	}
	w, err := readU64(meta, keyWithdrawals)
	return bank.Totals{Deposits: money.Cents(d), Withdrawals: money.Cents(w)}, err
}
