package bank

import (
	"crypto/sha256"
	"fmt"
	"sort"

	"atm/bank/money"
	"atm/bank/outcome"
)

// VerifyReport summarises a Verify.
type VerifyReport struct {
	Events      int // events replayed
	Accounts    int
	Total       money.Cents
	Deposits    money.Cents
	Withdrawals money.Cents
	LastTS      uint64
	// From is the checkpoint the replay started from: its event's
	// timestamp and process id (FromTS 0: from the first event).
	FromTS   uint64
	FromProc string
	// Records counts the records whose hash was checked (an event on a
	// store with one chain, a server's segment on etcd), Unchained those
	// written before the log was chained (an older format): replayed, but
	// their bytes are not checked.
	Records, Unchained int
	// Checkpoints counts the checkpoint events replayed, each checked
	// against its stored state.
	Checkpoints int
}

// Replay replays a log, event by event in (ts, proc) order, and checks:
//   - the events are in strictly rising (ts, proc) order; every
//     operation's apply timestamp is its timestamp, with receive < apply <
//     reply;
//   - each account's events (operations, retries, locks) have strictly
//     rising timestamps, whichever server applied them (Lamport order);
//   - every successful money event leaves the balance the event recorded
//     and never a negative one;
//   - every record's hash, chained to the record before it on its chain
//     (Link, End): a changed byte, a record removed, added or moved is
//     found, and named;
//   - every checkpoint event's stored state: it hashes to the digest the
//     event recorded, and, on a store with one chain, its balances, totals
//     and chain head are the replay's at that point;
//
// and then, with Compare, that the replayed balances equal the stored ones
// and the stored totals the replayed ones, with money conserved. A replay
// may start from a checkpoint (StartFrom) instead of the empty bank.
type Replay struct {
	Report VerifyReport
	// State, if set, reads the stored state of the checkpoint whose
	// event is at (ts, proc) (nil: none), for the checkpoints replayed.
	State func(ts uint64, proc string) ([]byte, error)

	bal      map[string]money.Cents
	lastOf   map[string]uint64
	lastTS   uint64
	lastProc string

	chains     map[string]*chainState
	from       *Checkpoint // the checkpoint the replay starts from
	fromDigest Hash
	fromSeen   bool
}

// chainState is where the replay of one chain stands: the hash of the
// last record checked, and of the one before it; started once a record
// with a hash was met (or the replay started from one).
type chainState struct {
	head, before Hash
	started      bool
}

// NewReplay starts a replay from the empty bank.
func NewReplay() *Replay {
	return &Replay{bal: map[string]money.Cents{}, lastOf: map[string]uint64{}, chains: map[string]*chainState{}}
}

// StartFrom starts the replay from a checkpoint: its balances and totals,
// and each chain from its head. Its state must hash to the digest its
// event recorded, and its event must be replayed (it is the first record
// of its chain after its head): a changed byte of either is found.
func (r *Replay) StartFrom(sc *StoredCheckpoint) error {
	e := sc.Event
	where := fmt.Sprintf("checkpoint L=%d/%s", e.TS, e.Proc)
	facts, err := parseCheckpointDetail(e.Detail)
	if e.Kind != KindCheckpoint || e.Outcome != outcome.OutcomeOK {
		err = fmt.Errorf("its event is a %s event, outcome %s", e.Kind, e.Outcome)
	}
	if err != nil {
		return fmt.Errorf("%s: %w: the event was changed", where, err)
	}
	digest := Hash(sha256.Sum256(sc.State))
	if digest != facts.state {
		return fmt.Errorf("%s: its stored state hashes to %s, but its event recorded %s: the state or the event was changed",
			where, short(digest), short(facts.state))
	}
	c, err := DecodeCheckpoint(sc.State)
	if err == nil && (c.TS != e.TS || c.Proc != e.Proc) {
		err = fmt.Errorf("it is the state of L=%d/%s", c.TS, c.Proc)
	}
	if err != nil {
		return fmt.Errorf("%s: its stored state: %w", where, err)
	}
	if err := checkFacts(where, facts, &c); err != nil {
		return err
	}
	r.from, r.fromDigest = &c, digest
	r.Report.FromTS, r.Report.FromProc = c.TS, c.Proc
	for _, b := range c.Balances {
		r.bal[b.ID] = b.Balance
	}
	r.Report.Deposits, r.Report.Withdrawals = c.Totals.Deposits, c.Totals.Withdrawals
	for _, h := range c.Heads {
		r.chains[h.Chain] = &chainState{head: h.Hash, started: !h.Hash.IsZero()}
	}
	return nil
}

// From returns the heads of the chains the replay starts after: none when
// it starts from the first record.
func (r *Replay) From() []ChainHead {
	if r.from == nil {
		return nil
	}
	return r.from.Heads
}

func (r *Replay) chain(name string) *chainState {
	c, ok := r.chains[name]
	if !ok {
		c = &chainState{}
		r.chains[name] = c
	}
	return c
}

// Link checks the next record of its chain: that its hash is the hash of
// its bytes chained to the record before it. A record without a hash is
// counted (the log was not chained yet), unless the chain has started.
func (r *Replay) Link(k Link) error {
	c := r.chain(k.Chain)
	if !k.Hashed {
		if c.started {
			return fmt.Errorf("%s: it has no hash, but the records before it on its chain have one: "+
				"its record was changed, or added to the log", k.Name)
		}
		r.Report.Unchained++
		return nil
	}
	if k.Prev != nil && *k.Prev != c.head {
		return fmt.Errorf("%s: it is chained to %s, but the record before it on its chain hashes to %s: "+
			"a record before it was removed, added or moved, or this one was changed", k.Name, short(*k.Prev), short(c.head))
	}
	if sum := ChainSum(c.head, k.Body); sum != k.Hash {
		return fmt.Errorf("%s: its bytes hash to %s, not to %s, the hash stored with it: "+
			"it was changed, or the record before it on its chain was removed, added or moved", k.Name, short(sum), short(k.Hash))
	}
	c.before, c.head, c.started = c.head, k.Hash, true
	r.Report.Records++
	return nil
}

// End checks that chain ends where its store records that it ends: a
// record removed from its end is found.
func (r *Replay) End(chain string, head Hash) error {
	c := r.chain(chain)
	if c.head != head {
		return fmt.Errorf("the log ends at a record that hashes to %s, but the store records that its chain ends at %s: "+
			"records were removed from the end of the log", short(c.head), short(head))
	}
	return nil
}

// short abbreviates a hash for a message.
func short(h Hash) string { return h.String()[:16] }

// Finish ends the replay: the checkpoint it started from must have been
// met.
func (r *Replay) Finish() error {
	if r.from != nil && !r.fromSeen {
		return fmt.Errorf("checkpoint L=%d/%s: its event is not in the log after its chain heads: "+
			"it was removed or changed (verify in full to check from the first event)", r.from.TS, r.from.Proc)
	}
	return nil
}

// touches returns the accounts whose record the event's operation read and
// moved: an operation's account, a transfer's recipient, a retry's or a
// lock's account.
func touches(e Event) []string {
	if !(e.Kind.IsOperation() || e.Kind == KindRetry || e.Kind == KindLock) || e.Account == "" {
		return nil
	}
	if e.Kind == KindTransfer && e.To != "" && e.To != e.Account {
		return []string{e.Account, e.To}
	}
	return []string{e.Account}
}

// Event replays the next event of the log.
func (r *Replay) Event(e Event) error {
	where := fmt.Sprintf("event L=%d/%s %s", e.TS, e.Proc, e.Kind)
	if r.Report.Events > 0 && (e.TS < r.lastTS || (e.TS == r.lastTS && e.Proc <= r.lastProc)) {
		return fmt.Errorf("%s: not above the previous event (L=%d/%s) in (timestamp, process) order", where, r.lastTS, r.lastProc)
	}
	r.Report.Events++
	r.lastTS, r.lastProc = e.TS, e.Proc
	r.Report.LastTS = max(r.Report.LastTS, e.TS)
	if err := r.stamps(where, e); err != nil {
		return err
	}
	if e.Outcome != outcome.OutcomeOK {
		return nil
	}
	if e.Kind == KindCheckpoint {
		return r.checkpoint(where, e)
	}
	return r.money(where, e)
}

// checkpoint checks a checkpoint event against its stored state: the
// state the replay started from, or one read with State.
func (r *Replay) checkpoint(where string, e Event) error {
	facts, err := parseCheckpointDetail(e.Detail)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	r.Report.Checkpoints++
	if r.from != nil && e.TS == r.from.TS && e.Proc == r.from.Proc {
		r.fromSeen = true
		if facts.state != r.fromDigest {
			return fmt.Errorf("%s: its stored state hashes to %s, but the event recorded %s: the state was changed",
				where, short(r.fromDigest), short(facts.state))
		}
		return checkFacts(where, facts, r.from)
	}
	if r.State == nil {
		return nil
	}
	state, err := r.State(e.TS, e.Proc)
	if err != nil {
		return fmt.Errorf("%s: its stored state: %w", where, err)
	}
	if state == nil {
		return fmt.Errorf("%s: its state is not stored", where)
	}
	if sum := Hash(sha256.Sum256(state)); sum != facts.state {
		return fmt.Errorf("%s: its stored state hashes to %s, but the event recorded %s: the state was changed",
			where, short(sum), short(facts.state))
	}
	c, err := DecodeCheckpoint(state)
	if err != nil {
		return fmt.Errorf("%s: its stored state: %w", where, err)
	}
	if c.TS != e.TS || c.Proc != e.Proc {
		return fmt.Errorf("%s: its stored state is the one of L=%d/%s", where, c.TS, c.Proc)
	}
	if err := checkFacts(where, facts, &c); err != nil {
		return err
	}
	if len(c.Heads) == 1 && c.Heads[0].Chain == "" {
		return r.sameState(where, &c)
	}
	return nil
}

// checkFacts checks what a checkpoint's event recorded against its state.
func checkFacts(where string, f checkpointFacts, c *Checkpoint) error {
	total, err := c.Total()
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", where, err)
	case f.accounts != len(c.Balances) || f.total != total || f.deposits != c.Totals.Deposits || f.withdrawals != c.Totals.Withdrawals:
		return fmt.Errorf("%s: it records %d accounts, total %s, deposits %s, withdrawals %s; its state holds %d, %s, %s, %s",
			where, f.accounts, f.total, f.deposits, f.withdrawals, len(c.Balances), total, c.Totals.Deposits, c.Totals.Withdrawals)
	case f.chain != c.Head().Hash:
		return fmt.Errorf("%s: it records the chain at %s, its state at %s", where, short(f.chain), short(c.Head().Hash))
	}
	return nil
}

// sameState checks a checkpoint of a store with one chain against the
// replay at its point: every balance, the totals and the chain's head
// before its event.
func (r *Replay) sameState(where string, c *Checkpoint) error {
	if len(c.Balances) != len(r.bal) {
		return fmt.Errorf("%s: it holds %d accounts, the replay %d at its point", where, len(c.Balances), len(r.bal))
	}
	for _, b := range c.Balances {
		if got, ok := r.bal[b.ID]; !ok || got != b.Balance {
			return fmt.Errorf("%s: it holds account %s with %s, the replay at its point %s", where, b.ID, b.Balance, got)
		}
	}
	if c.Totals.Deposits != r.Report.Deposits || c.Totals.Withdrawals != r.Report.Withdrawals {
		return fmt.Errorf("%s: it holds deposits %s and withdrawals %s, the replay at its point %s and %s",
			where, c.Totals.Deposits, c.Totals.Withdrawals, r.Report.Deposits, r.Report.Withdrawals)
	}
	if ch := r.chain(""); ch.started && c.Heads[0].Hash != ch.before {
		return fmt.Errorf("%s: it holds the chain at %s, but the record before it hashes to %s", where, short(c.Heads[0].Hash), short(ch.before))
	}
	return nil
}

// stamps checks an event's own timestamps and its place in the order of
// each account it is on.
func (r *Replay) stamps(where string, e Event) error {
	if e.ApplyTS != 0 && e.ApplyTS != e.TS {
		return fmt.Errorf("%s: apply timestamp %d differs from its timestamp", where, e.ApplyTS)
	}
	if e.RecvTS != 0 && e.RecvTS >= e.TS {
		return fmt.Errorf("%s: receive timestamp %d is not before apply", where, e.RecvTS)
	}
	if e.ReplyTS != 0 && e.ReplyTS <= e.TS {
		return fmt.Errorf("%s: reply timestamp %d is not after apply", where, e.ReplyTS)
	}
	for _, id := range touches(e) {
		if _, opened := r.bal[id]; !opened {
			continue
		}
		if e.TS <= r.lastOf[id] {
			return fmt.Errorf("%s: account %s had an event at L=%d already (not in Lamport order)", where, id, r.lastOf[id])
		}
		r.lastOf[id] = e.TS
	}
	return nil
}

// money replays a successful event's change to the balances.
func (r *Replay) money(where string, e Event) error {
	bal := r.bal
	check := func(id string, want money.Cents) error {
		got, ok := bal[id]
		if !ok {
			return fmt.Errorf("%s: account %s was never opened", where, id)
		}
		if got < 0 {
			return fmt.Errorf("%s: account %s goes negative (%s)", where, id, got)
		}
		if got != want {
			return fmt.Errorf("%s: account %s replays to %s but the event recorded %s", where, id, got, want)
		}
		return nil
	}
	switch e.Kind {
	case KindOpen:
		if _, ok := bal[e.Account]; ok {
			return fmt.Errorf("%s: account %s opened twice", where, e.Account)
		}
		bal[e.Account] = 0
		r.lastOf[e.Account] = e.TS
	case KindDeposit:
		if _, ok := bal[e.Account]; ok {
			bal[e.Account] += e.Amount
			r.Report.Deposits += e.Amount
		}
		return check(e.Account, e.Balance)
	case KindWithdraw:
		if _, ok := bal[e.Account]; ok {
			bal[e.Account] -= e.Amount
			r.Report.Withdrawals += e.Amount
		}
		return check(e.Account, e.Balance)
	case KindTransfer:
		_, okFrom := bal[e.Account]
		_, okTo := bal[e.To]
		if okFrom && okTo {
			bal[e.Account] -= e.Amount
			bal[e.To] += e.Amount
		}
		if err := check(e.Account, e.Balance); err != nil {
			return err
		}
		return check(e.To, e.ToBalance)
	}
	return nil
}

// Compare checks the stored accounts and totals against the replay: every
// stored balance equal to the replayed one, no account on one side only,
// none negative, the stored deposit and withdrawal totals equal to the
// replay's, and money conserved. It sets Report.Total and Report.Accounts;
// the first mismatch, in account order, is the error.
func (r *Replay) Compare(accts []Account, tot Totals) error {
	stored := make(map[string]money.Cents, len(accts))
	for _, a := range accts {
		stored[a.ID] = a.Balance
	}
	ids := make([]string, 0, len(stored)+len(r.bal))
	for id := range stored {
		ids = append(ids, id)
	}
	for id := range r.bal {
		if _, ok := stored[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	rep := &r.Report
	rep.Total = 0
	for _, id := range ids {
		s, okS := stored[id]
		b, okR := r.bal[id]
		switch {
		case !okR:
			return fmt.Errorf("account %s: stored with %s but never opened in the log", id, s)
		case !okS:
			return fmt.Errorf("account %s: opened in the log but missing from the accounts", id)
		case s != b:
			return fmt.Errorf("account %s: stored balance %s but the log replays to %s", id, s, b)
		}
		if s < 0 {
			return fmt.Errorf("account %s: negative balance %s", id, s)
		}
		rep.Total += s
	}
	rep.Accounts = len(stored)
	if tot.Deposits != rep.Deposits {
		return fmt.Errorf("deposits total: stored %s but the log sums to %s", tot.Deposits, rep.Deposits)
	}
	if tot.Withdrawals != rep.Withdrawals {
		return fmt.Errorf("withdrawals total: stored %s but the log sums to %s", tot.Withdrawals, rep.Withdrawals)
	}
	if rep.Total != rep.Deposits-rep.Withdrawals {
		return fmt.Errorf("conservation: balances sum to %s but deposits − withdrawals = %s", rep.Total, rep.Deposits-rep.Withdrawals)
	}
	return nil
}
