package server

import (
	"atm/bank"
	"atm/netproto/wire"
)

// The ledger's events and the protocol's log entries carry the same
// fields under the same names; these two conversions, side by side, are
// the only place that copies them, and entry_test.go fails when a field of
// either type is not carried both ways. (They live here, not in wire: the
// protocol package does not depend on the bank.)

// EntryOf is an event of the ledger as the protocol carries it.
func EntryOf(e bank.Event) wire.Entry {
	return wire.Entry{
		TS: e.TS, Proc: e.Proc, Kind: string(e.Kind), Outcome: e.Outcome,
		Account: e.Account, To: e.To, Amount: e.Amount, Balance: e.Balance, ToBalance: e.ToBalance,
		ReqID: e.ReqID, Client: e.Client, ClientTS: e.ClientTS, RecvTS: e.RecvTS, ApplyTS: e.ApplyTS,
		ReplyTS: e.ReplyTS, OrigTS: e.OrigTS, Origin: e.Origin,
		Detail: e.Detail, Wall: e.Wall,
		Seen: convertSeen(e.Seen, func(s bank.Seen) wire.Seen { return wire.Seen(s) }),
	}
}

// EventOf is an entry of a server's log as the ledger's event, so that a
// log read from a server prints the same way as one read from the file.
func EventOf(e wire.Entry) bank.Event {
	return bank.Event{
		TS: e.TS, Proc: e.Proc, Kind: bank.Kind(e.Kind), Outcome: e.Outcome,
		Account: e.Account, To: e.To, Amount: e.Amount, Balance: e.Balance, ToBalance: e.ToBalance,
		ReqID: e.ReqID, Client: e.Client, ClientTS: e.ClientTS, RecvTS: e.RecvTS, ApplyTS: e.ApplyTS,
		ReplyTS: e.ReplyTS, OrigTS: e.OrigTS, Origin: e.Origin,
		Detail: e.Detail, Wall: e.Wall,
		Seen: convertSeen(e.Seen, func(s wire.Seen) bank.Seen { return bank.Seen(s) }),
	}
}

// convertSeen converts receive reports between the ledger's and the
// protocol's types (the same fields: the conversions in EntryOf and EventOf
// stop compiling if they part); none stays nil.
func convertSeen[From, To any](in []From, conv func(From) To) []To {
	if len(in) == 0 {
		return nil
	}
	out := make([]To, len(in))
	for i, s := range in {
		out[i] = conv(s)
	}
	return out
}

// entriesOf converts a page of events; never nil, so that the reply always
// carries the list.
func entriesOf(es []bank.Event) []wire.Entry {
	out := make([]wire.Entry, 0, len(es))
	for _, e := range es {
		out = append(out, EntryOf(e))
	}
	return out
}
