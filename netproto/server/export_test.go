package server

import (
	"atm/netproto/wire"

	"atm/bank"
)

// SetFaults makes s call onReply with each request the bank has run,
// before its reply is built, and onPush with each batch of pushes of a
// connection, before it is recorded (nil: none), so that a test can make a
// fault in one connection by panicking in them. Call it before Serve.
func SetFaults(s *Server, onReply func(req *wire.Message), onPush func(events []bank.Event)) {
	s.onReply, s.onPush = onReply, onPush
}
