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
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

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

var (
	bucketMeta     = []byte("meta")
	bucketAccounts = []byte("accounts") // id -> JSON Account without its balance
	bucketState    = []byte("balances") // id -> acctState (binary)
	bucketEvents   = []byte("events")   // big-endian TS -> event (binary)

	keyFormat      = []byte("format")
	keyClock       = []byte("clock")
	keyDeposits    = []byte("deposits")
	keyWithdrawals = []byte("withdrawals")
)

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

// withDefaults fills the zero fields of opts with the documented defaults.
func withDefaults(opts Options) Options {
	if opts.ProcessID == "" {
		opts.ProcessID = "bank"
	}
	if opts.MaxAmount <= 0 {
		opts.MaxAmount = 10_000_000
	}
	if opts.LockAfter <= 0 {
		opts.LockAfter = 3
	}
	if opts.LockFor <= 0 {
		opts.LockFor = 15 * time.Minute
	}
	if opts.ThrottleAfter <= 0 {
		opts.ThrottleAfter = 10
	}
	if opts.ThrottleEvery <= 0 {
		opts.ThrottleEvery = time.Minute
	}
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

// op kinds that are not event kinds.
const opCreate = "create"

type op struct {
	kind   string
	m      Meta
	id, to string
	amount money.Cents
	pinOK  bool
	// opening marks the bank's own opening deposit, exempt from MaxAmount.
	opening bool
	before  uint64
	limit   int
	acct    *Account // for create
	err     error    // for create: refused before reaching the ledger
	ev      Event    // for Record

	res opResult
	out chan struct{}
}

type opResult struct {
	rec  Receipt
	page StatementPage
	err  error
}

// ErrOutcomeUnknown is returned by an operation whose context ended while it
// was with the committer: it may or may not be applied. The request id makes
// a retry safe: a repeated id gets the first outcome back.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// submit hands o to the committer and waits for its outcome. If ctx ends
// first, it returns an error wrapping ErrOutcomeUnknown and ctx's error: o
// may not have been applied, or may be applied and committed later.
func (b *Bank) submit(ctx context.Context, o *op) opResult {
	o.out = make(chan struct{})
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return opResult{err: outcome.ErrClosed}
	}
	select {
	case b.queue <- o:
	case <-ctx.Done():
		b.mu.RUnlock()
		return opResult{err: ctx.Err()} // never queued: nothing applied
	}
	b.mu.RUnlock()
	select {
	case <-o.out:
		return o.res
	case <-ctx.Done():
		return opResult{err: fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())}
	}
}

// decodeAccount builds account id from its stored record and its state,
// which holds the balance.
func decodeAccount(id string, rec, state []byte) (Account, error) {
	var a Account
	if err := json.Unmarshal(rec, &a); err != nil {
		return a, fmt.Errorf("account %s: stored record is not valid (damaged file): %w", id, err)
	}
	s, err := decodeState(state)
	if err != nil {
		return a, fmt.Errorf("account %s: balance: %w", id, err)
	}
	a.Balance = s.Balance
	return a, nil
}

// eachAccount calls fn for every account, balance included, in id order.
func eachAccount(tx *bolt.Tx, fn func(Account) error) error {
	st := tx.Bucket(bucketState)
	return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
		a, err := decodeAccount(string(k), v, st.Get(k))
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
			return fmt.Errorf("event log: event %d: unknown encoding (damaged file)", ts)
		}
		switch string(kind) {
		case KindDeposit, KindWithdraw, KindTransfer:
		default:
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

// apply runs one operation inside the committer's transaction. It validates
// before it changes anything, so an operation that fails leaves only its
// event behind, and its batch-mates are unaffected.
func (b *Bank) apply(w *writer, o *op) opResult {
	now := b.opts.Now()
	switch o.kind {
	case opCreate:
		return b.applyCreate(w, o, now)
	case KindLogin:
		return b.applyLogin(w, o, now)
	case KindDeposit, KindWithdraw, KindTransfer:
		return b.applyMoney(w, o, now)
	case KindBalance, KindLookup, KindStatement:
		return b.applyRead(w, o, now)
	default: // Record
		e := o.ev
		e.TS = b.clock.Tick()
		e.Proc = b.opts.ProcessID
		if e.Outcome == "" {
			e.Outcome = outcome.OutcomeOK
		}
		if e.Wall.IsZero() {
			e.Wall = now
		}
		if e.ReqID != "" { // it answers a request: reserve the reply's tick
			e.ApplyTS = e.TS
			e.ReplyTS = b.clock.Tick()
		}
		w.putEvent(e, 0, 0)
		return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS}}
	}
}

func (b *Bank) newEvent(kind string, o *op, now time.Time) Event {
	ts := b.clock.Tick()
	return Event{
		TS: ts, ApplyTS: ts, Proc: b.opts.ProcessID, Kind: kind,
		Account: o.id, To: o.to, Amount: o.amount,
		ReqID: o.m.ReqID, Client: o.m.Client, ClientTS: o.m.ClientTS, RecvTS: o.m.RecvTS,
		Wall: now,
	}
}

// finish stamps the reply timestamp and the outcome, and stores the event
// with its statement links.
func (b *Bank) finish(w *writer, e *Event, opErr error, prevA, prevB uint64) {
	e.Outcome = outcome.Code(opErr)
	if opErr != nil && e.Detail == "" {
		e.Detail = opErr.Error()
	}
	e.ReplyTS = b.clock.Tick()
	w.putEvent(*e, prevA, prevB)
}

func (b *Bank) applyCreate(w *writer, o *op, now time.Time) opResult {
	a := o.acct
	e := b.newEvent(KindOpen, o, now)
	e.Detail = a.Name
	opErr := o.err
	if opErr == nil && w.get(bAccounts, []byte(a.ID)) != nil {
		opErr = fmt.Errorf("account %s: %w", a.ID, outcome.ErrAccountExists)
	}
	if opErr != nil { // refused: only the event is written
		e.Detail = ""
		b.finish(w, &e, opErr, 0, 0)
		return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS}, err: opErr}
	}
	a.Created = now
	if err := w.putAccount(a); err != nil {
		return opResult{err: err}
	}
	// The open event is the first entry of the account's statement.
	w.putState(a.ID, acctState{Balance: a.Balance, Last: e.TS, Name: a.Name})
	b.finish(w, &e, nil, 0, 0)
	return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS, Holder: a.Name}}
}

func (b *Bank) applyLogin(w *writer, o *op, now time.Time) opResult {
	var opErr error
	var holder, lockNote string
	var a *Account
	var err error
	if money.ValidAccountID(o.id) {
		a, err = w.account(o.id)
	} else {
		err = fmt.Errorf("%q: %w", o.id, outcome.ErrInvalidAccountID)
	}
	src := loginSource(o.m)
	if err != nil {
		opErr = err
	} else if opErr = b.loginRefusal(a, src, now); opErr == nil {
		if o.pinOK {
			holder = a.Name
			if a.FailedPINs != 0 || !a.LockedUntil.IsZero() || a.forgetSource(src) {
				a.FailedPINs = 0
				a.LockedUntil = time.Time{}
				if err := w.putAccount(a); err != nil {
					return opResult{err: err}
				}
			}
		} else {
			lockNote, opErr = b.wrongPIN(a, src, now)
			if err := w.putAccount(a); err != nil {
				return opResult{err: err}
			}
		}
	}
	if lockNote != "" {
		// The lock is an event of its own, before the refusal that
		// announces it, so that the log reads in causal order.
		lock := Event{TS: b.clock.Tick(), Proc: b.opts.ProcessID, Kind: KindLock, Outcome: outcome.OutcomeOK,
			Account: o.id, Balance: a.Balance, Client: o.m.Client, Detail: lockNote, Wall: now}
		w.putEvent(lock, 0, 0)
	}
	e := b.newEvent(KindLogin, o, now)
	if a != nil {
		e.Balance = a.Balance
	}
	b.finish(w, &e, opErr, 0, 0)
	return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS, Holder: holder}, err: opErr}
}

// loginSource is who is trying to log in, for counting wrong PINs.
func loginSource(m Meta) string {
	if m.Source != "" {
		return m.Source
	}
	return m.Client
}

// loginRefusal returns the *outcome.LockedError that refuses a login attempt on a
// from src at now without looking at the PIN, or nil: src is locked out of
// a, or a is throttled and the next attempt is not due yet.
func (b *Bank) loginRefusal(a *Account, src string, now time.Time) error {
	if s := a.source(src); s != nil && now.Before(s.LockedUntil) {
		return &outcome.LockedError{Until: s.LockedUntil}
	}
	if now.Before(a.LockedUntil) {
		return &outcome.LockedError{Until: a.LockedUntil, Every: b.opts.ThrottleEvery}
	}
	return nil
}

// wrongPIN counts a wrong PIN from src on a: after Options.LockAfter in a
// row from src, src is locked out for Options.LockFor; after
// Options.ThrottleAfter in a row on the account from any sources, the
// account takes one attempt per Options.ThrottleEvery. It returns, when a
// lock starts, the lock event's detail, and the refusal.
func (b *Bank) wrongPIN(a *Account, src string, now time.Time) (string, error) {
	s := a.touchSource(src)
	s.FailedPINs++
	a.FailedPINs++
	var refusal error
	var notes []string
	if s.FailedPINs >= b.opts.LockAfter {
		s.FailedPINs = 0
		s.LockedUntil = now.Add(b.opts.LockFor)
		refusal = &outcome.LockedError{Until: s.LockedUntil}
		notes = append(notes, fmt.Sprintf("%s locked out until %s after %d wrong PINs in a row",
			src, s.LockedUntil.UTC().Format(time.RFC3339), b.opts.LockAfter))
	}
	if a.FailedPINs >= b.opts.ThrottleAfter {
		a.LockedUntil = now.Add(b.opts.ThrottleEvery)
		if refusal == nil {
			refusal = &outcome.LockedError{Until: a.LockedUntil, Every: b.opts.ThrottleEvery}
		}
		notes = append(notes, fmt.Sprintf("account throttled after %d wrong PINs in a row: next attempt at %s",
			a.FailedPINs, a.LockedUntil.UTC().Format(time.RFC3339)))
	}
	if refusal == nil {
		refusal = &outcome.WrongPINError{AttemptsLeft: b.opts.LockAfter - s.FailedPINs}
	}
	return strings.Join(notes, "; "), refusal
}

// source returns the failures of src on a, nil when none are remembered.
func (a *Account) source(src string) *SourceFailures {
	for i := range a.Sources {
		if a.Sources[i].Source == src {
			return &a.Sources[i]
		}
	}
	return nil
}

// touchSource returns the failures of src on a, moved to the end as the
// most recent (added if new, forgetting the oldest beyond MaxSources).
func (a *Account) touchSource(src string) *SourceFailures {
	s := SourceFailures{Source: src}
	if i := slices.IndexFunc(a.Sources, func(f SourceFailures) bool { return f.Source == src }); i >= 0 {
		s = a.Sources[i]
		a.Sources = slices.Delete(a.Sources, i, i+1)
	}
	a.Sources = append(a.Sources, s)
	if n := len(a.Sources) - MaxSources; n > 0 {
		a.Sources = slices.Delete(a.Sources, 0, n)
	}
	return &a.Sources[len(a.Sources)-1]
}

// forgetSource clears src's wrong PINs on a after it logged in; it reports
// whether there were any.
func (a *Account) forgetSource(src string) bool {
	n := len(a.Sources)
	a.Sources = slices.DeleteFunc(a.Sources, func(f SourceFailures) bool { return f.Source == src })
	if len(a.Sources) == 0 {
		a.Sources = nil
	}
	return len(a.Sources) != n
}

func (b *Bank) checkAmount(a money.Cents) error {
	if a <= 0 {
		return fmt.Errorf("%w: must be positive, got %d cents", outcome.ErrInvalidAmount, a)
	}
	if a > b.opts.MaxAmount {
		return fmt.Errorf("%w: %s is above %s", outcome.ErrLimitExceeded, a, b.opts.MaxAmount)
	}
	return nil
}

func (b *Bank) applyMoney(w *writer, o *op, now time.Time) opResult {
	if o.m.ReqID != "" {
		first, ok, err := w.remembered(o.id, o.m.ReqID)
		if err != nil {
			return opResult{err: err}
		}
		if ok {
			e := b.newEvent(KindRetry, o, now)
			e.OrigTS = first.TS
			if first.Kind != o.kind || first.Amount != o.amount || first.To != o.to {
				// Not a resend: another request under the same id. Nothing
				// is applied and the first outcome is not relabelled.
				reused := outcome.WithMessage(outcome.ErrRequestIDReused, fmt.Sprintf(
					"request id %s was already used for %s; use a new id for a new request", o.m.ReqID, describeRequest(first)))
				b.finish(w, &e, reused, 0, 0)
				return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS}, err: reused}
			}
			e.Balance = first.Balance
			e.Detail = "repeated " + first.Kind + ": first outcome " + first.Outcome
			b.finish(w, &e, nil, 0, 0)
			return opResult{rec: Receipt{Event: first, Duplicate: true, ReplyTS: e.ReplyTS}, err: outcome.FromCode(first.Outcome)}
		}
	}
	e := b.newEvent(o.kind, o, now)
	prevA, prevB, opErr := b.moveMoney(w, o, &e)
	b.finish(w, &e, opErr, prevA, prevB)
	if o.m.ReqID != "" {
		b.reqs.add(o.id, o.m.ReqID, e.TS)
	}
	return opResult{rec: Receipt{Event: e, ReplyTS: e.ReplyTS}, err: opErr}
}

// describeRequest names a money request for a person: "a deposit of
// R$ 50,00", "a transfer of R$ 10,00 to 456".
func describeRequest(e Event) string {
	switch e.Kind {
	case KindDeposit:
		return "a deposit of " + e.Amount.String()
	case KindWithdraw:
		return "a withdrawal of " + e.Amount.String()
	case KindTransfer:
		return "a transfer of " + e.Amount.String() + " to " + e.To
	}
	return "a " + e.Kind
}

// moveMoney validates and applies a deposit, withdrawal or transfer, filling
// the resulting balances into e. Nothing is written unless all checks pass.
// On success the event becomes the newest entry of the statement of each
// account it moved; prevA and prevB are the entries it links back to.
func (b *Bank) moveMoney(w *writer, o *op, e *Event) (prevA, prevB uint64, err error) {
	if o.m.ReqID == "" || len(o.m.ReqID) > 128 {
		return 0, 0, fmt.Errorf("%w: a mutating operation needs a request id of 1 to 128 bytes", outcome.ErrInvalidRequestID)
	}
	a, err := w.state(o.id)
	if err != nil {
		return 0, 0, err
	}
	e.Balance = a.Balance
	if o.amount <= 0 || !o.opening {
		if err := b.checkAmount(o.amount); err != nil {
			return 0, 0, err
		}
	}
	switch o.kind {
	case KindDeposit:
		nb, err := addCents(a.Balance, o.amount)
		if err != nil {
			return 0, 0, err
		}
		total, err := addCents(w.deposits, o.amount)
		if err != nil {
			return 0, 0, err
		}
		a.Balance, w.deposits, w.dirtyTotals = nb, total, true
	case KindWithdraw:
		if a.Balance < o.amount {
			return 0, 0, fmt.Errorf("%w: balance is %s", outcome.ErrInsufficientFunds, a.Balance)
		}
		total, err := addCents(w.withdrawals, o.amount)
		if err != nil {
			return 0, 0, err
		}
		a.Balance -= o.amount
		w.withdrawals, w.dirtyTotals = total, true
	case KindTransfer:
		if o.to == o.id {
			return 0, 0, outcome.ErrSameAccount
		}
		to, err := w.state(o.to)
		if err != nil {
			return 0, 0, err
		}
		if a.Balance < o.amount {
			return 0, 0, fmt.Errorf("%w: balance is %s", outcome.ErrInsufficientFunds, a.Balance)
		}
		nb, err := addCents(to.Balance, o.amount)
		if err != nil {
			return 0, 0, err
		}
		a.Balance -= o.amount
		to.Balance = nb
		e.ToBalance = to.Balance
		e.Detail = to.Name
		prevB, to.Last = to.Last, e.TS
		w.putState(o.to, to)
	}
	e.Balance = a.Balance
	prevA, a.Last = a.Last, e.TS
	w.putState(o.id, a)
	return prevA, prevB, nil
}

func (b *Bank) applyRead(w *writer, o *op, now time.Time) opResult {
	e := b.newEvent(o.kind, o, now)
	var res opResult
	a, opErr := w.state(o.id)
	if opErr == nil {
		switch o.kind {
		case KindBalance:
			e.Balance = a.Balance
		case KindLookup:
			res.rec.Holder = a.Name
			e.Detail = a.Name
		case KindStatement:
			e.Balance = a.Balance
			res.page, opErr = statement(w.event, o.id, a.Last, o.before, o.limit)
		}
	}
	b.finish(w, &e, opErr, 0, 0)
	res.rec.Event = e
	res.rec.ReplyTS = e.ReplyTS
	res.err = opErr
	return res
}

// statement lists an account's entries (its open event and its successful
// money events) with TS < before (all when before is 0), newest first, at
// most limit. It follows the account's chain through the log from head, its
// newest entry; a cursor from a previous page points just above the entry it
// starts at, which is then read directly.
func statement(event func(ts uint64) []byte, id string, head, before uint64, limit int) (StatementPage, error) {
	var page StatementPage
	ts := head
	if before != 0 && before-1 < head {
		if raw := event(before - 1); raw != nil {
			if e, _, _, err := decodeEvent(before-1, raw); err == nil && isEntryOf(e, id) {
				ts = before - 1
			}
		}
	}
	for ts != 0 {
		raw := event(ts)
		if raw == nil {
			return page, fmt.Errorf("statement of %s: event %d missing", id, ts)
		}
		e, prevA, prevB, err := decodeEvent(ts, raw)
		if err != nil {
			return page, fmt.Errorf("statement of %s: %w", id, err)
		}
		if before == 0 || ts < before {
			if len(page.Entries) == limit {
				page.Next = ts + 1
				break
			}
			if e.Account != id {
				// Money received: the payer's balance and request are
				// theirs, not this account's.
				e.Balance, e.Client, e.ReqID, e.ClientTS, e.RecvTS, e.ReplyTS = 0, "", "", 0, 0, 0
			}
			page.Entries = append(page.Entries, e)
		}
		if e.Account == id {
			ts = prevA
		} else {
			ts = prevB
		}
	}
	return page, nil
}

// isEntryOf reports whether e is an entry of account id's statement.
func isEntryOf(e Event, id string) bool {
	if e.Outcome != outcome.OutcomeOK || (e.Account != id && e.To != id) {
		return false
	}
	switch e.Kind {
	case KindOpen, KindDeposit, KindWithdraw:
		return e.Account == id
	case KindTransfer:
		return true
	}
	return false
}

// Authenticate checks an account's PIN for the source m.Source. The slow
// hash comparison runs before the operation reaches the committer, at most
// GOMAXPROCS of them at a time (waiting for a turn honours ctx), and not at
// all for an attempt that will be refused anyway. The committer then counts
// failures per source and per account (see the package doc), returns a
// *outcome.LockedError for a source locked out or an account throttled and a
// *outcome.WrongPINError for a wrong PIN, and logs the attempt.
func (b *Bank) Authenticate(ctx context.Context, m Meta, id, pin string) (Receipt, error) {
	o := &op{kind: KindLogin, m: m, id: id}
	if money.ValidAccountID(id) {
		if a, err := b.lookup(id); err == nil && b.loginRefusal(&a, loginSource(m), b.opts.Now()) == nil {
			select {
			case b.pinSlots <- struct{}{}:
			case <-ctx.Done():
				return Receipt{}, fmt.Errorf("login %s: waiting for a turn to check the PIN: %w", id, ctx.Err())
			}
			o.pinOK = bcrypt.CompareHashAndPassword(a.PINHash, []byte(pin)) == nil
			<-b.pinSlots
		}
	}
	r := b.submit(ctx, o)
	return r.rec, r.err
}

// lookup reads account id, balance included, from the committed state.
func (b *Bank) lookup(id string) (Account, error) {
	var a Account
	err := b.db.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketAccounts).Get([]byte(id))
		if rec == nil {
			return fmt.Errorf("account %s: %w", id, outcome.ErrAccountNotFound)
		}
		var err error
		a, err = decodeAccount(id, rec, tx.Bucket(bucketState).Get([]byte(id)))
		return err
	})
	return a, err
}

// Balance returns the account's balance in Receipt.Event.Balance.
func (b *Bank) Balance(ctx context.Context, m Meta, id string) (Receipt, error) {
	r := b.submit(ctx, &op{kind: KindBalance, m: m, id: id})
	return r.rec, r.err
}

// Deposit adds amount to the account.
func (b *Bank) Deposit(ctx context.Context, m Meta, id string, amount money.Cents) (Receipt, error) {
	r := b.submit(ctx, &op{kind: KindDeposit, m: m, id: id, amount: amount})
	return r.rec, r.err
}

// Withdraw takes amount from the account; it never leaves it negative.
func (b *Bank) Withdraw(ctx context.Context, m Meta, id string, amount money.Cents) (Receipt, error) {
	r := b.submit(ctx, &op{kind: KindWithdraw, m: m, id: id, amount: amount})
	return r.rec, r.err
}

// Transfer moves amount from one account to another in one step. The
// receipt's Event.Balance is the sender's new balance and Event.ToBalance the
// recipient's; Event.Detail holds the recipient's name.
func (b *Bank) Transfer(ctx context.Context, m Meta, from, to string, amount money.Cents) (Receipt, error) {
	r := b.submit(ctx, &op{kind: KindTransfer, m: m, id: from, to: to, amount: amount})
	return r.rec, r.err
}

// Lookup returns the holder's name of an account in Receipt.Holder, so an ATM
// can confirm a transfer's recipient.
func (b *Bank) Lookup(ctx context.Context, m Meta, id string) (Receipt, error) {
	r := b.submit(ctx, &op{kind: KindLookup, m: m, id: id})
	return r.rec, r.err
}

// Statement returns the account's money entries, newest first: at most limit
// (default 20, at most 100) with timestamps below before (0: from the newest).
func (b *Bank) Statement(ctx context.Context, m Meta, id string, before uint64, limit int) (StatementPage, Receipt, error) {
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	r := b.submit(ctx, &op{kind: KindStatement, m: m, id: id, before: before, limit: limit})
	return r.page, r.rec, r.err
}

// Record appends a non-money event (server start and stop, connect, logout,
// push, disconnect...) to the log. Its timestamp comes from a tick of the
// clock in the committer; the event is on disk when Record returns.
func (b *Bank) Record(ctx context.Context, e Event) (Event, error) {
	switch e.Kind {
	case KindDeposit, KindWithdraw, KindTransfer, KindOpen, opCreate, KindLogin, KindBalance, KindLookup, KindStatement:
		return Event{}, fmt.Errorf("record %s: use the operation's own method", e.Kind)
	}
	r := b.submit(ctx, &op{kind: "record", ev: e})
	return r.rec.Event, r.err
}

// CreateAccount opens a new account with balance zero, on the bank's own
// behalf (the command line, the default accounts).
func (b *Bank) CreateAccount(ctx context.Context, id, name, pin string) (Account, error) {
	r, err := b.OpenAccount(ctx, Meta{Client: b.opts.ProcessID}, id, name, pin)
	if err != nil {
		return Account{}, err
	}
	return Account{ID: id, Name: r.Holder, Created: r.Event.Wall}, nil
}

// OpenAccount opens a new account with balance zero for a request. The
// attempt is logged whatever its outcome; Receipt.Holder is the name as
// stored (trimmed).
func (b *Bank) OpenAccount(ctx context.Context, m Meta, id, name, pin string) (Receipt, error) {
	name = strings.TrimSpace(name)
	o := &op{kind: opCreate, m: m, id: id, acct: &Account{ID: id, Name: name}}
	switch {
	case !money.ValidAccountID(id):
		o.err = fmt.Errorf("%q: %w", id, outcome.ErrInvalidAccountID)
	case name == "":
		o.err = fmt.Errorf("%w: it is empty; use 1 to 80 characters on one line", outcome.ErrInvalidName)
	case !utf8.ValidString(name) || strings.ContainsAny(name, "\n\r\t"):
		o.err = fmt.Errorf("%w: it is not one line of text; use 1 to 80 characters on one line", outcome.ErrInvalidName)
	case utf8.RuneCountInString(name) > 80:
		// The name itself is not repeated: it would fill the log.
		o.err = fmt.Errorf("%w: holder name of %d characters: use 1 to 80 characters on one line",
			outcome.ErrInvalidName, utf8.RuneCountInString(name))
	case !validPIN(pin):
		o.err = outcome.ErrInvalidPIN
	default:
		hash, err := bcrypt.GenerateFromPassword([]byte(pin), b.opts.PINCost)
		if err != nil {
			return Receipt{}, fmt.Errorf("hash PIN: %w", err)
		}
		o.acct.PINHash = hash
	}
	r := b.submit(ctx, o)
	return r.rec, r.err
}

// Accounts lists every account, ordered by id bytes.
func (b *Bank) Accounts() ([]Account, error) {
	var out []Account
	err := b.db.View(func(tx *bolt.Tx) error {
		return eachAccount(tx, func(a Account) error {
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// Audit reads every account and the running totals in one read transaction,
// so the figures are consistent with each other.
func (b *Bank) Audit() (Audit, error) {
	var a Audit
	err := b.db.View(func(tx *bolt.Tx) error {
		a.TS = b.clock.Now()
		meta := tx.Bucket(bucketMeta)
		d, err := readU64(meta, keyDeposits)
		if err != nil {
			return err
		}
		wd, err := readU64(meta, keyWithdrawals)
		if err != nil {
			return err
		}
		a.Deposits, a.Withdrawals = money.Cents(d), money.Cents(wd)
		return eachAccount(tx, func(acct Account) error {
			acct.PINHash = nil
			a.Accounts = append(a.Accounts, acct)
			a.Total += acct.Balance
			if acct.Balance < 0 {
				a.Negative = append(a.Negative, acct.ID)
			}
			return nil
		})
	})
	return a, err
}

// Events calls fn for every event in the log in timestamp order, stopping at
// the first error fn returns.
func (b *Bank) Events(fn func(Event) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return eachEvent(tx, fn) })
}

func eachEvent(tx *bolt.Tx, fn func(Event) error) error {
	return tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
		ts, err := eventKey(k)
		if err != nil {
			return err
		}
		e, _, _, err := decodeEvent(ts, v)
		if err != nil {
			return err
		}
		return fn(e)
	})
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

// Locked reports whether a is throttled now after too many wrong PINs from
// several sources. A source locked out of a does not make it Locked: others
// can still log in.
func (b *Bank) Locked(a Account) bool { return b.opts.Now().Before(a.LockedUntil) }

// addCents returns a+b, or outcome.ErrOverflow if the sum does not fit in int64.
func addCents(a, b money.Cents) (money.Cents, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, outcome.ErrOverflow
	}
	return s, nil
}

func validPIN(pin string) bool { return money.Digits(pin, 4, 12) }
