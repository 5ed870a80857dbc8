package ui

// LocalServer is a bank server this ATM's process started itself, because
// nobody answered at the bank's address. The ATM wires one in through
// Config.StartServer (atm does, in cmd/atm); the ui only needs to know
// where it listens and how to stop it.
type LocalServer interface {
	Addr() string   // where it listens
	DBPath() string // its database, to tell the customer
	Close() error   // stops it: connected ATMs are told goodbye
}
