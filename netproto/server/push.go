package server

import (
	"fmt"
	"log/slog"

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
	// For a change another server committed: that server, and this
	// server's receive of the change.
	origin string
	recvTS uint64
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
	defer func() {
		if r := recover(); r != nil {
			// The serving goroutine sees the connection closed, and records
			// the disconnect.
			c.crashed("sending pushes", r)
		}
	}()
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
		c.sendBatch(batch)
		c.flush()
	}
}

// sendBatch records a batch of pushes together, in order: their timestamps
// follow the order of the transfers, and they share the ledger's commits.
// Under smu, so that none is recorded after a logout of its session.
func (c *conn) sendBatch(batch []pushItem) {
	c.smu.Lock()
	defer c.smu.Unlock()
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
		ev := bank.Event{Kind: bank.KindPush, Account: p.account, To: p.counterparty(),
			Amount: p.amount, Balance: p.balance, Client: c.peerID(),
			Detail: pushDetail(p.kind, p.applyTS)}
		if p.origin != "" {
			ev.Origin, ev.OrigTS, ev.RecvTS = p.origin, p.applyTS, p.recvTS
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return
	}
	if c.s.onPush != nil {
		c.s.onPush(events)
	}
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
