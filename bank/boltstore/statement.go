package boltstore

import (
	"fmt"

	"atm/bank"
	"atm/bank/outcome"
)

// statement lists an account's entries (its open event and its successful
// money events) with TS < before (all when before is 0), newest first, at
// most limit. It follows the account's chain through the log from head, its
// newest entry; a cursor from a previous page points just above the entry it
// starts at, which is then read directly.
func statement(event func(ts uint64) []byte, id string, head, before uint64, limit int) (bank.StatementPage, error) {
	var page bank.StatementPage
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
		if (before == 0 || ts < before) && !page.Add(e, id, limit) {
			break
		}
		if e.Account == id {
			ts = prevA
		} else {
			ts = prevB
		}
	}
	return page, nil
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
