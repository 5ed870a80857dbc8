// Package bank is the ledger of the atm system: accounts, money operations,
// the event log and the server's Lamport clock, stored in one bbolt file.
//
// Guarantees:
//
//   - Money is int64 cents; every arithmetic step is overflow-checked and no
//     balance ever goes negative.
//   - Every operation, successful or refused, is written to the event log in the
//     same bbolt transaction as the money change it makes, and that
//     transaction is on disk (fsync) before the operation returns.
//   - One goroutine, the committer's applier, applies operations. It ticks
//     the clock for each apply event, so the order in which balances change
//     is the order of the events' timestamps, and replaying the log in
//     timestamp order reproduces every balance (see Verify).
//   - Concurrent operations share a transaction and its fsyncs (group commit);
//     each keeps its own outcome. The next batch is applied while the
//     previous one is being written (see commit.go), but an operation is
//     answered only once its own transaction is on disk, and if a
//     transaction fails, it and every operation applied after it fail,
//     leaving nothing of them behind.
//   - A mutating operation carries a request id. The outcomes of the last
//     Options.RememberRequests money requests are remembered by (account,
//     id), across restarts: a repeated id gets the first outcome back and
//     nothing is applied again (a first outcome that was an internal
//     failure comes back as an error matching outcome.ErrInternal). An id sent again
//     with another request (kind, amount or recipient) is refused with
//     outcome.ErrRequestIDReused and logged as a retry; nothing is applied.
//   - A damaged file (a key or value of the wrong length, a record that
//     does not decode) is reported as an error naming the damage, never a
//     panic. OpenReadOnly opens a file for the offline tools without ever
//     writing to it.
//   - Wrong PINs cannot lock a holder out. They are counted per (account,
//     source), the source being who tries (Meta.Source: the ATM's process
//     id and address): after Options.LockAfter (3) in a row, that source
//     is locked out of that account for Options.LockFor (15 minutes), and
//     every other source can still log in. A source's success clears its
//     count. Account-wide, after Options.ThrottleAfter (10) wrong PINs in a
//     row from any sources with no success between them, the account takes
//     one attempt per Options.ThrottleEvery (1 minute) from anyone; an
//     earlier one is refused with the time the next is allowed, and a right
//     PIN when allowed logs in and ends the throttle. This state is kept in
//     the account's record (at most MaxSources sources, the oldest
//     forgotten first), so it survives restarts. At most GOMAXPROCS PIN
//     hashes are compared at once, so a flood of logins cannot take every
//     CPU.
//   - The clock never goes back and never wraps: it holds at most lamport.MaxTS
//     (2^53 − 1). After a clean Close it resumes exactly where it stopped,
//     and after a crash above every timestamp that left the process: those
//     of events are on disk with them, and any other is taken with
//     SendTick, which returns once the clock stored on disk covers it (a
//     lease kept ahead, see lease.go). The event log only grows: a
//     transaction that would write an event at a timestamp not above the
//     log's last one fails instead of overwriting a record.
//   - Every operation takes a context. If it ends before the operation is
//     queued, nothing is applied; if it ends while the committer has it,
//     the call returns an error matching ErrOutcomeUnknown (the operation
//     may still be applied; its request id makes a retry safe).
package bank

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"atm/bank/lamport"
	"atm/bank/money"
	"atm/bank/outcome"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/crypto/bcrypt"
)

// Options configure a Bank. The zero value gives the documented defaults.
type Options struct {
	ProcessID        string        // the server's process id in events; default "bank"
	MaxAmount        money.Cents   // per-operation limit; default 10_000_000 (R$ 100.000,00)
	LockAfter        int           // wrong PINs in a row from one source before it is locked out of the account; default 3
	LockFor          time.Duration // how long a source's lockout lasts; default 15 minutes
	ThrottleAfter    int           // wrong PINs in a row on an account, any sources, before it is throttled; default 10
	ThrottleEvery    time.Duration // a throttled account takes one attempt per ThrottleEvery; default 1 minute
	RememberRequests int           // request ids remembered for idempotency; default 100_000
	MaxBatch         int           // operations per transaction; 1 commits each alone; default 512
	PINCost          int           // bcrypt cost for new PINs; default bcrypt.DefaultCost
	NoDefaults       bool          // do not create the default accounts on an empty file
	OpenTimeout      time.Duration // how long to wait for the file lock; default 1s
	Now              func() time.Time
	// OnEvent, if set, is called for each event once its transaction is on
	// disk, in timestamp order, from the committer's writer goroutine and
	// before the operations of that transaction are answered. It must not
	// block for long: the next transaction waits for it.
	OnEvent func(Event)
}

// Default accounts created on an empty database.
var DefaultAccounts = []struct {
	ID, Name, PIN string
	Opening       money.Cents
}{
	{"123", "Ana Souza", "1234", 100_000},
	{"456", "Bruno Lima", "1234", 100_000},
	{"789", "Carla Dias", "1234", 100_000},
}

// Bank is an open ledger. All its methods are safe for concurrent use.
type Bank struct {
	db    *bolt.DB
	opts  Options
	clock *lamport.Clock

	mu     sync.RWMutex // guards closed and sends on queue
	closed bool
	queue  chan *op
	done   chan struct{}

	pinSlots chan struct{} // one per PIN comparison running
	reqs     *requests     // owned by the committer
	lease    lease
	readOnly bool // opened by OpenReadOnly: no committer, no lease, no writes

	batches, batchedOps, commitNanos atomic.Uint64
	committedSeq                     atomic.Uint64 // last batch on disk
	lastCommit                       atomic.Int64  // duration of the last transaction
	failedEpoch                      atomic.Uint64 // 1 + epoch of the last failed batch; 0: none
	failMu                           sync.Mutex
	failCause                        error
}

// Stats are running totals of the committer since Open.
type Stats struct {
	Batches    uint64        // transactions committed
	Ops        uint64        // operations they applied
	CommitTime time.Duration // time spent in those transactions, fsyncs included
}

// Stats returns the committer's running totals.
func (b *Bank) Stats() Stats {
	return Stats{Batches: b.batches.Load(), Ops: b.batchedOps.Load(), CommitTime: time.Duration(b.commitNanos.Load())}
}

// Open opens (creating if needed) the ledger in the bbolt file at path. On a
// new, empty file it creates the default accounts unless opts.NoDefaults. If
// another process holds the file, Open fails with outcome.ErrDatabaseBusy after
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
	var start uint64
	var empty bool
	reqs := newRequests(opts.RememberRequests)
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		f, err := readU64(meta, keyFormat)
		if err != nil {
			return err
		}
		if f != formatVersion {
			if f != 0 || tx.Bucket(bucketEvents) != nil {
				return fmt.Errorf("the file is in storage format %d; this version reads format %d only", f, formatVersion)
			}
			if err := putU64(meta, keyFormat, formatVersion); err != nil {
				return err
			}
		}
		for _, name := range [][]byte{bucketAccounts, bucketState, bucketEvents} {
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
		return loadRequests(tx, reqs)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	b := &Bank{
		db:    db,
		opts:  opts,
		clock: lamport.NewClock(start),
		queue: make(chan *op, 4096),
		done:  make(chan struct{}),
		reqs:  reqs,

		pinSlots: make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	go b.commitLoop()
	b.startLease(start)
	if empty && !opts.NoDefaults {
		if err := b.seed(); err != nil {
			b.Close()
			return nil, fmt.Errorf("create default accounts: %w", err)
		}
	}
	return b, nil
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
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("not a bank database (it has no meta bucket)")
		}
		f, err := readU64(meta, keyFormat)
		if err != nil {
			return err
		}
		if f != formatVersion {
			return fmt.Errorf("the file is in storage format %d; this version reads format %d only", f, formatVersion)
		}
		for _, name := range [][]byte{bucketAccounts, bucketState, bucketEvents} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s is missing (damaged file)", name)
			}
		}
		start, err = lastTick(tx)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	b := &Bank{
		db:       db,
		opts:     opts,
		clock:    lamport.NewClock(start),
		queue:    make(chan *op),
		done:     make(chan struct{}),
		readOnly: true,
		pinSlots: make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	go b.refuseAll()
	return b, nil
}

// refuseAll stands in for the committer of a read-only bank: it answers
// every operation with outcome.ErrReadOnly.
func (b *Bank) refuseAll() {
	defer close(b.done)
	for o := range b.queue {
		o.res = opResult{err: fmt.Errorf("%s: %w; the offline tools only read it", o.kind, outcome.ErrReadOnly)}
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

// lockout is the wrong-PIN policy o sets.
func (o Options) lockout() Lockout {
	return Lockout{LockAfter: o.LockAfter, LockFor: o.LockFor, ThrottleAfter: o.ThrottleAfter, ThrottleEvery: o.ThrottleEvery}
}

// withDefaults fills the zero fields of opts with the documented defaults.
func withDefaults(opts Options) Options {
	if opts.ProcessID == "" {
		opts.ProcessID = "bank"
	}
	if opts.MaxAmount <= 0 {
		opts.MaxAmount = 10_000_000
	}
	lk := opts.lockout().WithDefaults()
	opts.LockAfter, opts.LockFor, opts.ThrottleAfter, opts.ThrottleEvery = lk.LockAfter, lk.LockFor, lk.ThrottleAfter, lk.ThrottleEvery
	if opts.RememberRequests <= 0 {
		opts.RememberRequests = 100_000
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.PINCost == 0 {
		opts.PINCost = bcrypt.DefaultCost
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return opts
}

func (b *Bank) seed() error {
	ctx := context.Background()
	for _, d := range DefaultAccounts {
		if _, err := b.CreateAccount(ctx, d.ID, d.Name, d.PIN); err != nil {
			return err
		}
		// The opening deposit is the bank's own: the per-operation limit,
		// which is for ATMs, does not apply.
		m := Meta{ReqID: "open-" + d.ID, Client: b.opts.ProcessID}
		if r := b.submit(ctx, &op{kind: KindDeposit, m: m, id: d.ID, amount: d.Opening, opening: true}); r.err != nil {
			return r.err
		}
	}
	return nil
}

// Close stops the committer after it has applied every operation already
// submitted, stores the clock's exact value and closes the file. Operations
// submitted after Close fail with outcome.ErrClosed, and the clock must not tick
// after Close: the next Open resumes from the stored value.
func (b *Bank) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.queue)
	b.mu.Unlock()
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

// Clock returns the server's Lamport clock.
func (b *Bank) Clock() *lamport.Clock { return b.clock }

// ProcessID returns the process id the bank stamps on its events.
func (b *Bank) ProcessID() string { return b.opts.ProcessID }

// MaxAmount returns the per-operation limit.
func (b *Bank) MaxAmount() money.Cents { return b.opts.MaxAmount }
