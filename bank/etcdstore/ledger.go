// Package etcdstore is a ledger of the atm system kept in an etcd cluster,
// so that several bank servers (atm serve processes), each with its own
// process id and Lamport clock, serve one bank. It implements
// netproto/server.Ledger with package bank's rules, as boltstore does: the
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
//	                              the process id and the first timestamp,
//	                              framed with its server's chain hashes:
//	                              {"prev":"<hex>","hash":"<hex>","events":[…]}
//	                              (see chain.go); "[]" is a void segment
//	checkpoints/<ts 20>/<proc>    the state a checkpoint recorded
//	                              (bank.Checkpoint.Encode), its event the
//	                              first of the segment log/<proc>/<ts>
//	stmt/<id>/<ts 20>             the account's older statement entries, in
//	                              chunks of 16 references to events, named by
//	                              the oldest entry's timestamp
//	reqids/<account>/<n 20>       the n-th chunk of 16 money requests the
//	                              account remembers: their ids and their
//	                              first events' references
//	totals                        {"deposits","withdrawals"} ever
//	clock/<proc>                  each server's clock lease
//	format                        the version of this layout, "3" ("2":
//	                              segments without hashes, read as they
//	                              are; a server that opens such a bank
//	                              marks it "3")
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
// Guarantees, besides the rules' (see package bank):
//
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
//     (see bank.Ledger.Verify). Every operation on an account (reads and
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
//     whatever its own option; a repeat is recognised on any server.
//   - Each server's clock lease (bank.LeaseAhead) is kept in clock/<proc>,
//     and every transaction waits until it covers its timestamps. Two live
//     servers must not share a process id.
//   - The event log only grows: a segment is written only if its key is
//     new, and a server's segments have rising timestamps. Each server's
//     segments are a chain of SHA-256 hashes (see chain.go): Verify finds
//     a changed byte, and a segment removed, made void or moved, and names
//     it by its first event's timestamp and its server.
//   - A checkpoint records the bank at the revision it read: every
//     account, the totals and each server's chain head; its state and its
//     event commit together in its server's next transaction, which
//     compares nothing, so it never conflicts (see chain.go). Its state is
//     one key, so etcd's limit on a request (--max-request-bytes, 1.5 MiB
//     by default) bounds it to some tens of thousands of accounts.
//   - If etcd does not commit within Options.CommitTimeout (no quorum, no
//     member reachable), the operation fails with an error matching
//     outcome.ErrClosed ("unavailable") and bank.ErrOutcomeUnknown: nothing
//     was acknowledged, and the request id makes a retry safe. If the
//     caller's context ends while committing, the error matches
//     bank.ErrOutcomeUnknown.
package etcdstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"atm/bank"
	"atm/bank/lamport"
	"atm/bank/outcome"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Options configure a Ledger: the ledger's options and the store's. The
// zero value gives the documented defaults. RememberRequests counts money
// request ids remembered per account, for a new bank (see
// Ledger.RememberRequests); default 1000.
type Options struct {
	bank.Options
	Prefix        string        // key prefix; default "atm/"
	CommitTimeout time.Duration // how long one etcd call may take; default 5s
	MaxAttempts   int           // attempts of a transaction on conflicts; default 200
}

func withDefaults(o Options) Options {
	if o.RememberRequests <= 0 {
		o.RememberRequests = 1000
	}
	o.Options = o.Options.WithDefaults()
	if o.Prefix == "" {
		o.Prefix = "atm/"
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 5 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 200
	}
	return o
}

// Ledger is a server's view of the bank kept in etcd: the ledger with its
// store. All its methods are safe for concurrent use.
type Ledger struct {
	*bank.Ledger
	*store
}

// store is the bank's keys in etcd under a ledger, with its committer.
type store struct {
	cli   *clientv3.Client
	opts  Options
	rules *bank.Rules
	clock *lamport.Clock

	mu     sync.RWMutex // guards closed
	closed bool
	done   chan struct{}

	appended     bank.Signal // see Appended
	appendedOnce sync.Once

	lease   *bank.Lease
	openRev int64 // the etcd revision Open read first; Changes starts after it
	com     committer
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
	l := &store{cli: cli, opts: opts, done: make(chan struct{})}
	if err := l.checkLayout(ctx, true); err != nil {
		return nil, fmt.Errorf("open the etcd ledger: %w", err)
	}
	start, _, rev, err := l.readLeaseAt(ctx)
	if err != nil {
		return nil, fmt.Errorf("open the etcd ledger: %w", l.unavailable(ctx, err))
	}
	l.openRev = rev
	own, err := l.headOf(ctx, opts.ProcessID, 0)
	if err != nil {
		return nil, fmt.Errorf("open the etcd ledger: its log: %w", err)
	}
	l.com.chain = ownChain{head: own.Hash, ts: own.TS}
	cut, err := l.archivedCut(ctx)
	if err != nil {
		return nil, fmt.Errorf("open the etcd ledger: %w", err)
	}
	l.clock = lamport.NewClock(start)
	l.rules = bank.NewRules(opts.Options, l.clock)
	l.lease = bank.StartLease(l.clock, start, l.saveLease, l.done)
	l.startCommitter()
	if cut > l.clock.Now() {
		l.clock.Receive(cut) // its events come after every archived one (see archive.go)
	}
	led := &Ledger{Ledger: bank.NewLedger(l.rules, l, l.lease), store: l}
	if !opts.NoDefaults {
		empty, err := l.empty(ctx)
		if err == nil && empty {
			err = led.Seed(ctx)
		}
		if err != nil {
			l.halt()
			return nil, fmt.Errorf("create default accounts: %w", err)
		}
	}
	return led, nil
}

// OpenReadOnly returns a ledger that only reads the bank kept in etcd
// through cli, for offline tools (atm verify, atm log): Verify, Events,
// EventsAfter, Audit and Accounts work; every operation, record and
// SendTick fails with outcome.ErrClosed. It takes no clock lease and
// writes nothing, so it may run beside the servers, whatever their process
// ids. Close does nothing.
func OpenReadOnly(cli *clientv3.Client, opts Options) *Ledger {
	opts = withDefaults(opts)
	l := &store{cli: cli, opts: opts, done: make(chan struct{}), closed: true, clock: lamport.NewClock(0)}
	l.rules = bank.NewRules(opts.Options, l.clock)
	close(l.done)
	return &Ledger{Ledger: bank.NewLedger(l.rules, l, nil), store: l}
}

// Close stops the ledger and stores the clock's exact value under its
// process id. Operations after Close fail with outcome.ErrClosed.
func (l *Ledger) Close() error { return l.store.Close() }

// Appended returns a channel closed once segments are committed after the
// call, by this server or another, or when the ledger closes (see
// bank.Ledger.Appended).
func (l *Ledger) Appended() <-chan struct{} { return l.store.Appended() }

// empty reports whether the store has no account and no event.
func (l *store) empty(ctx context.Context) (bool, error) {
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

// Close stops the ledger and stores the clock's exact value under its
// process id. Operations after Close fail with outcome.ErrClosed.
func (l *store) Close() error {
	if !l.halt() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	return l.storeExactClock(ctx)
}

// halt stops the ledger without storing the clock (what a crash leaves);
// it reports whether it was open.
func (l *store) halt() bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.closed = true
	close(l.done)
	l.mu.Unlock()
	l.appended.Notify()
	<-l.com.exited
	if l.lease != nil {
		<-l.lease.Stopped()
	}
	return true
}

func (l *store) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}

// k returns the full key of a key relative to the prefix.
func (l *store) k(rel string) string { return l.opts.Prefix + rel }

func (l *store) accountKey(id string) string { return l.k("accounts/" + id) }

func (l *store) segmentKey(proc string, ts uint64) string {
	return l.k(fmt.Sprintf("log/%s/%020d", proc, ts))
}

func (l *store) stmtKey(id string, ts uint64) string {
	return l.k(fmt.Sprintf("stmt/%s/%020d", id, ts))
}

func (l *store) reqChunkKey(account string, n uint64) string {
	return l.k(fmt.Sprintf("reqids/%s/%020d", account, n))
}

func (l *store) formatKey() string { return l.k("format") }

func (l *store) rememberKey() string { return l.k("remember_requests") }

func (l *store) totalsKey() string { return l.k("totals") }

func (l *store) clockKey() string { return l.k("clock/" + l.opts.ProcessID) }

// ErrUnavailable is wrapped by the error of an operation etcd did not
// answer in time; it matches outcome.ErrClosed.
var ErrUnavailable = outcome.WithMessage(outcome.ErrClosed, "the etcd cluster is unavailable (no quorum or no member reachable)")

// unavailable words an error of an etcd call made under ctx.
func (l *store) unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// RememberRequests returns how many money request ids the bank remembers
// per account, at least: the value stored with the bank when it was
// created, which every server uses.
func (l *store) RememberRequests() int { return l.opts.RememberRequests }
