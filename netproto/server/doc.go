// Package server serves a bank over the atm protocol (package wire): one
// goroutine per connection, every field from the wire checked before it is
// used or printed, every answer a receive then a send on the bank's Lamport
// clock, messages on a connection in timestamp order, pushes to the
// sessions of an account. It reaches the bank through the Ledger interface.
package server
