package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"atm/netproto/retry"
	"atm/netproto/wire"

	"atm/bank"
)

// follower is a connection's subscription to the log: a log request with
// follow. After the request's reply it reads the log on from the reply's
// cursor each time the ledger says events were committed
// (Ledger.Appended), and sends each page it reads as a "log" message: a
// send of the server's own, stamped as it is written, never recorded.
// Nothing is read or sent while nothing commits.
//
// Two goroutines: read fills a queue of pages, write empties it onto the
// connection. The queue holds at most Server.MaxFollowQueue entries (a
// page always fits an empty queue): when a page does not fit, the
// connection is not taking the log as fast as it grows, and read queues a
// "log_behind" instead, carrying the cursor after the last page queued,
// and ends. write sends the pages queued before it, then it, and ends.
// The follower reads nothing more; the client resumes from that cursor.
//
// The subscription ends at once when the connection's serving goroutine
// ends it (another log request, a bye, the connection closing): nothing
// of it is written afterwards.
type follower struct {
	c      *conn
	id     string // the request's id, carried by every message
	limit  int    // the most entries in one page
	ctx    context.Context
	cancel context.CancelFunc // ends the subscription
	wg     sync.WaitGroup     // its two goroutines

	mu      sync.Mutex
	queue   []*wire.Message
	entries int           // entries in queue
	behind  bool          // read queued log_behind and ended
	ready   chan struct{} // holds a token while queue has messages
}

// follow starts a subscription for the log request req (id), whose reply
// was already written with cursor from. Only the serving goroutine calls
// it, after endFollow.
func (c *conn) follow(id string, limit int, from bank.Cursor) {
	f := &follower{c: c, id: id, limit: limit, ready: make(chan struct{}, 1)}
	f.ctx, f.cancel = context.WithCancel(c.s.ctx)
	c.fol = f
	c.s.wg.Add(2) // the serving goroutine is in the group: it is above zero
	f.wg.Add(2)
	go f.read(from)
	go f.write()
}

// endFollow ends the connection's subscription, if any, and returns once
// its goroutines are done: no message of it is written after. Only the
// serving goroutine calls it.
func (c *conn) endFollow() {
	f := c.fol
	if f == nil {
		return
	}
	c.fol = nil
	f.cancel()
	f.wg.Wait()
}

// armIdle sets the read deadline of the next request: the idle timeout,
// except while a subscription runs, when the client has nothing to say
// and the connection stays open without one.
func (c *conn) armIdle(idle time.Duration) {
	if f := c.fol; f != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.behind {
			_ = c.nc.SetReadDeadline(time.Time{})
			return
		}
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(idle))
}

// read reads the log from cursor after into the queue, page after page,
// then waits for the next commit, until the subscription ends or falls
// behind. It takes Appended's channel before each read: a commit after
// the read that found nothing closes it.
func (f *follower) read(after bank.Cursor) {
	c, s := f.c, f.c.s
	defer s.wg.Done()
	defer f.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			c.crashed("reading the log for its subscription", r)
		}
	}()
	wait := retry.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	for f.ctx.Err() == nil {
		appended := s.Ledger.Appended()
		events, next, err := s.Ledger.EventsAfter(f.ctx, after, f.limit)
		if err != nil {
			if f.ctx.Err() != nil {
				return
			}
			// The store cannot be read right now (an etcd cluster
			// without quorum): read again later, from the same cursor.
			s.warnf(fmt.Sprintf("the log subscription of %s%s cannot read the log: %v", c.peerID(), reqSuffix(f.id), err),
				slog.String("peer", c.peerID()), slog.String("req", f.id))
			t := time.NewTimer(wait.Next())
			select {
			case <-t.C:
			case <-f.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		wait.Reset()
		if len(events) == 0 {
			select {
			case <-appended:
			case <-f.ctx.Done():
				return
			}
			continue
		}
		if !f.put(events, next, after) {
			return
		}
		after = next
	}
}

// put queues a page of events whose cursor is next; last is the cursor
// after the pages queued before it. When the page does not fit, it queues
// log_behind with last instead and returns false.
func (f *follower) put(events []bank.Event, next, last bank.Cursor) bool {
	c, s := f.c, f.c.s
	f.mu.Lock()
	waiting := f.entries
	behind := waiting > 0 && waiting+len(events) > s.maxFollowQueue()
	if behind {
		f.queue = append(f.queue, &wire.Message{Type: wire.TypeLogBehind, ID: f.id, Proc: s.Ledger.ProcessID(),
			Next: wire.Cursor(last), Message: `this connection did not take the log as fast as it grew, and the subscription ended; send log with follow and "after" set to "next" to go on`})
		f.behind = true
		if !s.shutting.Load() {
			// No subscription: the idle timeout holds again.
			_ = c.nc.SetReadDeadline(time.Now().Add(s.idleTimeout()))
		}
	} else {
		f.queue = append(f.queue, &wire.Message{Type: wire.TypeLog, ID: f.id, Proc: s.Ledger.ProcessID(),
			Entries: entriesOf(events), Next: wire.Cursor(next)})
		f.entries += len(events)
	}
	f.mu.Unlock()
	select {
	case f.ready <- struct{}{}:
	default:
	}
	if behind {
		s.warnf(fmt.Sprintf("ended the log subscription of %s%s: it fell behind, %d entries waiting for the connection", c.peerID(), reqSuffix(f.id), waiting),
			slog.String("peer", c.peerID()), slog.String("req", f.id), slog.Int("waiting", waiting))
	}
	return !behind
}

// next takes the first message of the queue (nil when it is empty).
func (f *follower) next() *wire.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) == 0 {
		return nil
	}
	m := f.queue[0]
	f.queue[0] = nil
	f.queue = f.queue[1:]
	f.entries -= len(m.Entries)
	return m
}

// write sends the queued messages in order, each a send tick, until the
// subscription ends or its log_behind is sent.
func (f *follower) write() {
	c := f.c
	defer c.s.wg.Done()
	defer f.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			c.crashed("sending the log to its subscription", r)
		}
	}()
	for {
		select {
		case <-f.ready:
		case <-f.ctx.Done():
			return
		}
		for m := f.next(); m != nil; m = f.next() {
			if f.ctx.Err() != nil {
				return
			}
			c.sendOwn(m)
			if !c.flush() || m.Type == wire.TypeLogBehind {
				return
			}
		}
	}
}
