package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"atm/netproto/retry"
	"atm/netproto/wire"

	"atm/bank/lamport"
	"atm/bank/money"
)

// Client errors that do not come from the server.
var (
	// ErrClientClosed is returned by calls on a closed Client.
	ErrClientClosed = errors.New("client closed")
	// ErrConnectionLost is returned for a request whose connection broke
	// when the client does not reconnect.
	ErrConnectionLost = errors.New("connection to the bank lost")
	// ErrOutcomeUnknown is matched by an *OutcomeUnknownError: a money
	// request reached a connection but no answer came, so it may or may not
	// have been applied. It is never a refusal by the bank.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrNotPending is returned by Resolve for an id that is not a kept
	// request of this client.
	ErrNotPending = errors.New("no request with that id awaits its outcome")
)

// OutcomeUnknownError is returned for a money request (deposit, withdraw,
// transfer) that was written to a connection and got no answer: the
// deadline passed, or the connection broke and the client does not
// reconnect. The bank may have applied it or not. It matches
// ErrOutcomeUnknown and unwraps to the cause (context.DeadlineExceeded,
// ErrConnectionLost, ErrClientClosed...).
//
// The client keeps the request: while it is open it resends it with the same
// id after a reconnect, and Resolve(ctx, ID) waits for its real outcome.
// Retrying with a new request instead could apply the money twice.
type OutcomeUnknownError struct {
	Op  string // "deposit", "withdraw" or "transfer"
	ID  string // the request id, for Resolve
	Err error  // why no answer came
}

func (e *OutcomeUnknownError) Error() string {
	return fmt.Sprintf("%s %s: outcome unknown, no answer from the bank: %v", e.Op, e.ID, e.Err)
}

// Is makes the error match ErrOutcomeUnknown.
func (e *OutcomeUnknownError) Is(target error) bool { return target == ErrOutcomeUnknown }

// Unwrap returns the cause.
func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// Client defaults.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 30 * time.Second
	reconnectMinDelay     = 100 * time.Millisecond
	reconnectMaxDelay     = 2 * time.Second
	clientMaxLine         = 4 << 20
	pushBuffer            = 64
	statusBuffer          = 32
)

// Options configures Dial. The zero value is usable.
type Options struct {
	ProcessID      string         // default "atm-" + 4 hex digits
	Clock          *lamport.Clock // default a new clock at 0
	DialTimeout    time.Duration  // default 5s; also bounds waiting for the greeting
	RequestTimeout time.Duration  // default 30s per call, including any reconnection; negative: none
	// Reconnect makes the client survive a broken connection: it redials
	// with backoff (100ms doubling to 2s, each wait drawn at random between
	// half and all of that, until Close), logs in again with the remembered
	// credentials if it was logged in, and resends every pending request
	// with its original id, so a request whose reply was lost is answered
	// from its first outcome and never applied twice.
	Reconnect bool
	// OnEvent is called after every change of the client's clock (each
	// message sent or received), synchronously and in clock order. It must
	// not block for long and must not call the Client.
	OnEvent func(ClockEvent)
}

// Client is a connection to the bank server for one ATM. Its methods are safe
// for concurrent use; concurrent requests are pipelined on the connection and
// answered in order.
type Client struct {
	addr     string
	opts     Options
	proc     string
	clock    *lamport.Clock
	idPrefix string
	seq      atomic.Uint64

	clkMu sync.Mutex // orders clock changes with their OnEvent calls

	wmu sync.Mutex // held while writing to the connection (and swapping it)

	mu     sync.Mutex // guards the fields below
	conn   net.Conn   // nil while disconnected
	bw     *bufio.Writer
	hello  Hello
	queue  []*call          // requests awaiting a reply, in send order
	kept   map[string]*call // money requests whose outcome is unknown, by id
	creds  *credentials
	closed bool

	pushes     chan Push
	status     chan ConnStatus
	done       chan struct{} // closed by Close
	retry      chan struct{} // RetryNow: one token cuts the reconnection's wait short
	readerDone chan struct{}
	finishOnce sync.Once
}

type credentials struct{ account, pin string }

type call struct {
	msg       wire.Message // the request; TS is set on each send
	sentTS    uint64
	money     bool   // deposit, withdraw or transfer: its outcome must be known
	reason    string // WithReason's label for its clock events
	abandoned atomic.Bool

	// Guarded by Client.mu.
	sent   bool // handed to a connection at least once
	resent bool // handed to a second connection after a reconnect

	once sync.Once
	done chan struct{} // closed when res is set
	res  result
}

type result struct {
	reply Reply
	err   error
}

func newCall(req wire.Message) *call {
	return &call{msg: req, money: isMoney(req.Type), done: make(chan struct{})}
}

func isMoney(op string) bool {
	return op == wire.OpDeposit || op == wire.OpWithdraw || op == wire.OpTransfer
}

// complete records the call's outcome, once.
func (cl *call) complete(r result) {
	cl.once.Do(func() {
		cl.res = r
		close(cl.done)
	})
}

// unknown is the error for a call whose outcome is unknown because of cause.
func (cl *call) unknown(cause error) *OutcomeUnknownError {
	return &OutcomeUnknownError{Op: cl.msg.Type, ID: cl.msg.ID, Err: cause}
}

// Dial connects to the server at addr and waits for its greeting. A server
// at its connection limit answers with an *Error matching wire.ErrServerBusy.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	if opts.ProcessID == "" {
		opts.ProcessID = "atm-" + randomTag()
	}
	if opts.Clock == nil {
		opts.Clock = lamport.NewClock(0)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	c := &Client{
		addr:       addr,
		opts:       opts,
		proc:       opts.ProcessID,
		clock:      opts.Clock,
		idPrefix:   opts.ProcessID + "-" + randomTag() + "-",
		pushes:     make(chan Push, pushBuffer),
		status:     make(chan ConnStatus, statusBuffer),
		done:       make(chan struct{}),
		retry:      make(chan struct{}, 1),
		readerDone: make(chan struct{}),
		kept:       map[string]*call{},
	}
	conn, br, hello, err := c.dial(ctx, "")
	if err != nil {
		return nil, err
	}
	c.conn, c.bw, c.hello = conn, bufio.NewWriter(conn), hello
	go c.run(conn, br)
	return c, nil
}

// randomTag is four random characters, lower case, that tell apart
// processes (and clients within one) that were given the same name.
func randomTag() string { return strings.ToLower(rand.Text()[:4]) }

// dial opens a connection and reads the greeting; reason labels the
// greeting's clock event.
func (c *Client) dial(ctx context.Context, reason string) (net.Conn, *bufio.Reader, Hello, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, nil, Hello{}, fmt.Errorf("connect to the bank at %s: %w", c.addr, err)
	}
	dl, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(dl)
	br := bufio.NewReader(conn)
	var scratch []byte
	line, err := wire.ReadLine(br, clientMaxLine, &scratch)
	if err != nil {
		conn.Close()
		return nil, nil, Hello{}, fmt.Errorf("waiting for the bank's greeting from %s: %w", c.addr, err)
	}
	var m wire.Message
	if err := json.Unmarshal(line, &m); err != nil {
		conn.Close()
		return nil, nil, Hello{}, fmt.Errorf("the server at %s does not speak this protocol: %w", c.addr, err)
	}
	c.observe(&m, reason)
	_ = conn.SetReadDeadline(time.Time{})
	switch m.Type {
	case wire.TypeHello:
		return conn, br, Hello{Server: m.Proc, Version: m.Version, TS: m.TS, MaxLine: m.MaxLine,
			MaxAmount: money.Cents(m.MaxAmount), Message: m.Message}, nil
	case wire.TypeError, wire.TypeBye:
		conn.Close()
		return nil, nil, Hello{}, wire.ErrorFrom(&m)
	default:
		conn.Close()
		return nil, nil, Hello{}, fmt.Errorf("the server at %s sent %q instead of a greeting", c.addr, m.Type)
	}
}

// ProcessID returns this client's process id, carried by every message.
func (c *Client) ProcessID() string { return c.proc }

// Clock returns the client's Lamport clock.
func (c *Client) Clock() *lamport.Clock { return c.clock }

// Hello returns the greeting of the current connection.
func (c *Client) Hello() Hello {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello
}

// Pushes delivers the server's notifications. The channel is buffered; when
// it is full the oldest push is dropped. It is closed when the client closes.
func (c *Client) Pushes() <-chan Push { return c.pushes }

// Status delivers changes of the connection (lost, reconnecting,
// reconnected, closed). The channel is buffered; when it is full new
// statuses are dropped, except the last: StateClosed, after which the
// channel is closed.
func (c *Client) Status() <-chan ConnStatus { return c.status }

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
	req.ID = c.nextID()
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

// run reads the connection until it breaks, then reconnects or finishes.
func (c *Client) run(conn net.Conn, br *bufio.Reader) {
	defer close(c.readerDone)
	for {
		err := c.readLoop(conn, br)
		c.mu.Lock()
		c.conn, c.bw = nil, nil
		closed := c.closed
		c.mu.Unlock()
		conn.Close()
		if closed {
			return
		}
		c.report(ConnStatus{State: StateLost, Err: err})
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
			c.deliver(m, after)
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
	b := retry.Backoff{Min: reconnectMinDelay, Max: reconnectMaxDelay}
	for attempt := 1; ; attempt++ {
		delay := b.Next()
		c.report(ConnStatus{State: StateReconnecting, Attempt: attempt, Delay: delay})
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.retry:
			t.Stop()
		case <-c.done:
			t.Stop()
			return nil, nil, false
		}
		conn, br, hello, err := c.dial(ctx, ReasonReconnect)
		if err != nil {
			continue
		}
		conn, br, ok, loginErr := c.restore(conn, br, hello)
		if !ok {
			continue
		}
		select { // a RetryNow made during this outage is spent
		case <-c.retry:
		default:
		}
		c.report(ConnStatus{State: StateReconnected, Err: loginErr})
		return conn, br, true
	}
}

// restore logs in again on a fresh connection if the session was logged in,
// then installs the connection and resends the pending requests in order.
func (c *Client) restore(conn net.Conn, br *bufio.Reader, hello Hello) (net.Conn, *bufio.Reader, bool, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	creds := c.creds
	closed := c.closed
	c.hello = hello
	c.mu.Unlock()
	if closed {
		conn.Close()
		return nil, nil, false, nil
	}
	bw := bufio.NewWriter(conn)
	var loginErr error
	if creds != nil {
		cl := &call{msg: wire.Message{Type: wire.OpLogin, ID: c.nextID(), Proc: c.proc, Account: creds.account, PIN: creds.pin}}
		c.send(conn, bw, cl, ReasonRestore)
		_ = conn.SetReadDeadline(time.Now().Add(c.opts.DialTimeout))
		var scratch []byte
		for {
			line, err := wire.ReadLine(br, clientMaxLine, &scratch)
			if err != nil {
				conn.Close()
				return nil, nil, false, nil
			}
			m := new(wire.Message)
			if err := json.Unmarshal(line, m); err != nil {
				conn.Close()
				return nil, nil, false, nil
			}
			reason := ""
			if m.ID == cl.msg.ID {
				reason = ReasonRestore
			}
			c.observe(m, reason)
			if m.Type == wire.TypePush {
				c.push(m, c.clock.Now())
				continue
			}
			if m.Type == wire.TypeBye {
				conn.Close()
				return nil, nil, false, nil
			}
			if m.ID != cl.msg.ID && m.ID != "" {
				continue
			}
			if m.Type == wire.TypeError {
				loginErr = fmt.Errorf("log in again as %s: %w", creds.account, wire.ErrorFrom(m))
				c.mu.Lock()
				c.creds = nil
				c.mu.Unlock()
			}
			break
		}
		_ = conn.SetReadDeadline(time.Time{})
	}
	c.mu.Lock()
	pending := c.queue[:0]
	var orphans []*call // sent money requests that cannot be resent
	for _, q := range c.queue {
		switch {
		case q.abandoned.Load():
		case loginErr != nil && q.money && q.sent:
			// Without the session, a resend would be refused as not logged
			// in and tell nothing about the first send.
			orphans = append(orphans, q)
		default:
			pending = append(pending, q)
		}
	}
	clear(c.queue[len(pending):])
	c.queue = pending
	resend := append([]*call(nil), pending...)
	reasons := make([]string, len(resend))
	for i, q := range resend {
		q.resent = q.resent || q.sent
		q.sent = true
		reasons[i] = q.reason
		if q.resent {
			reasons[i] = ReasonResend
		}
	}
	c.conn, c.bw = conn, bw
	c.mu.Unlock()
	for _, q := range orphans {
		q.complete(result{err: q.unknown(loginErr)})
	}
	for i, q := range resend {
		c.send(conn, bw, q, reasons[i])
	}
	return conn, br, true, loginErr
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
		Entries: m.Entries, Next: m.Next, Duplicate: m.Duplicate, raw: m}
	if m.Balance != nil {
		r.Balance = *m.Balance
	}
	if m.Amount != "" {
		r.Amount, _ = m.Amount.Cents()
	}
	return r
}
