package server

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"atm/netproto/wire"
)

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

// write queues m on the connection's buffer. It must be called with omu
// held.
func (c *conn) write(m *wire.Message) {
	if c.broken {
		return
	}
	if d := c.s.delay(); d > 0 {
		// Teaching mode: each message waits before it leaves, in order, so
		// that messages to different ATMs cross.
		c.flushLocked()
		time.Sleep(d)
		defer c.flushLocked()
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

// closeAfterFlush writes the buffered messages and closes the connection;
// nothing is written after them.
func (c *conn) closeAfterFlush() {
	c.omu.Lock()
	defer c.omu.Unlock()
	c.flushLocked()
	c.broken = true
	c.nc.Close()
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
		switch m.Type {
		case wire.TypeBye:
			what = "bye"
		case wire.TypeError:
			what = "error " + m.Code + " " + orDash(m.Op)
		case wire.TypeLog:
			what = fmt.Sprintf("log page of %d events", len(m.Entries))
		case wire.TypeLogBehind:
			what = "log_behind"
		}
		s.logf(ts, "send", fmt.Sprintf("send %s to %s%s", what, c.peerID(), reqSuffix(m.ID)),
			slog.String("code", m.Code), slog.String("op", m.Op), slog.String("peer", c.peerID()), slog.String("req", m.ID))
	}
	c.write(m)
}
