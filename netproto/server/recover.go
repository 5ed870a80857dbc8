package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// A panic in a goroutine of the server kills the whole process, with every
// session on it. The goroutines that serve one connection (its requests,
// its pushes) therefore recover their panics: the panic and its stack are
// logged, and that connection alone is closed, at once and without a word.
// The request in hand may or may not have been applied, so no answer to it
// would be true: the client holds it as unknown and resends it with the
// same id, which the bank applies once.

// crashed ends c after a panic r in one of its goroutines (where says
// what it was doing): it logs the panic with its stack and closes the
// connection without writing anything more; the disconnect is recorded
// with that reason. It must be called from the deferred function that
// recovered r, so that the stack is the panic's; omu must not be held.
func (c *conn) crashed(where string, r any) {
	c.s.logPanic(fmt.Sprintf("panic %s for %s, closing the connection: %v", where, c.peerID(), r), r,
		slog.String("peer", c.peerID()), slog.String("remote", c.remote))
	reason := fmt.Sprintf("closed after a panic %s (logged with its stack)", where)
	c.omu.Lock()
	c.broken = true
	if c.fault == "" {
		c.fault = reason
	}
	c.settled.Broadcast() // wake whoever waits for a write that will not come
	c.omu.Unlock()
	c.nc.Close()
}

// logPanic logs a recovered panic r with the stack of the goroutine that
// panicked (the caller runs in the deferred function that recovered it).
// With no Logger, the report goes to slog.Default: a panic is a fault of
// the server and is never silent.
func (s *Server) logPanic(msg string, r any, attrs ...slog.Attr) {
	s.logFault(msg, r, debug.Stack(), attrs...)
}

// logFault logs a panic r recovered with the given stack.
func (s *Server) logFault(msg string, r any, stack []byte, attrs ...slog.Attr) {
	l := s.Logger
	if l == nil {
		l = slog.Default()
	}
	attrs = append(attrs, slog.String("panic", fmt.Sprint(r)), slog.String("stack", string(stack)))
	l.LogAttrs(context.Background(), slog.LevelError, msg, attrs...)
}

// recoverPanic, deferred, recovers a panic of a goroutine that serves no
// connection of its own (where says what it was doing) and logs it.
func (s *Server) recoverPanic(where string) {
	if r := recover(); r != nil {
		s.logPanic(fmt.Sprintf("panic %s: %v", where, r), r)
	}
}
