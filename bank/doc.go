// Package bank is the core of the atm system's ledger: accounts, money
// operations, the event log's records and the server's Lamport clock, with
// every rule of the bank written once. It keeps nothing itself: a Store
// does (boltstore: one bbolt file; etcdstore: an etcd cluster, for several
// servers of one bank), and runs each operation through Rules.Apply on a
// View of its state, then commits what the rules wrote. Ledger is the bank
// on a store.
//
// Guarantees, on every store:
//
//   - Money is int64 cents; every arithmetic step is overflow-checked and
//     no balance ever goes negative. An operation validates before it
//     changes anything, so one that is refused leaves only its event
//     behind.
//   - Every operation, successful or refused, is logged, and its money
//     change and its event are committed together: the store makes them
//     durable before the operation returns. Each event is stamped with a
//     tick of the clock when it is applied, and its reply's tick is
//     reserved then too (Receipt.ReplyTS).
//   - A mutating operation carries a request id. The store remembers the
//     first outcome of each money request by (account, id), for a window
//     each store states: a repeated id gets the first outcome back and
//     nothing is applied again (a first outcome that was an internal
//     failure comes back as an error matching outcome.ErrInternal). An id
//     sent again with another request (kind, amount or recipient) is
//     refused with outcome.ErrRequestIDReused and logged as a retry;
//     nothing is applied.
//   - Wrong PINs cannot lock a holder out. They are counted per (account,
//     source), the source being who tries (Meta.Source: the ATM's process
//     id and address): after Options.LockAfter (3) in a row, that source
//     is locked out of that account for Options.LockFor (15 minutes), and
//     every other source can still log in. A source's success clears its
//     count. Account-wide, after Options.ThrottleAfter (10) wrong PINs in
//     a row from any sources with no success between them, the account
//     takes one attempt per Options.ThrottleEvery (1 minute) from anyone;
//     an earlier one is refused with the time the next is allowed, and a
//     right PIN when allowed logs in and ends the throttle. This state is
//     kept in the account (at most MaxSources sources, the oldest
//     forgotten first), so it survives restarts. At most GOMAXPROCS PIN
//     hashes are compared at once, so a flood of logins cannot take every
//     CPU.
//   - The clock never goes back and never wraps: it holds at most
//     lamport.MaxTS (2^53 − 1). After a clean Close it resumes exactly
//     where it stopped, and after a crash above every timestamp that left
//     the process: those of events are stored with them, and any other is
//     taken with SendTick, which returns once the stored clock covers it
//     (a lease kept ahead, see Lease).
//   - A record the store cannot decode is an error naming the damage,
//     never a panic; met by an operation, it is that operation's outcome
//     (see ErrDamaged).
//   - Every method takes a context. If it ends before the operation
//     reaches the store, nothing is applied; if it ends while the store
//     has it, the call returns an error matching ErrOutcomeUnknown (the
//     operation may still be applied; its request id makes a retry safe).
//   - The log is tamper-evident: every record carries a SHA-256 hash
//     chained to the record before it on its chain (one chain on a store
//     with one writer, one per server on a store several share), over the
//     record's bytes as stored. Verify finds any changed byte of a record,
//     and a record removed, added or moved, and names it: its (first)
//     event's timestamp and process id (see chain.go).
//   - A checkpoint (Ledger.Checkpoint, or one every
//     Options.CheckpointEvery events) is an event of the log that records
//     the bank's state at its point: the totals, every balance, the clock
//     and each chain's head, stored in full beside the log in the same
//     transaction as its event, which records their digest. Verify checks
//     the log from the newest checkpoint, so its cost is that of the log
//     since then, and reads no event before it; VerifyFull checks the
//     whole log, and every checkpoint in it against its stored state.
package bank
