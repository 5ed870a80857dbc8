package server

import (
	"context"

	"atm/bank"
	"atm/bank/lamport"
	"atm/bank/money"
)

// Ledger is what the server needs of the bank: the operations a request
// runs, the events it records (connections, pushes, logouts, audits), the
// log it hands to an operator and the clock it shares with them. *bank.Ledger
// implements it, on any of its stores; another ledger can be served by
// implementing it too.
//
// What the server relies on (bank's package doc states it for *bank.Ledger):
// every operation and record is on disk before it returns, with its
// timestamps reserved by ticks of Clock in apply order (a reply's in
// Receipt.ReplyTS); RecordAll records in the order given; SendTick returns
// a tick that a crash can never bring the clock below; an operation whose
// context ends may still be applied (its request id makes a retry safe).
// The event subscription is the ledger's own: pass Server.LogEvent to it
// (bank.Options.OnEvent) to print committed events.
type Ledger interface {
	ProcessID() string
	MaxAmount() money.Cents
	Clock() *lamport.Clock
	SendTick(ctx context.Context) (uint64, error)

	Authenticate(ctx context.Context, m bank.Meta, id, pin string) (bank.Receipt, error)
	Balance(ctx context.Context, m bank.Meta, id string) (bank.Receipt, error)
	Deposit(ctx context.Context, m bank.Meta, id string, amount money.Cents) (bank.Receipt, error)
	Withdraw(ctx context.Context, m bank.Meta, id string, amount money.Cents) (bank.Receipt, error)
	Transfer(ctx context.Context, m bank.Meta, from, to string, amount money.Cents) (bank.Receipt, error)
	Lookup(ctx context.Context, m bank.Meta, id string) (bank.Receipt, error)
	Statement(ctx context.Context, m bank.Meta, id string, before uint64, limit int) (bank.StatementPage, bank.Receipt, error)
	OpenAccount(ctx context.Context, m bank.Meta, id, name, pin string) (bank.Receipt, error)

	Record(ctx context.Context, e bank.Event) (bank.Event, error)
	RecordAll(ctx context.Context, es []bank.Event) ([]bank.Event, error)
	Audit(ctx context.Context) (bank.Audit, error)
	EventsAfter(ctx context.Context, after bank.Cursor, limit int) ([]bank.Event, bank.Cursor, error)
	// Appended returns a channel closed once events are committed after
	// the call (by any server of the bank), or when the ledger closes: a
	// log subscription waits on it, then reads on with EventsAfter.
	Appended() <-chan struct{}
}

var _ Ledger = (*bank.Ledger)(nil)
