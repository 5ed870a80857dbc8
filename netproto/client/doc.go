// Package client is the atm protocol's client library, shared by the ATM,
// the tools, the tests and the benchmark: one connection to a bank server,
// with its own Lamport clock, pipelined requests answered in order,
// pushes, reconnection with jittered backoff, and requests whose outcome is
// unknown kept until the bank says what happened. It speaks package wire
// and knows nothing of the server or the ledger.
package client
