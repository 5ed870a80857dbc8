package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"atm/netproto/wire"

	"atm/bank/money"
)

// Login binds the session to an account. On success the credentials are
// remembered for re-login after a reconnect. A wrong PIN gives an *Error
// matching outcome.ErrWrongPIN with AttemptsLeft; a locked account one matching
// outcome.ErrAccountLocked with Until.
func (c *Client) Login(ctx context.Context, account, pin string) (Reply, error) {
	return c.do(ctx, wire.Message{Type: wire.OpLogin, Account: account, PIN: pin})
}

// Balance returns the session account's balance.
func (c *Client) Balance(ctx context.Context) (Reply, error) {
	return c.do(ctx, wire.Message{Type: wire.OpBalance})
}

// Deposit adds amount to the session account. Reply.Balance is the new balance.
func (c *Client) Deposit(ctx context.Context, amount money.Cents) (Reply, error) {
	return c.do(ctx, wire.Message{Type: wire.OpDeposit, Amount: wire.AmountOf(amount)})
}

// Withdraw takes amount from the session account.
func (c *Client) Withdraw(ctx context.Context, amount money.Cents) (Reply, error) {
	return c.do(ctx, wire.Message{Type: wire.OpWithdraw, Amount: wire.AmountOf(amount)})
}

// Transfer moves amount from the session account to account to.
// Reply.Balance is the session account's new balance.
func (c *Client) Transfer(ctx context.Context, to string, amount money.Cents) (Reply, error) {
	return c.do(ctx, wire.Message{Type: wire.OpTransfer, To: to, Amount: wire.AmountOf(amount)})
}

// Lookup returns the holder's name of account (Reply.Account, Reply.Holder),
// to confirm a transfer's recipient.
func (c *Client) Lookup(ctx context.Context, account string) (Reply, error) {
	return c.do(ctx, wire.Message{Type: wire.OpLookup, Account: account})
}

// Statement returns up to limit entries of the session account older than
// the cursor before (0: the newest), newest first; Reply.Next is the cursor
// of the following page, 0 at the end. limit 0 asks for the server's default.
func (c *Client) Statement(ctx context.Context, before uint64, limit int) (Reply, error) {
	return c.do(ctx, wire.Message{Type: wire.OpStatement, Before: before, Limit: limit})
}

// Logout ends the session's binding to its account and forgets the
// credentials. The connection stays open.
func (c *Client) Logout(ctx context.Context) (Reply, error) {
	return c.do(ctx, wire.Message{Type: wire.OpLogout})
}

// Audit is an operator operation: a consistent read of every account, with
// the totals that show whether money was conserved. token must equal the
// server's operator token.
func (c *Client) Audit(ctx context.Context, token string) (AuditReport, error) {
	r, m, err := c.doRaw(ctx, wire.Message{Type: wire.OpAudit, Token: token})
	if err != nil {
		return AuditReport{}, err
	}
	a := AuditReport{TS: r.TS, Accounts: m.Accounts, Negative: m.Negative}
	if m.Total != nil {
		a.Total = *m.Total
	}
	if m.Deposits != nil {
		a.Deposits = *m.Deposits
	}
	if m.Withdrawals != nil {
		a.Withdrawals = *m.Withdrawals
	}
	if m.Conserved != nil {
		a.Conserved = *m.Conserved
	}
	return a, nil
}

// OpenAccount is an operator operation: it creates account id for holder
// name with the given PIN and a zero balance.
func (c *Client) OpenAccount(ctx context.Context, token, id, name, pin string) (Reply, error) {
	return c.do(ctx, wire.Message{Type: wire.OpOpenAccount, Token: token, Account: id, Name: name, PIN: pin})
}

func (c *Client) do(ctx context.Context, req wire.Message) (Reply, error) {
	r, _, err := c.doRaw(ctx, req)
	return r, err
}

// doRaw sends req and waits for its answer. On success it also returns the
// wire message, for the fields a Reply does not carry (audit).
//
// A money request that was written to a connection is never given up: if
// no answer comes in time, or the connection breaks for good, the error is an
// *OutcomeUnknownError and the call is kept for Resolve.
func (c *Client) doRaw(ctx context.Context, req wire.Message) (Reply, *wire.Message, error) {
	if c.opts.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
	}
	if req.ID == "" {
		req.ID = c.nextID()
	}
	req.Proc = c.proc
	cl := newCall(req)
	cl.reason, _ = ctx.Value(reasonKey{}).(string)

	c.wmu.Lock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.wmu.Unlock()
		return Reply{}, nil, ErrClientClosed
	}
	c.queue = append(c.queue, cl)
	conn, bw := c.conn, c.bw
	cl.sent = conn != nil
	c.mu.Unlock()
	if conn != nil {
		c.send(conn, bw, cl, cl.reason)
	}
	c.wmu.Unlock()

	select {
	case <-cl.done:
	case <-ctx.Done():
		c.mu.Lock()
		select {
		case <-cl.done: // answered meanwhile
		default:
			if cl.money && cl.sent {
				c.kept[req.ID] = cl
				c.mu.Unlock()
				return Reply{}, nil, cl.unknown(ctx.Err())
			}
			// Not sent yet (the connection is down): it never will be.
			cl.abandoned.Store(true)
			c.mu.Unlock()
			return Reply{}, nil, fmt.Errorf("%s %s: no reply: %w", req.Type, req.ID, ctx.Err())
		}
		c.mu.Unlock()
	}
	r := cl.res
	if r.err != nil {
		if errors.Is(r.err, ErrOutcomeUnknown) {
			c.mu.Lock()
			c.kept[req.ID] = cl
			c.mu.Unlock()
		}
		return Reply{}, nil, r.err
	}
	return r.reply, r.reply.raw, nil
}

// Resolve waits for the outcome of a money request that returned an
// *OutcomeUnknownError, identified by its ID. The client kept the request:
// it stays pending on the connection, and after a reconnect it is resent
// with the same id, which the bank answers with the first outcome (then
// Reply.Duplicate is set: it was applied once, not again). Resolve returns
// that reply, or the bank's refusal as an *Error.
//
// While the outcome is still unknown when ctx ends, Resolve returns an
// *OutcomeUnknownError again and can be called anew. When the client can no
// longer learn it (closed, connection lost without Reconnect, or the session
// could not be restored after a reconnect) it returns an
// *OutcomeUnknownError whose cause says so. Once Resolve has returned the
// outcome, the id is forgotten; an id that is not kept gives ErrNotPending.
func (c *Client) Resolve(ctx context.Context, id string) (Reply, error) {
	c.mu.Lock()
	cl := c.kept[id]
	c.mu.Unlock()
	if cl == nil {
		return Reply{}, fmt.Errorf("resolve %s: %w", id, ErrNotPending)
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		select {
		case <-cl.done:
		default:
			return Reply{}, cl.unknown(ctx.Err())
		}
	}
	r := cl.res
	if r.err != nil && errors.Is(r.err, ErrOutcomeUnknown) {
		return Reply{}, r.err
	}
	c.mu.Lock()
	delete(c.kept, id)
	c.mu.Unlock()
	return r.reply, r.err
}

// nextID returns a request id unique to this client.
func (c *Client) nextID() string { return c.idPrefix + strconv.FormatUint(c.seq.Add(1), 10) }

// send writes cl's request on conn with a fresh tick; reason labels its
// clock event. It must be called with c.wmu held. A write error closes conn,
// which the reader reports.
func (c *Client) send(conn net.Conn, bw *bufio.Writer, cl *call, reason string) {
	c.clkMu.Lock()
	after := c.clock.Tick()
	cl.msg.TS = after
	cl.sentTS = after
	// The receives not yet reported ride on this request (see wire.Seen);
	// a resent request keeps those it already carried.
	if len(c.unreported) > 0 {
		cl.msg.Seen = append(cl.msg.Seen, c.unreported...)
		if n := len(cl.msg.Seen); n > wire.MaxSeen {
			cl.msg.Seen = cl.msg.Seen[n-wire.MaxSeen:]
		}
		c.unreported = nil
	}
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(ClockEvent{Dir: "send", Type: cl.msg.Type, Op: cl.msg.Type, ReqID: cl.msg.ID,
			Before: after - 1, After: after, Peer: c.helloServer(), Reason: reason})
	}
	c.clkMu.Unlock()
	if err := writeMessage(conn, bw, &cl.msg, c.opts.DialTimeout*2); err != nil {
		conn.Close()
	}
}

// helloServer is the server's process id, the peer of a send's clock event.
func (c *Client) helloServer() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello.Server
}

func writeMessage(conn net.Conn, bw *bufio.Writer, m *wire.Message, timeout time.Duration) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	bw.Write(b)
	bw.WriteByte('\n')
	return bw.Flush()
}

// observe records the receipt of m on the clock and reports it, labelled
// with reason. It returns the clock after the receive event.
func (c *Client) observe(m *wire.Message, reason string) uint64 {
	c.clkMu.Lock()
	defer c.clkMu.Unlock()
	before := c.clock.Now()
	after := c.clock.Receive(m.TS).New
	if m.TS > 0 && m.TS <= wire.MaxTS && !c.opts.NoReports {
		// Reported with the next request; the oldest go first if no
		// request comes for a long time.
		c.unreported = append(c.unreported, wire.Seen{TS: m.TS, At: after})
		if n := len(c.unreported); n > wire.MaxSeen {
			c.unreported = append(c.unreported[:0], c.unreported[n-wire.MaxSeen:]...)
		}
	}
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(ClockEvent{Dir: "recv", Type: m.Type, Op: m.Op, ReqID: m.ID,
			Before: before, After: after, Remote: m.TS, Peer: m.Proc, Reason: reason})
	}
	return after
}

// reasonKey is the context key of WithReason.
type reasonKey struct{}

// WithReason labels the clock events of a request made with ctx (its send
// and its answer) with reason, for an application that makes a request
// the person did not ask for: ClockEvent.Reason tells them apart.
func WithReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, reasonKey{}, reason)
}

// answerReason is the reason of the request m answers, if any.
func (c *Client) answerReason(m *wire.Message) string {
	if m.ID == "" || (m.Type != wire.TypeReply && m.Type != wire.TypeError) {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range c.queue {
		if q.msg.ID == m.ID {
			return q.reason
		}
	}
	return ""
}
