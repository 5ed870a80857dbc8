package client

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"atm/netproto/retry"
	"atm/netproto/wire"
)

// Errors of FollowLog.
var (
	// ErrFollowUnsupported: the server answered a log request with follow
	// without following the log (a server older than subscriptions).
	ErrFollowUnsupported = errors.New("the server does not follow the log: it answers log requests one page at a time")
	// ErrFollowEnded: the client read the log (Log) or followed it anew
	// (FollowLog), which ends the subscription before: the server keeps
	// one per connection.
	ErrFollowEnded = errors.New("the log subscription ended: this client read or followed the log again")
)

// followPages is how many pages wait in a LogFollow's channel.
const followPages = 16

// A LogFollow is a subscription to the bank's event log (FollowLog): its
// pages come on Pages, in commit order, every event once.
type LogFollow struct {
	c      *Client
	token  string
	limit  int
	pages  chan LogPage
	ctx    context.Context
	cancel context.CancelFunc
	resume chan struct{} // holds a token when the subscription must be sent again
	done   chan struct{} // closed when the pages are closed
	dmu    sync.Mutex    // held while a page is delivered, and while the pages close

	mu     sync.Mutex
	sub    string      // the id of the current subscription request ("": none)
	on     net.Conn    // the connection its reply came on (nil: not answered, or ended)
	cursor wire.Cursor // Next of the last page delivered
	err    error       // why it ended
}

// FollowLog is an operator operation: it reads the log committed after
// the cursor after, like Log, and then follows it. The server sends the
// events as they commit (nothing while nothing commits); they come on the
// LogFollow's Pages, oldest first, each event exactly once, until ctx
// ends, the client closes, or the subscription is refused for good.
//
// The client keeps it going by itself: when the server says the
// connection fell behind (log_behind), or the connection breaks and the
// client reconnects (to the same server or another of the bank), it sends
// the subscription again from the Next of the last page delivered, so
// nothing is missed nor repeated.
//
// The server keeps one subscription per connection: a later Log or
// FollowLog on this client ends this one (its Err is then
// ErrFollowEnded). Take the pages promptly: while Pages is full the
// client reads nothing else from its connection. FollowLog returns the
// error of the first request: forbidden (the token), bad_request (a
// cursor the log never gave), ErrFollowUnsupported.
func (c *Client) FollowLog(ctx context.Context, token string, after wire.Cursor, limit int) (*LogFollow, error) {
	f := &LogFollow{c: c, token: token, limit: limit, cursor: after,
		pages: make(chan LogPage, followPages), resume: make(chan struct{}, 1), done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(ctx)
	c.mu.Lock()
	old := c.follow
	c.follow = f
	c.mu.Unlock()
	if old != nil {
		old.end(ErrFollowEnded)
	}
	if err := f.subscribe(f.ctx); err != nil {
		f.end(err)
		return nil, err
	}
	go f.run()
	return f, nil
}

// Pages delivers the pages of the log, oldest first: the events committed
// after the cursor given to FollowLog, then the new ones as they commit.
// A page has at least one event. The channel is closed when the
// subscription ends; Err then says why.
func (f *LogFollow) Pages() <-chan LogPage { return f.pages }

// Err is why the subscription ended (context.Canceled after the context
// given to FollowLog ended); nil while it runs.
func (f *LogFollow) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Cursor is the Next of the last page delivered: the after from which a
// new FollowLog would go on.
func (f *LogFollow) Cursor() wire.Cursor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cursor
}

// subscribe sends the log request with follow from the cursor and waits
// for its answer. The reply's page (and the pages after it) are delivered
// by the reader, in the order they come.
func (f *LogFollow) subscribe(ctx context.Context) error {
	id := f.c.nextID()
	f.mu.Lock()
	f.sub, f.on = id, nil
	after := f.cursor
	select { // a resume for the subscription before is spent
	case <-f.resume:
	default:
	}
	f.mu.Unlock()
	_, m, err := f.c.doRaw(ctx, wire.Message{ID: id, Type: wire.OpLog, Token: f.token, After: after, Limit: f.limit, Follow: true})
	if err != nil {
		return err
	}
	if !m.Follow {
		return ErrFollowUnsupported
	}
	return nil
}

// run sends the subscription again whenever it must resume, until it ends.
func (f *LogFollow) run() {
	wait := retry.Backoff{Min: reconnectMinDelay, Max: reconnectMaxDelay}
	for {
		select {
		case <-f.resume:
		case <-f.ctx.Done():
			f.end(f.ctx.Err())
			return
		case <-f.c.done:
			f.end(ErrClientClosed)
			return
		}
		for {
			err := f.subscribe(WithReason(f.ctx, ReasonResume))
			if err == nil {
				wait.Reset()
				break
			}
			if f.ctx.Err() != nil || permanent(err) {
				f.end(err)
				return
			}
			// The bank could not answer (its store unreachable, no
			// connection in time): try again shortly.
			t := time.NewTimer(wait.Next())
			select {
			case <-t.C:
			case <-f.ctx.Done():
				t.Stop()
				f.end(f.ctx.Err())
				return
			}
		}
	}
}

// permanent reports whether a subscription's error ends it: the request
// itself is refused, or the client can no longer send it.
func permanent(err error) bool {
	for _, e := range []error{wire.ErrForbidden, wire.ErrBadRequest, wire.ErrUnknownType, ErrFollowUnsupported,
		ErrClientClosed, ErrConnectionLost} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// end ends the subscription with err (the first reason given stays), and
// closes the pages once no page is being delivered.
func (f *LogFollow) end(err error) {
	f.cancel()
	f.mu.Lock()
	f.sub, f.on = "", nil
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	f.c.mu.Lock()
	if f.c.follow == f {
		f.c.follow = nil
	}
	f.c.mu.Unlock()
	f.dmu.Lock()
	defer f.dmu.Unlock()
	select {
	case <-f.done:
	default:
		close(f.done)
		close(f.pages)
	}
}

// following is the client's subscription, if any.
func (c *Client) following() *LogFollow {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.follow
}

// followMessage hands the reader's message m, from conn, to the
// subscription it belongs to: the reply to the subscription request (its
// page), a page, or log_behind. It returns once the page is delivered or
// the subscription ended.
func (c *Client) followMessage(m *wire.Message, conn net.Conn) {
	f := c.following()
	if f == nil {
		return
	}
	f.mu.Lock()
	if m.ID == "" || m.ID != f.sub {
		f.mu.Unlock()
		return
	}
	var page LogPage
	switch m.Type {
	case wire.TypeReply:
		if !m.Follow {
			f.mu.Unlock()
			return
		}
		f.on = conn
		page = LogPage{Events: m.Entries, Next: m.Next, TS: m.TS}
	case wire.TypeLog:
		page = LogPage{Events: m.Entries, Next: m.Next, TS: m.TS}
	case wire.TypeLogBehind:
		// The server ended it after the pages before: go on from the
		// last one.
		f.on = nil
		f.mu.Unlock()
		f.wake()
		return
	default:
		f.mu.Unlock()
		return
	}
	if page.Next == "" {
		page.Next = f.cursor
	}
	f.cursor = page.Next
	f.mu.Unlock()
	if len(page.Events) > 0 {
		f.deliver(page)
	}
}

// deliver hands page to the reader of Pages, unless the subscription ends
// first.
func (f *LogFollow) deliver(page LogPage) {
	f.dmu.Lock()
	defer f.dmu.Unlock()
	select {
	case <-f.done:
		return
	default:
	}
	select {
	case f.pages <- page:
	case <-f.ctx.Done():
	case <-f.c.done:
	}
}

// followLost tells the subscription that conn broke: if it ran there, it
// is sent again once the client is connected (a subscription request
// still unanswered is resent with the pending requests anyway).
func (c *Client) followLost(conn net.Conn) {
	f := c.following()
	if f == nil {
		return
	}
	f.mu.Lock()
	lost := f.on != nil && f.on == conn
	if lost {
		f.on = nil
	}
	f.mu.Unlock()
	if lost {
		f.wake()
	}
}

// wake asks run to send the subscription again.
func (f *LogFollow) wake() {
	select {
	case f.resume <- struct{}{}:
	default:
	}
}
