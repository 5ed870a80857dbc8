package server

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/money"
)

// register binds c to account for pushes.
func (s *Server) register(account string, c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.sessions[account]
	if m == nil {
		m = make(map[*conn]struct{})
		s.sessions[account] = m
	}
	m[c] = struct{}{}
}

func (s *Server) unregister(account string, c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.sessions[account]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(s.sessions, account)
		}
	}
}

func (s *Server) isSession(account string, c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sessions[account][c]
	return ok
}

// notify queues a push for every session logged in to p.account, except
// the connection that made the change (nil: none).
func (s *Server) notify(p pushItem, except *conn) {
	s.mu.Lock()
	targets := make([]*conn, 0, len(s.sessions[p.account]))
	for c := range s.sessions[p.account] {
		if c != except {
			targets = append(targets, c)
		}
	}
	s.mu.Unlock()
	for _, c := range targets {
		c.enqueuePush(p)
	}
}

// pushItem is a change of an account's balance to tell a session about.
// from/fromHolder are the payer of a wire.PushTransferIn, to/toHolder the
// recipient of a wire.PushTransferOut.
type pushItem struct {
	kind                      string
	account, from, fromHolder string
	to, toHolder              string
	amount, balance           money.Cents
	applyTS                   uint64
}

// counterparty is the other account of a transfer push, as recorded in the
// push event's To.
func (p *pushItem) counterparty() string {
	if p.kind == wire.PushTransferOut {
		return p.to
	}
	return p.from
}

// pushDetail is the Detail of a push event: what was applied, and when.
func pushDetail(kind string, applyTS uint64) string {
	return fmt.Sprintf("%s applied at %d", pushWhat(kind), applyTS)
}

// pushWhat names the change a push kind reports.
func pushWhat(kind string) string {
	switch kind {
	case wire.PushDeposit:
		return "deposit"
	case wire.PushWithdraw:
		return "withdrawal"
	case wire.PushTransferOut:
		return "transfer out"
	}
	return "transfer"
}

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
	byeSent         bool
	recv            uint64 // receive timestamp of the request in hand

	peer atomic.Pointer[string] // last valid process id the client announced

	omu       sync.Mutex // orders every write; guards the fields below
	settled   sync.Cond  // on omu: broadcast when settled messages are written
	bw        *bufio.Writer
	broken    bool
	pending   int       // slots reserved and not yet settled
	ready     []*outMsg // settled messages waiting for the pending slots
	sentApply uint64    // apply timestamp of the newest balance sent

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

// outMsg is a message settled into a slot. push is set for a push, whose
// balance is decided when it is written.
type outMsg struct {
	m       *wire.Message
	push    *pushItem
	written bool
}

// slot is a place in the connection's output, reserved before the
// timestamp of the message that fills it is known.
type slot struct{ done bool }

// reserve reserves a slot: nothing settled after it is written until it is
// settled.
func (c *conn) reserve() *slot {
	c.omu.Lock()
	c.pending++
	c.omu.Unlock()
	return &slot{}
}

// settle fills s with o (nil: the slot is given up, nothing to send) and
// writes the settled messages if no slot is pending any more. With wait it
// returns only once o is written (or the connection broke). Settling a slot
// twice does nothing.
func (c *conn) settle(s *slot, o *outMsg, wait bool) {
	c.omu.Lock()
	defer c.omu.Unlock()
	if s.done {
		return
	}
	s.done = true
	c.pending--
	if o != nil {
		c.ready = append(c.ready, o)
	}
	c.release()
	for wait && o != nil && !o.written && !c.broken {
		c.settled.Wait()
	}
}

// release writes the settled messages in timestamp order once no slot is
// pending. omu must be held.
func (c *conn) release() {
	if c.pending > 0 {
		return
	}
	slices.SortFunc(c.ready, func(a, b *outMsg) int { return cmp.Compare(a.m.TS, b.m.TS) })
	for _, o := range c.ready {
		if p := o.push; p != nil && p.applyTS > c.sentApply {
			o.m.Balance = wire.CentsPtr(p.balance)
			c.sentApply = p.applyTS
		}
		c.write(o.m)
		o.written = true
	}
	clear(c.ready)
	c.ready = c.ready[:0]
	c.settled.Broadcast()
}

func (c *conn) peerID() string { return *c.peer.Load() }

func (c *conn) serve() {
	s := c.s
	reason := "closed by the client"
	defer func() { c.finish(reason) }()

	c.omu.Lock()
	ev, err := s.Ledger.Record(s.ctx, bank.Event{Kind: bank.KindConnect, Client: c.remote, Detail: "connection from " + c.remote})
	if err == nil {
		c.write(&wire.Message{Type: wire.TypeHello, Proc: s.Ledger.ProcessID(), TS: ev.TS, Version: wire.Version,
			MaxLine: s.maxLine(), MaxAmount: int64(s.Ledger.MaxAmount()), Message: "connection established"})
	}
	c.omu.Unlock()
	if err != nil {
		c.sendBye(wire.CodeShuttingDown, "the bank is shutting down; try again later")
		reason = "bank unavailable"
		return
	}
	c.flush()

	idle := s.idleTimeout()
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(idle))
		if s.shutting.Load() {
			c.sendBye(wire.CodeShuttingDown, "the bank is shutting down; your ATM can reconnect when it is back")
			reason = "server shutting down"
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
func (c *conn) finish(reason string) {
	s := c.s
	if c.account != "" {
		s.unregister(c.account, c)
	}
	c.flush()
	c.nc.Close()
	if !c.byeSent {
		_, _ = s.Ledger.Record(s.ctx, bank.Event{Kind: bank.KindDisconnect, Account: c.account,
			Client: c.peerID(), Detail: reason})
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// sendBye records the disconnect and tells the client why the server is
// closing the connection.
func (c *conn) sendBye(code, msg string) {
	s := c.s
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

// write queues m on the connection's buffer. It must be called with omu
// held.
func (c *conn) write(m *wire.Message) {
	if c.broken {
		return
	}
	b, err := json.Marshal(m)
	if err != nil { // cannot happen with these types; keep the stream valid
		b = []byte(`{"type":"error","code":"internal","message":"reply could not be encoded"}`)
	}
	if m.Balance != nil && m.ApplyTS > c.sentApply && m.Type != wire.TypePush {
		c.sentApply = m.ApplyTS
	}
	if m.Type == wire.TypePush && m.Balance == nil && c.s.Logger != nil {
		c.s.warnf(fmt.Sprintf("push L=%d to %s sent without its balance: a newer one was already sent", m.TS, c.peerID()),
			slog.String("peer", c.peerID()))
	}
	if c.bw.Available() < len(b)+1 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.writeTimeout()))
	}
	c.bw.Write(b)
	if err := c.bw.WriteByte('\n'); err != nil {
		c.broken = true
		c.nc.Close()
	}
}

// flush writes the buffered messages; false when the connection is broken.
func (c *conn) flush() bool {
	c.omu.Lock()
	defer c.omu.Unlock()
	return c.flushLocked()
}

func (c *conn) flushLocked() bool {
	if c.broken {
		return false
	}
	if c.bw.Buffered() == 0 {
		return true
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.writeTimeout()))
	if err := c.bw.Flush(); err != nil {
		c.broken = true
		c.nc.Close()
		return false
	}
	return true
}

// enqueuePush queues p for delivery on c, in order. At most
// Server.MaxPushQueue wait; beyond that the oldest is dropped.
func (c *conn) enqueuePush(p pushItem) {
	c.pmu.Lock()
	if len(c.pq) >= c.s.maxPushQueue() {
		c.pq[0] = pushItem{}
		c.pq = c.pq[1:]
		c.dropped++
	}
	c.pq = append(c.pq, p)
	start := !c.pushing
	c.pushing = true
	c.pmu.Unlock()
	if start {
		c.s.wg.Add(1) // the caller is a live connection, so the group is not at zero
		go c.drainPushes()
	}
}

// drainPushes records and sends the queued pushes, a batch at a time: the
// pushes of a batch are recorded concurrently (sharing the ledger's
// commits) and go out through the connection's slots, in timestamp order.
func (c *conn) drainPushes() {
	defer c.s.wg.Done()
	for {
		c.pmu.Lock()
		batch, dropped := c.pq, c.dropped
		c.pq, c.dropped = nil, 0
		if len(batch) == 0 {
			c.pushing = false
			c.pmu.Unlock()
			return
		}
		c.pmu.Unlock()
		if dropped > 0 {
			c.s.warnf(fmt.Sprintf("dropped the %d oldest pushes for %s: it did not keep up", dropped, c.peerID()),
				slog.String("peer", c.peerID()), slog.Int("dropped", dropped))
		}
		// Recorded together, in order: their timestamps follow the order
		// of the transfers, and they share the ledger's commits.
		var slots []*slot
		var items []*pushItem
		var events []bank.Event
		for i := range batch {
			p := &batch[i]
			if !c.s.isSession(p.account, c) {
				continue
			}
			slots = append(slots, c.reserve())
			items = append(items, p)
			events = append(events, bank.Event{Kind: bank.KindPush, Account: p.account, To: p.counterparty(),
				Amount: p.amount, Balance: p.balance, Client: c.peerID(),
				Detail: pushDetail(p.kind, p.applyTS)})
		}
		if len(events) > 0 {
			recorded, _ := c.s.Ledger.RecordAll(c.s.ctx, events)
			for i, ev := range recorded {
				if ev.TS == 0 {
					c.settle(slots[i], nil, false)
					continue
				}
				p := items[i]
				c.settle(slots[i], &outMsg{push: p, m: &wire.Message{Type: wire.TypePush, Proc: c.s.Ledger.ProcessID(), TS: ev.TS,
					Kind: p.kind, Account: p.account, From: p.from, FromHolder: p.fromHolder, To: p.to, ToHolder: p.toHolder,
					Amount: wire.AmountOf(p.amount), ApplyTS: p.applyTS}}, false)
			}
		}
		c.flush()
	}
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

// sendOwn stamps m with a durable send tick as it is written, and logs it.
// If no tick can be made durable (the bank is closing), nothing is sent and
// the connection is closed.
func (c *conn) sendOwn(m *wire.Message) {
	s := c.s
	c.omu.Lock()
	defer c.omu.Unlock()
	for c.pending > 0 && !c.broken {
		c.settled.Wait()
	}
	ts, err := s.Ledger.SendTick(s.ctx)
	if err != nil {
		c.broken = true
		c.nc.Close()
		return
	}
	m.TS = ts
	if s.Logger != nil {
		what := "reply " + m.Op
		if m.Type == wire.TypeBye {
			what = "bye"
		}
		if m.Type == wire.TypeError {
			what = "error " + m.Code + " " + orDash(m.Op)
		}
		s.logf(ts, "send", fmt.Sprintf("send %s to %s%s", what, c.peerID(), reqSuffix(m.ID)),
			slog.String("code", m.Code), slog.String("op", m.Op), slog.String("peer", c.peerID()), slog.String("req", m.ID))
	}
	c.write(m)
}

// logf emits one log record for a clock change at ts.
func (s *Server) logf(ts uint64, event, msg string, attrs ...slog.Attr) {
	if s.Logger == nil {
		return
	}
	all := make([]slog.Attr, 0, len(attrs)+2)
	all = append(all, slog.Uint64("L", ts), slog.String("event", event))
	for _, a := range attrs {
		if a.Value.Kind() == slog.KindString && a.Value.String() == "" {
			continue
		}
		all = append(all, a)
	}
	s.Logger.LogAttrs(context.Background(), slog.LevelInfo, msg, all...)
}

// warnf emits a warning that is not a clock change (it carries no L).
func (s *Server) warnf(msg string, attrs ...slog.Attr) {
	if s.Logger != nil {
		s.Logger.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
	}
}

func reqSuffix(id string) string {
	if id == "" {
		return ""
	}
	return " req=" + id
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
