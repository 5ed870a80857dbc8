// Package boltstore keeps the bank (package bank's rules) in one bbolt
// file.
//
// The file (storage format 3), bucket by bucket:
//
//	meta         format (3), clock (the stored clock and its lease),
//	             deposits and withdrawals (the totals), chain (the hash of
//	             the newest event: where the log's chain ends); numbers
//	             8 bytes big-endian
//	accounts     id -> the account as JSON, its balance left out
//	balances     id -> balance, newest statement entry, holder's name
//	             (binary, see acctState)
//	events       8-byte big-endian timestamp -> the event (binary, see
//	             appendEvent): a version byte, the fields, the links of
//	             the statements it is an entry of, then its hash,
//	             SHA-256(the previous event's hash || its key || its record
//	             up to the hash); the first event's previous hash is zero
//	checkpoints  8-byte big-endian timestamp of a checkpoint's event -> its
//	             state (bank.Checkpoint.Encode)
//
// A file of format 2 (events without a hash, no checkpoints bucket) is
// read as it is; Open marks it 3, adds the checkpoints bucket and leaves
// its events as they were, so its chain starts, from the zero hash, at
// the first event written after (Verify counts the older ones as
// unchained). OpenReadOnly reads it without marking it.
//
// Guarantees, besides the rules' (see package bank):
//
//   - Every operation, successful or refused, is written to the event log in the
//     same bbolt transaction as the money change it makes, and that
//     transaction is on disk (fsync) before the operation returns.
//   - One goroutine, the committer's applier, applies operations. It ticks
//     the clock for each apply event, so the order in which balances change
//     is the order of the events' timestamps, and replaying the log in
//     timestamp order reproduces every balance (see bank.Ledger.Verify).
//   - Concurrent operations share a transaction and its fsyncs (group commit);
//     each keeps its own outcome. The next batch is applied while the
//     previous one is being written (see commit.go), but an operation is
//     answered only once its own transaction is on disk, and if a
//     transaction fails, it and every operation applied after it fail,
//     leaving nothing of them behind.
//   - The outcomes of the last Options.RememberRequests money requests
//     (default 100 000, for the whole bank; the window of the server that
//     created the file, which keeps it) are remembered by (account, id),
//     across restarts: the log records each with its account and request
//     id, and Open reads them back from its tail. Archiving keeps their
//     events live.
//   - A damaged file (a key or value of the wrong length, a record that
//     does not decode) is reported as an error naming the damage, never a
//     panic. OpenReadOnly opens a file for the offline tools without ever
//     writing to it.
//   - Each event is chained to the one before it by its hash, and the file
//     records where the chain ends: Verify finds any changed byte of an
//     event or of a checkpoint's state, an event removed (from the end
//     too), added or moved, and names it.
//   - The clock's lease (bank.LeaseAhead) is stored in the file with every
//     transaction. The event log only grows: a transaction that would
//     write an event at a timestamp not above the log's last one fails
//     instead of overwriting a record.
//   - If an operation's context ends before it is queued, nothing is
//     applied; if it ends while the committer has it, the call returns an
//     error matching bank.ErrOutcomeUnknown (the operation may still be
//     applied; its request id makes a retry safe).
//   - A statement costs one seek in the statement marks, at most 32 links
//     of the account's chain of entries and its page, whatever its cursor
//     and however many entries the account has (see marks.go): the one
//     applier never walks an account's whole history.
//
// # The file
//
// One bbolt file, its layout named by a format number in the meta bucket
// (codec.go), with the buckets: meta (format, clock, running totals),
// accounts (id → the account record, JSON, without its balance), balances
// (id → balance, newest statement entry, number of entries, holder's
// name), events (big-endian timestamp → event, binary, with the links of
// the statement chains) and marks (every 32nd statement entry of each
// account, see marks.go).
//
// This version writes format 3. A file of format 2 (no marks, and no entry
// count in the balances) is upgraded by Open, once, in the transaction
// that opens it: the counts and marks are read from the log's statement
// chains, and the format becomes 3 in the same commit, so a crash during
// the upgrade leaves the file of format 2, upgraded again by the next
// Open. The marks are about one key for 32 entries, so the upgrade holds
// little in memory. A chain the upgrade cannot follow (an entry not in the
// log) fails Open, naming the account and the entry, and leaves the file
// as it was. OpenReadOnly reads a file of format 2 as it is, without
// upgrading it. A version that reads format 2 only refuses a file of
// format 3 ("the file is in storage format 3; this version reads format 2
// only"); this one refuses any format but 2 and 3, naming it.
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"atm/bank"
	"atm/bank/lamport"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Options configure a Bank: the ledger's options and the file's. The zero
// value gives the documented defaults.
type Options struct {
	bank.Options
	MaxBatch    int           // operations per transaction; 1 commits each alone; default 512
	OpenTimeout time.Duration // how long to wait for the file lock; default 1s
}

// withDefaults fills the zero fields of opts with the documented defaults.
func withDefaults(opts Options) Options {
	if opts.RememberRequests <= 0 {
		opts.RememberRequests = 100_000
	}
	opts.Options = opts.Options.WithDefaults()
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = time.Second
	}
	return opts
}

// Bank is the bank kept in one bbolt file: the ledger with its store. All
// its methods are safe for concurrent use.
type Bank struct {
	*bank.Ledger
	s *store
}

// store is the bbolt file under a ledger, with its committer.
type store struct {
	db    *bolt.DB
	opts  Options
	rules *bank.Rules
	clock *lamport.Clock

	mu     sync.RWMutex // guards closed and sends on queue
	closed bool
	queue  chan *op
	done   chan struct{}

	reqs     *requests // owned by the committer
	lease    *bank.Lease
	readOnly bool // opened by OpenReadOnly: no committer, no lease, no writes

	batches, batchedOps, commitNanos atomic.Uint64
	committedSeq                     atomic.Uint64 // last batch on disk
	lastCommit                       atomic.Int64  // duration of the last transaction
	failedEpoch                      atomic.Uint64 // 1 + epoch of the last failed batch; 0: none
	failMu                           sync.Mutex
	failCause                        error

	appended bank.Signal   // notified after each commit, and at Close
	archived atomic.Uint64 // the live log starts after it (see archive.go)
}

// Stats are running totals of the committer since Open.
type Stats struct {
	Batches    uint64        // transactions committed
	Ops        uint64        // operations they applied
	CommitTime time.Duration // time spent in those transactions, fsyncs included
}

// Stats returns the committer's running totals.
func (b *Bank) Stats() Stats {
	s := b.s
	return Stats{Batches: s.batches.Load(), Ops: s.batchedOps.Load(), CommitTime: time.Duration(s.commitNanos.Load())}
}

// Open opens (creating if needed) the ledger in the bbolt file at path,
// upgrading a file of format 2 (see the package doc). On a new, empty file
// it creates the default accounts unless opts.NoDefaults. If another
// process holds the file, Open fails with outcome.ErrDatabaseBusy after
// opts.OpenTimeout.
func Open(path string, opts Options) (*Bank, error) {
	opts = withDefaults(opts)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        opts.OpenTimeout,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		// Address space only: it spares remapping (which waits for every
		// reader) as the file grows.
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		return nil, openError(path, err)
	}
	start, empty, reqs, err := prepare(db, &opts)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := newStore(db, opts, start, 4096)
	s.reqs = reqs
	s.lease = bank.StartLease(s.clock, start, s.saveLease, s.done)
	go s.commitLoop()
	b := &Bank{Ledger: bank.NewLedger(s.rules, s, s.lease), s: s}
	if empty && !opts.NoDefaults {
		if err := b.Seed(context.Background()); err != nil {
			b.Close()
			return nil, fmt.Errorf("create default accounts: %w", err)
		}
	}
	return b, nil
}

func newStore(db *bolt.DB, opts Options, start uint64, queue int) *store {
	clock := lamport.NewClock(start)
	s := &store{db: db, opts: opts, clock: clock, rules: bank.NewRules(opts.Options, clock),
		queue: make(chan *op, queue), done: make(chan struct{})}
	_ = db.View(func(tx *bolt.Tx) error {
		m, err := liveMark(tx)
		s.archived.Store(m.Through)
		return err
	})
	return s
}

// prepare makes the file a bank's if it is new, checks its format, and
// reads where its clock stands, whether it is empty, the bank's window of
// remembered requests (into opts: the file keeps the window of the first
// server to open it, as archiving must keep those requests' events) and
// the remembered requests.
func prepare(db *bolt.DB, opts *Options) (start uint64, empty bool, reqs *requests, err error) {
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		f, err := readU64(meta, keyFormat)
		if err != nil {
			return err
		}
		switch {
		case f == formatVersion:
		case f == formatNoMarks:
			if err := upgrade(tx); err != nil {
				return fmt.Errorf("upgrade from storage format %d to %d: %w", f, formatVersion, err)
			}
		case f == 0 && tx.Bucket(bucketEvents) == nil: // a new file
			if err := putU64(meta, keyFormat, formatVersion); err != nil {
				return err
			}
		default:
			return formatError(f)
		}
		for _, name := range [][]byte{bucketAccounts, bucketState, bucketEvents, bucketCheckpoints, bucketMarks} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if start, err = lastTick(tx); err != nil {
			return err
		}
		ka, _ := tx.Bucket(bucketAccounts).Cursor().First()
		ke, _ := tx.Bucket(bucketEvents).Cursor().First()
		empty = ka == nil && ke == nil
		window, err := readU64(meta, keyRemember)
		if err != nil {
			return err
		}
		if window == 0 {
			window = uint64(opts.RememberRequests)
			if err := putU64(meta, keyRemember, window); err != nil {
				return err
			}
		}
		opts.RememberRequests = int(min(window, 1<<31))
		reqs = newRequests(opts.RememberRequests)
		return loadRequests(tx, reqs)
	})
	return start, empty, reqs, err
}

// OpenReadOnly opens the ledger in the existing bbolt file at path for
// reading only, for the offline tools. It never creates the file (a missing
// file is an error naming it), never seeds accounts, starts no committer and
// no clock lease, and writes nothing, not even on Close: the file's bytes
// and modification time stay as they were. Accounts, Events, Verify, Audit
// and Locked work; every operation (money, login, open, Record, and the
// reads that are logged) fails with outcome.ErrReadOnly. While a server holds the
// file, OpenReadOnly fails with outcome.ErrDatabaseBusy after opts.OpenTimeout.
func OpenReadOnly(path string, opts Options) (*Bank, error) {
	opts = withDefaults(opts)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.OpenTimeout, ReadOnly: true})
	if err != nil {
		return nil, openError(path, err)
	}
	var start uint64
	err = db.View(func(tx *bolt.Tx) error {
		if err := checkBank(tx); err != nil {
			return err
		}
		start, err = lastTick(tx)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := newStore(db, opts, start, 0)
	s.readOnly = true
	go s.refuseAll()
	return &Bank{Ledger: bank.NewLedger(s.rules, s, nil), s: s}, nil
}

// checkBank checks that tx's file is a bank this version reads: of its
// format, or of format 2, which it reads without upgrading it (it has no
// checkpoints and no statement marks).
func checkBank(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return errors.New("not a bank database (it has no meta bucket)")
	}
	f, err := readU64(meta, keyFormat)
	if err != nil {
		return err
	}
	if f != formatVersion && f != formatNoMarks {
		return formatError(f)
	}
	buckets := [][]byte{bucketAccounts, bucketState, bucketEvents, bucketCheckpoints, bucketMarks}
	if f == formatNoMarks {
		buckets = buckets[:3]
	}
	for _, name := range buckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("bucket %s is missing (damaged file)", name)
		}
	}
	return nil
}

func formatError(f uint64) error {
	return fmt.Errorf("the file is in storage format %d; this version reads format %d, and format %d, which it upgrades when it opens the file for writing", f, formatVersion, formatNoMarks)
}

// refuseAll stands in for the committer of a read-only bank: it answers
// every operation with outcome.ErrReadOnly.
func (b *store) refuseAll() {
	defer close(b.done)
	for o := range b.queue {
		o.err = fmt.Errorf("%s: %w; the offline tools only read it", o.op.Kind, outcome.ErrReadOnly)
		close(o.out)
	}
}

// openError words a failure of bolt.Open on path.
func openError(path string, err error) error {
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("open %s: %w", path, outcome.ErrDatabaseBusy)
	}
	if _, ok := errors.AsType[*fs.PathError](err); ok {
		return fmt.Errorf("open the database: %w", err) // the error names the path
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// Close stops the committer after it has applied every operation already
// submitted, stores the clock's exact value and closes the file. Operations
// submitted after Close fail with outcome.ErrClosed, and the clock must not tick
// after Close: the next Open resumes from the stored value.
// Appended returns a channel closed after the next commit of events, or
// at once when the store is closed.
func (b *store) Appended() <-chan struct{} {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return closedChan
	}
	return b.appended.C()
}

// closedChan is a closed channel.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (b *store) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.queue)
	b.mu.Unlock()
	b.appended.Notify()
	<-b.done
	var err error
	if !b.readOnly {
		err = b.storeExactClock()
	}
	if cerr := b.db.Close(); err == nil {
		err = cerr
	}
	return err
}
