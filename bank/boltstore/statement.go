package boltstore

import (
	"fmt"

	"atm/bank"
	"atm/bank/outcome"
)

// statement lists account id's entries (its open event and its successful
// money events) with TS < before (all when before is 0), newest first, at
// most limit. head is the account's newest entry, event reads the log and
// mark returns the oldest mark of the account at or above a timestamp (0
// when none; see marks.go). The page starts at the newest entry below
// before (see start) and follows the account's chain down from there. It
// ends at the live log's start, archived (the events at or below it were
// archived), saying so.
func statement(event func(ts uint64) []byte, mark func(before uint64) (uint64, error), id string, head, before uint64, limit int, archived uint64) (bank.StatementPage, error) {
	var page bank.StatementPage
	ts, err := start(event, mark, id, head, before, archived)
	if err != nil {
		return page, fmt.Errorf("statement of %s: %w", id, err)
	}
	for ts != 0 {
		if ts <= archived {
			page.Archived = true
			break
		}
		raw := event(ts)
		if raw == nil {
			return page, fmt.Errorf("statement of %s: event %d missing", id, ts)
		}
		e, prevA, prevB, err := decodeEvent(ts, raw)
		if err != nil {
			return page, fmt.Errorf("statement of %s: %w", id, err)
		}
		if !page.Add(e, id, limit) {
			break
		}
		next := prevB
		if e.Account == id {
			next = prevA
		}
		if ts, err = down(ts, next); err != nil {
			return page, fmt.Errorf("statement of %s: %w", id, err)
		}
	}
	return page, nil
}

// start returns account id's newest entry below before (0 when none): its
// newest entry when before is 0 or above it; the entry just below before
// when before is the cursor of a page (an entry's TS + 1); otherwise the
// entry reached down the chain from the oldest mark at or above before, or
// from the newest entry when there is no such mark, in at most markEvery
// links.
func start(event func(ts uint64) []byte, mark func(before uint64) (uint64, error), id string, head, before, archived uint64) (uint64, error) {
	if before == 0 || before > head {
		return head, nil
	}
	if raw := event(before - 1); raw != nil {
		if e, _, _, err := decodeEvent(before-1, raw); err == nil && isEntryOf(e, id) {
			return before - 1, nil
		}
	}
	ts, err := mark(before)
	if err != nil {
		return 0, err
	}
	if ts == 0 {
		ts = head
	}
	for ts >= before {
		if ts <= archived {
			return ts, nil // archived: the page says so
		}
		raw := event(ts)
		if raw == nil {
			return 0, fmt.Errorf("event %d missing", ts)
		}
		account, prevA, prevB, ok := eventLinks(raw)
		if !ok {
			return 0, fmt.Errorf("event %d: unknown encoding", ts)
		}
		next := prevB
		if string(account) == id {
			next = prevA
		}
		if ts, err = down(ts, next); err != nil {
			return 0, err
		}
	}
	return ts, nil
}

// down checks the link from the entry at ts to the previous one, next:
// below it, or 0.
func down(ts, next uint64) (uint64, error) {
	if next >= ts {
		return 0, fmt.Errorf("event %d: link to the previous entry, %d, is not below it (damaged file)", ts, next)
	}
	return next, nil
}

// isEntryOf reports whether e is an entry of account id's statement: its
// open event or one of its successful money operations, a transfer being an
// entry of both its accounts.
func isEntryOf(e bank.Event, id string) bool {
	if e.Outcome != outcome.OutcomeOK || !(e.Kind == bank.KindOpen || e.Kind.IsMoney()) {
		return false
	}
	return e.Account == id || (e.Kind == bank.KindTransfer && e.To == id)
}
