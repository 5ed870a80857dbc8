package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"atm/netproto/wire"

	"atm/bank"
)

// conn is one client connection.
//
// Everything the server writes to a connection goes out under omu, in
// timestamp order, so timestamps rise strictly along the connection:
//
//   - A reply's timestamp is reserved by the ledger when the request is
//     applied, and a push's or bye's when its event is recorded. Before a
//     request goes to the ledger, or a push is recorded, the connection
//     reserves a slot (pending); when the timestamp is known the message
//     settles into the slot. Settled messages are written only when no slot
//     is pending, sorted by timestamp: a message whose timestamp is still
//     unknown might come before them. Requests and pushes thus reach the
//     ledger concurrently, sharing its commits, and still go out in order.
//   - The server's own messages (errors it answers by itself) wait until no
//     slot is pending, then take a tick with Bank.SendTick as they are
//     written: above every timestamp written or reserved before.
//
// A push carries the balance after its transfer only if no newer balance
// was already sent on the connection (sentApply is the apply timestamp of
// the newest one sent); otherwise it goes out without one.
type conn struct {
	s      *Server
	nc     net.Conn
	br     *bufio.Reader
	remote string

	// owned by the serving goroutine
	account, holder string
	fails           int
	nextLogin       time.Time
	scratch         []byte
	byeSent         bool      // the disconnect is recorded (or the connection never reached the bank)
	recv            uint64    // receive timestamp of the request in hand
	fol             *follower // the log subscription, nil when none

	peer atomic.Pointer[string] // last valid process id the client announced

	omu       sync.Mutex // orders every write; guards the fields below
	settled   sync.Cond  // on omu: broadcast when settled messages are written
	bw        *bufio.Writer
	broken    bool
	fault     string    // why a goroutine of the connection closed it after a panic
	pending   int       // slots reserved and not yet settled
	ready     []*outMsg // settled messages waiting for the pending slots
	sentApply uint64    // apply timestamp of the newest balance sent

	// smu is held while a logout unbinds the session and records it, and
	// while a batch of pushes is checked against the session and
	// recorded: a push is either recorded before the logout (and so sent
	// before its reply) or not at all.
	smu sync.Mutex

	pmu     sync.Mutex // guards the push queue
	pq      []pushItem
	pushing bool // a drainer goroutine is running
	dropped int  // pushes dropped because the queue was full
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 4096),
		remote: nc.RemoteAddr().String()}
	c.peer.Store(&c.remote)
	c.settled.L = &c.omu
	return c
}

func (c *conn) peerID() string { return *c.peer.Load() }

func (c *conn) serve() {
	s := c.s
	reason := "closed by the client"
	defer func() {
		if r := recover(); r != nil {
			c.crashed("serving the connection", r)
		}
		c.finish(reason)
	}()

	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := c.handshake(tc); err != nil {
			// The connection never reached the bank: no disconnect event.
			c.byeSent, reason = true, err.Error()
			s.warnf(fmt.Sprintf("connection from %s closed: %v", c.remote, err), slog.String("remote", c.remote))
			return
		}
	}
	if err := c.hello(); err != nil {
		c.sendBye(wire.CodeShuttingDown, "the bank is shutting down; try again later")
		reason = "bank unavailable"
		return
	}
	c.flush()

	idle := s.idleTimeout()
	_, secure := c.nc.(*tls.Conn)
	for first := true; ; first = false {
		c.armIdle(idle)
		if s.shutting.Load() {
			c.sendBye(wire.CodeShuttingDown, "the bank is shutting down; your ATM can reconnect when it is back")
			reason = "server shutting down"
			return
		}
		if first && !secure && c.tlsOnPlain() {
			reason = "a TLS client on this plain port (it must connect without tls://, or the server needs --tls)"
			return
		}
		line, err := wire.ReadLine(c.br, s.maxLine(), &c.scratch)
		if err != nil {
			switch {
			case errors.Is(err, wire.ErrLineTooLong):
				c.receiveUnread()
				c.protoError(nil, wire.CodeLineTooLong, fmt.Sprintf("a line may hold at most %d bytes; closing the connection", s.maxLine()))
				c.flush()
				reason = "line too long"
			case errors.Is(err, os.ErrDeadlineExceeded) && s.shutting.Load():
				c.sendBye(wire.CodeShuttingDown, "the bank is shutting down; your ATM can reconnect when it is back")
				reason = "server shutting down"
			case errors.Is(err, os.ErrDeadlineExceeded):
				c.protoError(nil, wire.CodeIdleTimeout, fmt.Sprintf("no request for %s; closing the connection", idle))
				c.flush()
				reason = "idle timeout"
			default:
				if !errors.Is(err, net.ErrClosed) && err.Error() != "EOF" {
					reason = err.Error()
				}
			}
			return
		}
		if len(trimJSONSpace(line)) > 0 {
			c.handle(line)
		}
		if !c.lineBuffered() {
			if !c.flush() {
				reason = "write failed"
				return
			}
		}
	}
}

// hello records the connection and greets the client, under omu so that
// nothing is written before the greeting.
func (c *conn) hello() error {
	s := c.s
	c.omu.Lock()
	defer c.omu.Unlock()
	ev, err := s.Ledger.Record(s.ctx, bank.Event{Kind: bank.KindConnect, Client: c.remote, Detail: "connection from " + c.remote})
	if err != nil {
		return err
	}
	c.write(&wire.Message{Type: wire.TypeHello, Proc: s.Ledger.ProcessID(), TS: ev.TS, Version: wire.Version,
		MaxLine: s.maxLine(), MaxAmount: int64(s.Ledger.MaxAmount()), Message: s.greeting()})
	return nil
}

// lineBuffered reports whether a complete request is already buffered, in
// which case replies are not flushed yet.
func (c *conn) lineBuffered() bool {
	n := c.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := c.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// finish unbinds the session, records the disconnect and closes the socket.
// A panic on the way is logged; the connection still leaves the server.
func (c *conn) finish(reason string) {
	s := c.s
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	defer s.recoverPanic("closing the connection of " + c.remote)
	if c.fol != nil {
		c.fol.cancel() // nothing more of it is written; waited for below
	}
	c.omu.Lock()
	if c.fault != "" {
		reason = c.fault
	}
	c.omu.Unlock()
	if c.account != "" {
		s.unregister(c.account, c)
	}
	c.flush()
	c.nc.Close()
	c.endFollow()
	if !c.byeSent {
		_, _ = s.Ledger.Record(s.ctx, bank.Event{Kind: bank.KindDisconnect, Account: c.account,
			Client: c.peerID(), Detail: reason})
	}
}

// sendBye records the disconnect and tells the client why the server is
// closing the connection.
func (c *conn) sendBye(code, msg string) {
	s := c.s
	c.endFollow() // nothing of it comes after the bye
	sl := c.reserve()
	ev, err := s.Ledger.Record(s.ctx, bank.Event{Kind: bank.KindDisconnect, Account: c.account,
		Client: c.peerID(), Detail: msg})
	bye := &wire.Message{Type: wire.TypeBye, Proc: s.Ledger.ProcessID(), Code: code, Message: msg}
	if err == nil {
		c.byeSent = true
		bye.TS = ev.TS
		c.settle(sl, &outMsg{m: bye}, true)
	} else {
		c.settle(sl, nil, false)
		c.sendOwn(bye) // the bank could not record it: a durable tick of its own
	}
	c.flush()
}

// receiveUnread is the receive event of a line the server could not read
// (too long): the clock ticks, observing nothing.
func (c *conn) receiveUnread() {
	s := c.s
	step := s.Ledger.Clock().Receive(0)
	c.recv = step.New
	s.logf(step.New, "recv", fmt.Sprintf("recv an unreadable line from %s, %d+1", c.peerID(), step.Old),
		slog.String("peer", c.peerID()))
}

// protoError answers a request the bank never saw with an error of the
// server's own. req is nil for a line that could not be parsed.
func (c *conn) protoError(req *wire.Message, code, msg string) {
	c.sendOwn(c.ownError(req, code, msg))
}

// ownError builds the error message of protoError.
func (c *conn) ownError(req *wire.Message, code, msg string) *wire.Message {
	m := &wire.Message{Type: wire.TypeError, Proc: c.s.Ledger.ProcessID(), Code: code, Message: msg}
	if req != nil {
		m.ID, m.Op = req.ID, req.Type
	}
	return m
}
