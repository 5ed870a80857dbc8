// Package client is the atm protocol's client library, shared by the ATM,
// the tools, the tests and the benchmark: one connection to a bank server,
// with its own Lamport clock, pipelined requests answered in order,
// pushes, reconnection with jittered backoff, and requests whose outcome is
// unknown kept until the bank says what happened. Addresses written
// tls://HOST:PORT are reached over TLS, the server's certificate trusted on
// first use, by a CA or by a pinned fingerprint (tls.go). It speaks package
// wire and knows nothing of the server or the ledger.
package client
