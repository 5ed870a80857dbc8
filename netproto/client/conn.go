package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"atm/bank/outcome"
	"atm/netproto/retry"
	"atm/netproto/wire"
)

// run reads the connection until it breaks, then reconnects or finishes.
func (c *Client) run(conn net.Conn, br *bufio.Reader) {
	defer close(c.readerDone)
	for {
		err := c.readLoop(conn, br)
		c.followLost(conn)
		c.mu.Lock()
		c.conn, c.bw = nil, nil
		closed := c.closed
		c.mu.Unlock()
		conn.Close()
		if closed {
			return
		}
		c.mu.Lock()
		lost := c.addrs[c.cur]
		c.mu.Unlock()
		c.report(ConnStatus{State: StateLost, Err: err, Addr: lost})
		if !c.opts.Reconnect {
			c.mu.Lock()
			c.closed = true
			c.mu.Unlock()
			c.finish(fmt.Errorf("%w: %v", ErrConnectionLost, err))
			return
		}
		var ok bool
		conn, br, ok = c.reconnect()
		if !ok {
			return
		}
	}
}

// readLoop dispatches incoming messages until the connection fails.
func (c *Client) readLoop(conn net.Conn, br *bufio.Reader) error {
	var scratch []byte
	var bye error
	for {
		line, err := wire.ReadLine(br, clientMaxLine, &scratch)
		if err != nil {
			if bye != nil {
				return bye
			}
			return err
		}
		m := new(wire.Message)
		if err := json.Unmarshal(line, m); err != nil {
			return fmt.Errorf("unreadable message from the server: %w", err)
		}
		after := c.observe(m, c.answerReason(m))
		switch m.Type {
		case wire.TypeError:
			if m.ID == "" && (m.Code == wire.CodeIdleTimeout || m.Code == wire.CodeShuttingDown || m.Code == wire.CodeServerBusy) {
				bye = wire.ErrorFrom(m) // about the connection, not a request: the server closes it next
				continue
			}
			c.deliver(m, after)
		case wire.TypeReply:
			c.followMessage(m, conn) // a subscription's reply: its page goes first
			c.deliver(m, after)
		case wire.TypeLog, wire.TypeLogBehind:
			c.followMessage(m, conn)
		case wire.TypePush:
			c.push(m, after)
		case wire.TypeBye:
			bye = wire.ErrorFrom(m)
		}
	}
}

// deliver hands a reply or error to the request it answers.
func (c *Client) deliver(m *wire.Message, after uint64) {
	c.mu.Lock()
	var cl *call
	if len(c.queue) > 0 && (m.ID == "" || c.queue[0].msg.ID == m.ID) {
		cl = c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
	} else {
		for i, q := range c.queue {
			if q.msg.ID == m.ID {
				cl = q
				c.queue = append(c.queue[:i], c.queue[i+1:]...)
				break
			}
		}
	}
	if cl != nil && m.Type == wire.TypeReply {
		switch cl.msg.Type {
		case wire.OpLogin:
			c.creds = &credentials{account: cl.msg.Account, pin: cl.msg.PIN}
		case wire.OpLogout:
			c.creds = nil
		}
	}
	resent := cl != nil && cl.resent
	c.mu.Unlock()
	if cl == nil || cl.abandoned.Load() {
		return
	}
	if m.Type == wire.TypeError {
		err := wire.ErrorFrom(m)
		if cl.money && m.Code == codeUnavailable {
			// The bank could not settle the request with its store (an
			// etcd cluster without quorum): it may or may not be applied.
			// It is kept and sent again with its id until the bank answers
			// it for good; meanwhile its caller sees an unknown outcome.
			c.sendAgainLater(cl)
			return
		}
		if cl.money && resent && m.Code == wire.CodeNotLoggedIn {
			// The resend was not checked against the first outcome: the
			// session was lost. It may still have been applied.
			cl.complete(result{err: cl.unknown(err)})
			return
		}
		cl.complete(result{err: err})
		return
	}
	cl.complete(result{reply: replyFrom(m, cl.sentTS, after)})
}

func (c *Client) push(m *wire.Message, after uint64) {
	p := Push{Kind: m.Kind, Account: m.Account, From: m.From, FromHolder: m.FromHolder, To: m.To, ToHolder: m.ToHolder,
		TS: m.TS, ApplyTS: m.ApplyTS, RecvTS: after}
	if p.Kind == "" {
		p.Kind = wire.PushTransferIn
	}
	p.Amount, _ = m.Amount.Cents()
	if m.Balance != nil {
		p.Balance, p.HasBalance = *m.Balance, true
	}
	for {
		select {
		case c.pushes <- p:
			return
		default:
		}
		select {
		case <-c.pushes: // drop the oldest
		default:
		}
	}
}

func (c *Client) report(s ConnStatus) {
	select {
	case c.status <- s:
	default:
	}
}

// reconnect redials with backoff until it succeeds or the client is closed.
// Each attempt is a round over the servers the client knows, starting with
// the one after the server whose connection broke and ending with it; the
// jittered backoff spaces the rounds.
func (c *Client) reconnect() (net.Conn, *bufio.Reader, bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	c.mu.Lock()
	first := (c.cur + 1) % len(c.addrs)
	c.mu.Unlock()
	b := retry.Backoff{Min: reconnectMinDelay, Max: reconnectMaxDelay}
	var lastErr error
	for attempt := 1; ; attempt++ {
		delay := b.Next()
		c.report(ConnStatus{State: StateReconnecting, Attempt: attempt, Delay: delay, Addr: c.addrs[first], Err: lastErr})
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.retry:
			t.Stop()
		case <-c.done:
			t.Stop()
			return nil, nil, false
		}
		for k := range c.addrs {
			if ctx.Err() != nil {
				return nil, nil, false
			}
			i := (first + k) % len(c.addrs)
			conn, br, hello, err := c.dial(ctx, c.addrs[i], ReasonReconnect)
			if err != nil {
				lastErr = err
				continue
			}
			conn, br, ok, loginErr := c.restore(conn, br, hello, i)
			if !ok {
				continue
			}
			select { // a RetryNow made during this outage is spent
			case <-c.retry:
			default:
			}
			c.report(ConnStatus{State: StateReconnected, Err: loginErr, Addr: c.addrs[i]})
			return conn, br, true
		}
	}
}

// restore logs in again on a fresh connection if the session was logged in,
// then installs the connection (to c.addrs[cur]) and resends the pending
// requests in order.
func (c *Client) restore(conn net.Conn, br *bufio.Reader, hello Hello, cur int) (net.Conn, *bufio.Reader, bool, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	creds := c.creds
	closed := c.closed
	c.hello = hello // the peer of the login below
	c.mu.Unlock()
	if closed {
		conn.Close()
		return nil, nil, false, nil
	}
	bw := bufio.NewWriter(conn)
	var loginErr error
	if creds != nil {
		var ok bool
		if ok, loginErr = c.relogin(conn, br, bw, creds); !ok {
			conn.Close()
			return nil, nil, false, nil
		}
	}
	c.mu.Lock()
	resend, reasons, orphans := c.requeueLocked(loginErr)
	c.conn, c.bw, c.hello, c.cur = conn, bw, hello, cur
	c.mu.Unlock()
	for _, q := range orphans {
		q.complete(result{err: q.unknown(loginErr)})
	}
	for i, q := range resend {
		c.send(conn, bw, q, reasons[i])
	}
	return conn, br, true, loginErr
}

// relogin logs the session in again on a fresh connection and reads up to
// the answer, delivering the pushes that come first. ok is false when the
// connection fails or the server says goodbye; loginErr is the server's
// refusal, after which the client forgets the session.
func (c *Client) relogin(conn net.Conn, br *bufio.Reader, bw *bufio.Writer, creds *credentials) (ok bool, loginErr error) {
	cl := &call{msg: wire.Message{Type: wire.OpLogin, ID: c.nextID(), Proc: c.proc, Account: creds.account, PIN: creds.pin}}
	c.send(conn, bw, cl, ReasonRestore)
	_ = conn.SetReadDeadline(time.Now().Add(c.opts.DialTimeout))
	var scratch []byte
	for {
		line, err := wire.ReadLine(br, clientMaxLine, &scratch)
		if err != nil {
			return false, nil
		}
		m := new(wire.Message)
		if err := json.Unmarshal(line, m); err != nil {
			return false, nil
		}
		reason := ""
		if m.ID == cl.msg.ID {
			reason = ReasonRestore
		}
		c.observe(m, reason)
		switch {
		case m.Type == wire.TypePush:
			c.push(m, c.clock.Now())
			continue
		case m.Type == wire.TypeBye:
			return false, nil
		case m.ID != cl.msg.ID && m.ID != "":
			continue
		}
		if m.Type == wire.TypeError {
			loginErr = fmt.Errorf("log in again as %s: %w", creds.account, wire.ErrorFrom(m))
			c.mu.Lock()
			c.creds = nil
			c.mu.Unlock()
		}
		_ = conn.SetReadDeadline(time.Time{})
		return true, loginErr
	}
}

// requeueLocked keeps in the queue the calls to resend on a new
// connection, marked sent, with the reason each is sent for: all but the
// abandoned ones and, when the session could not log in again (loginErr),
// the money requests already sent, returned as orphans, whose outcome is
// unknown (a resend would be refused as not logged in and tell nothing
// about the first send). c.mu is held.
func (c *Client) requeueLocked(loginErr error) (resend []*call, reasons []string, orphans []*call) {
	pending := c.queue[:0]
	for _, q := range c.queue {
		switch {
		case q.abandoned.Load():
		case loginErr != nil && q.money && q.sent:
			orphans = append(orphans, q)
		default:
			pending = append(pending, q)
		}
	}
	clear(c.queue[len(pending):])
	c.queue = pending
	resend = append([]*call(nil), pending...)
	reasons = make([]string, len(resend))
	for i, q := range resend {
		q.resent = q.resent || q.sent
		q.sent = true
		reasons[i] = q.reason
		if q.resent {
			reasons[i] = ReasonResend
		}
	}
	return resend, reasons, orphans
}

// RetryNow makes a reconnecting client try at once instead of waiting for
// the end of its current backoff delay. It does nothing while connected
// (a call made then is forgotten when the connection breaks) and never
// blocks.
func (c *Client) RetryNow() {
	c.mu.Lock()
	connected := c.conn != nil
	c.mu.Unlock()
	if connected {
		return
	}
	select {
	case c.retry <- struct{}{}:
	default:
	}
}

// Close closes the connection and the client. Pending calls fail with
// ErrClientClosed, except money requests already sent, whose outcome is
// unknown: an *OutcomeUnknownError caused by ErrClientClosed. The Pushes and
// Status channels are closed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.readerDone
		return nil
	}
	c.closed = true
	conn := c.conn
	c.mu.Unlock()
	close(c.done)
	if conn != nil {
		conn.Close()
	}
	<-c.readerDone
	c.finish(nil)
	return nil
}

// finish fails the pending calls and closes the channels, once.
func (c *Client) finish(err error) {
	c.finishOnce.Do(func() {
		c.mu.Lock()
		q := c.queue
		c.queue = nil
		c.mu.Unlock()
		callErr := err
		if callErr == nil {
			callErr = ErrClientClosed
		}
		for _, cl := range q {
			c.mu.Lock()
			sent := cl.sent
			c.mu.Unlock()
			if cl.money && sent {
				cl.complete(result{err: cl.unknown(callErr)})
			} else {
				cl.complete(result{err: callErr})
			}
		}
		// The last status is always delivered: make room for it if the
		// buffer is full, dropping the oldest.
		last := ConnStatus{State: StateClosed, Err: err}
		for sent := false; !sent; {
			select {
			case c.status <- last:
				sent = true
			default:
				select {
				case <-c.status:
				default:
				}
			}
		}
		close(c.status)
		close(c.pushes)
	})
}

func replyFrom(m *wire.Message, sentTS, recvTS uint64) Reply {
	r := Reply{ID: m.ID, Op: m.Op, TS: m.TS, SentTS: sentTS, RecvTS: recvTS,
		ServerRecv: m.RecvTS, ServerApply: m.ApplyTS,
		Account: m.Account, Holder: m.Holder, To: m.To, ToHolder: m.ToHolder,
		Entries: m.Entries, Next: stmtNext(m.Next), Duplicate: m.Duplicate, Archived: m.Archived, raw: m}
	if m.Balance != nil {
		r.Balance = *m.Balance
	}
	if m.Amount != "" {
		r.Amount, _ = m.Amount.Cents()
	}
	return r
}

// codeUnavailable is the code of the bank's refusals for lack of its store.
var codeUnavailable = outcome.Code(outcome.ErrClosed)

// sendAgainLater puts cl back among the pending requests after a jittered
// wait and writes it again, with its id, on the current connection (a
// reconnection resends it anyway).
func (c *Client) sendAgainLater(cl *call) {
	c.mu.Lock()
	cl.retry.Min, cl.retry.Max = 200*time.Millisecond, 2*time.Second
	wait := cl.retry.Next()
	c.mu.Unlock()
	go func() {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.done:
			cl.complete(result{err: cl.unknown(ErrClientClosed)})
			return
		}
		c.wmu.Lock()
		defer c.wmu.Unlock()
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			cl.complete(result{err: cl.unknown(ErrClientClosed)})
			return
		}
		c.queue = append(c.queue, cl)
		conn, bw := c.conn, c.bw
		c.mu.Unlock()
		if conn != nil {
			c.send(conn, bw, cl, ReasonResend)
		}
	}()
}

// stmtNext reads a statement's cursor: a timestamp (0 when there is none,
// or when it is not one, which no server sends).
func stmtNext(c wire.Cursor) uint64 {
	ts, _ := c.Uint()
	return ts
}
