// Package etcdledger is a ledger of the atm system kept in an etcd cluster,
// so that several bank servers (atm serve processes), each with its own
// process id and Lamport clock, serve one bank. It implements
// netproto/server.Ledger with the observable semantics of bank.Bank: the
// same events, receipts, outcome codes and refusals.
//
// Keys, under Options.Prefix (default "atm/"):
//
//	accounts/<id>                 the account (bank.Account as JSON) with its
//	                              "last": the timestamp of its last event, and
//	                              the newest of its statement entries and
//	                              remembered request ids (see below)
//	log/<proc>/<ts, 20 digits>    the event log: a segment, the events one
//	                              server committed in one transaction, as a
//	                              JSON array in timestamp order, named by
//	                              the process id and the first timestamp
//	stmt/<id>/<ts 20>             the account's older statement entries, in
//	                              chunks of 16 references to events, named by
//	                              the oldest entry's timestamp
//	reqids/<account>/<n 20>       the n-th chunk of 16 money requests the
//	                              account remembers: their ids and their
//	                              first events' references
//	totals                        {"deposits","withdrawals"} ever
//	clock/<proc>                  each server's clock lease
//	format                        the version of this layout, "2"
//	remember_requests             the bank's window of remembered requests
//	                              per account (Options.RememberRequests of
//	                              the server that created the bank)
//
// An event's reference is "<ts>/<ts − segment's ts>/<proc>": the event and
// the segment that holds it. A server's segments never overlap: each
// holds timestamps above the one before, so the log in (ts, proc) order is
// a merge of the servers' segments, and EventsAfter starts at the segment
// that holds the next timestamp. A transaction writes one key for the log
// however many events it commits, and an operation on an account rewrites
// only the account's record, which holds its newest statement entries and
// remembered requests (up to 16 of each); a full set moves to a chunk of
// its own.
//
// Guarantees:
//
//   - Money is int64 cents; every arithmetic step is overflow-checked and no
//     balance ever goes negative.
//   - Every operation is part of one optimistic etcd transaction: it reads
//     the keys it touches, computes, and its writes commit only if none of
//     those keys changed since it was read (a ModRevision comparison per
//     key); on a conflict it starts again (at most Options.MaxAttempts
//     times, with a jittered backoff). A server commits its concurrent
//     operations together, in batches computed one operation after the
//     other (see batch.go and Stats). A money change, its event and its
//     statement entries commit together, and nothing is answered before
//     the commit, which etcd makes durable on a quorum of members.
//   - Lamport time across servers: an account's record carries the
//     timestamp of its last event, and a server first receives it
//     (clock.Receive) before it ticks for the operation. So each account's
//     events have rising timestamps whichever server applied them, and
//     replaying the whole log in (ts, proc) order reproduces every balance
//     (see Verify). An operation's record holds its receive (Meta.RecvTS),
//     apply (its key) and reply timestamps, the reply reserved by a tick at
//     apply time, like bank's. Every operation on an account (reads and
//     logins included, since they are logged) moves its "last".
//   - A mutating operation carries a request id. A money request is
//     remembered by its account, if it exists, with a reference to its
//     first event, in the same transaction as that event; at least the
//     last RememberRequests per account are kept (fewer than 32 more):
//     the account record lists the newest ones, and the transaction that
//     moves 16 of them to a chunk deletes the chunk that falls out of the
//     window (see requests.go). The window is the bank's, the same on
//     every server: the first server to open a new bank stores its
//     Options.RememberRequests, and every server uses the stored value
//     whatever its own option. A repeated id, on any server, gets the
//     first outcome back and nothing is applied again; an id sent again
//     with another request is refused with outcome.ErrRequestIDReused.
//   - Wrong PINs are counted per (account, source) and account-wide, with
//     bank's policy and options (LockAfter, LockFor, ThrottleAfter,
//     ThrottleEvery), in the account's record; at most GOMAXPROCS PIN
//     hashes are compared at once by a server.
//   - Each server's clock never goes back, across crashes: clock/<proc>
//     holds a lease kept ahead of the clock, every transaction waits until
//     the lease covers its timestamps, SendTick waits until it covers the
//     tick, and Open resumes the clock from it. A clean Close stores the
//     clock exactly. Two live servers must not share a process id.
//   - The event log only grows: a segment is written only if its key is
//     new, and a server's segments have rising timestamps.
//   - If etcd does not commit within Options.CommitTimeout (no quorum, no
//     member reachable), the operation fails with an error matching
//     outcome.ErrClosed ("unavailable") and bank.ErrOutcomeUnknown: nothing
//     was acknowledged, and the request id makes a retry safe. If the
//     caller's context ends while committing, the error matches
//     bank.ErrOutcomeUnknown.
package etcdledger

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"atm/bank"
	"atm/bank/lamport"
	"atm/bank/money"
	"atm/bank/outcome"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
)

// Options configure a Ledger. The zero value gives the documented defaults.
type Options struct {
	Prefix           string        // key prefix; default "atm/"
	ProcessID        string        // this server's process id; default "bank"
	MaxAmount        money.Cents   // per-operation limit; default 10_000_000
	LockAfter        int           // default 3
	LockFor          time.Duration // default 15 minutes
	ThrottleAfter    int           // default 10
	ThrottleEvery    time.Duration // default 1 minute
	RememberRequests int           // money request ids remembered per account, for a new bank (see Ledger.RememberRequests); default 1000
	PINCost          int           // bcrypt cost for new PINs; default bcrypt.DefaultCost
	NoDefaults       bool          // do not create the default accounts on an empty store
	CommitTimeout    time.Duration // how long one etcd call may take; default 5s
	MaxAttempts      int           // attempts of a transaction on conflicts; default 200
	Now              func() time.Time
	// OnEvent, if set, is called for each event once it is committed, by
	// the committer goroutine, in timestamp order within a transaction, before
	// the operations are answered. It must not call the Ledger.
	OnEvent func(bank.Event)
}

// lockout is the wrong-PIN policy o sets, bank's.
func (o Options) lockout() bank.Lockout {
	return bank.Lockout{LockAfter: o.LockAfter, LockFor: o.LockFor, ThrottleAfter: o.ThrottleAfter, ThrottleEvery: o.ThrottleEvery}
}

func withDefaults(o Options) Options {
	if o.Prefix == "" {
		o.Prefix = "atm/"
	}
	if o.ProcessID == "" {
		o.ProcessID = "bank"
	}
	if o.MaxAmount <= 0 {
		o.MaxAmount = 10_000_000
	}
	lk := o.lockout().WithDefaults()
	o.LockAfter, o.LockFor, o.ThrottleAfter, o.ThrottleEvery = lk.LockAfter, lk.LockFor, lk.ThrottleAfter, lk.ThrottleEvery
	if o.RememberRequests <= 0 {
		o.RememberRequests = 1000
	}
	if o.PINCost == 0 {
		o.PINCost = bcrypt.DefaultCost
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 5 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 200
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Ledger is a server's view of the bank kept in etcd. All its methods are
// safe for concurrent use.
type Ledger struct {
	cli   *clientv3.Client
	opts  Options
	clock *lamport.Clock

	mu     sync.RWMutex // guards closed
	closed bool
	done   chan struct{}

	pinSlots chan struct{}
	lease    lease
	openRev  int64 // the etcd revision Open read first; Changes starts after it
	com      committer
}

// Open opens the ledger kept in etcd through cli (which stays the
// caller's: Close does not close it). The clock resumes from this process
// id's lease. On an empty store it creates bank.DefaultAccounts unless
// opts.NoDefaults; several servers may do so at once.
func Open(ctx context.Context, cli *clientv3.Client, opts Options) (*Ledger, error) {
	opts = withDefaults(opts)
	if !validProc(opts.ProcessID) {
		return nil, fmt.Errorf("open the etcd ledger: process id %q: use a name without slashes", opts.ProcessID)
	}
	l := &Ledger{cli: cli, opts: opts, done: make(chan struct{}),
		pinSlots: make(chan struct{}, runtime.GOMAXPROCS(0))}
	if err := l.checkLayout(ctx, true); err != nil {
		return nil, fmt.Errorf("open the etcd ledger: %w", err)
	}
	start, _, rev, err := l.readLeaseAt(ctx)
	if err != nil {
		return nil, fmt.Errorf("open the etcd ledger: %w", l.unavailable(ctx, err))
	}
	l.openRev = rev
	l.clock = lamport.NewClock(start)
	l.startLease(start)
	l.startCommitter()
	if !opts.NoDefaults {
		empty, err := l.empty(ctx)
		if err == nil && empty {
			err = l.seed(ctx)
		}
		if err != nil {
			l.halt()
			return nil, fmt.Errorf("create default accounts: %w", err)
		}
	}
	return l, nil
}

// OpenReadOnly returns a ledger that only reads the bank kept in etcd
// through cli, for offline tools (atm verify, atm log): Verify, Events,
// EventsAfter, Audit and Accounts work; every operation, record and
// SendTick fails with outcome.ErrClosed. It takes no clock lease and
// writes nothing, so it may run beside the servers, whatever their process
// ids. Close does nothing.
func OpenReadOnly(cli *clientv3.Client, opts Options) *Ledger {
	opts = withDefaults(opts)
	l := &Ledger{cli: cli, opts: opts, done: make(chan struct{}), closed: true,
		clock: lamport.NewClock(0), pinSlots: make(chan struct{}, 1)}
	close(l.done)
	l.lease.stopped = make(chan struct{})
	close(l.lease.stopped)
	l.lease.stored = make(chan struct{})
	close(l.lease.stored)
	l.lease.lastErr = outcome.ErrClosed
	return l
}

// empty reports whether the store has no account and no event.
func (l *Ledger) empty(ctx context.Context) (bool, error) {
	for _, p := range []string{l.k("accounts/"), l.k("log/")} {
		cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
		r, err := l.cli.Get(cctx, p, clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err != nil {
			return false, l.unavailable(ctx, err)
		}
		if r.Count > 0 {
			return false, nil
		}
	}
	return true, nil
}

func (l *Ledger) seed(ctx context.Context) error {
	for _, d := range bank.DefaultAccounts {
		if _, err := l.CreateAccount(ctx, d.ID, d.Name, d.PIN); err != nil && !errors.Is(err, outcome.ErrAccountExists) {
			return err
		}
		m := bank.Meta{ReqID: "open-" + d.ID, Client: l.opts.ProcessID}
		if _, err := l.money(ctx, &moneyOp{kind: bank.KindDeposit, m: m, id: d.ID, amount: d.Opening, opening: true}); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the ledger and stores the clock's exact value under its
// process id. Operations after Close fail with outcome.ErrClosed.
func (l *Ledger) Close() error {
	if !l.halt() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	return l.storeExactClock(ctx)
}

// halt stops the ledger without storing the clock (what a crash leaves);
// it reports whether it was open.
func (l *Ledger) halt() bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.closed = true
	close(l.done)
	l.mu.Unlock()
	<-l.com.exited
	<-l.lease.stopped
	return true
}

func (l *Ledger) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}

// Clock returns the server's Lamport clock.
func (l *Ledger) Clock() *lamport.Clock { return l.clock }

// ProcessID returns the process id the ledger stamps on its events.
func (l *Ledger) ProcessID() string { return l.opts.ProcessID }

// MaxAmount returns the per-operation limit.
func (l *Ledger) MaxAmount() money.Cents { return l.opts.MaxAmount }

// k returns the full key of a key relative to the prefix.
func (l *Ledger) k(rel string) string { return l.opts.Prefix + rel }

func (l *Ledger) accountKey(id string) string { return l.k("accounts/" + id) }

func (l *Ledger) segmentKey(proc string, ts uint64) string {
	return l.k(fmt.Sprintf("log/%s/%020d", proc, ts))
}

func (l *Ledger) stmtKey(id string, ts uint64) string {
	return l.k(fmt.Sprintf("stmt/%s/%020d", id, ts))
}

func (l *Ledger) reqChunkKey(account string, n uint64) string {
	return l.k(fmt.Sprintf("reqids/%s/%020d", account, n))
}

func (l *Ledger) formatKey() string { return l.k("format") }

func (l *Ledger) rememberKey() string { return l.k("remember_requests") }

func (l *Ledger) totalsKey() string { return l.k("totals") }

func (l *Ledger) clockKey() string { return l.k("clock/" + l.opts.ProcessID) }

// ErrUnavailable is wrapped by the error of an operation etcd did not
// answer in time; it matches outcome.ErrClosed.
var ErrUnavailable = outcome.WithMessage(outcome.ErrClosed, "the etcd cluster is unavailable (no quorum or no member reachable)")

// unavailable words an error of an etcd call made under ctx.
func (l *Ledger) unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// RememberRequests returns how many money request ids the bank remembers
// per account, at least: the value stored with the bank when it was
// created, which every server uses.
func (l *Ledger) RememberRequests() int { return l.opts.RememberRequests }
