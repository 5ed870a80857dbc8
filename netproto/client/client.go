package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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
	// half and all of that, until Close) — with several servers (Dial's
	// list, DialServers), each attempt tries them all in turn, from the one
	// after the server that was lost — logs in again with the remembered
	// credentials if it was logged in, and resends every pending request
	// with its original id, so a request whose reply was lost is answered
	// from its first outcome and never applied twice.
	Reconnect bool
	// OnEvent is called after every change of the client's clock (each
	// message sent or received), synchronously and in clock order. It must
	// not block for long and must not call the Client.
	OnEvent func(ClockEvent)
	// NoReports turns off the receive reports: by default every request
	// carries the receives of server messages not yet reported ("seen"),
	// so that the server's log holds this client's receive events too.
	NoReports bool
	// TLS says which certificates to trust at tls:// addresses (see
	// TLSOptions); the zero value trusts on first use.
	TLS TLSOptions
}

// Client is a connection to the bank server for one ATM. Its methods are safe
// for concurrent use; concurrent requests are pipelined on the connection and
// answered in order.
type Client struct {
	addrs    []string // the bank's servers, in the order given
	opts     Options
	proc     string
	clock    *lamport.Clock
	idPrefix string
	seq      atomic.Uint64

	clkMu      sync.Mutex  // orders clock changes with their OnEvent calls; guards unreported
	unreported []wire.Seen // receives not yet reported to the server

	wmu sync.Mutex // held while writing to the connection (and swapping it)

	mu     sync.Mutex // guards the fields below
	conn   net.Conn   // nil while disconnected
	bw     *bufio.Writer
	hello  Hello
	cur    int              // index in addrs of the server of the current (or last) connection
	queue  []*call          // requests awaiting a reply, in send order
	kept   map[string]*call // money requests whose outcome is unknown, by id
	creds  *credentials
	closed bool
	follow *LogFollow // the log subscription (FollowLog), nil when none

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
	sent   bool          // handed to a connection at least once
	resent bool          // handed to a second connection after a reconnect
	retry  retry.Backoff // waits before sending it again after "unavailable"

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

// Dial connects to the bank at addr and waits for its greeting. addr is
// one server's address, or a comma-separated list of addresses of servers
// of one bank ("a:7420,b:7420"), as DialServers takes them; an address
// written tls://HOST:PORT is reached over TLS (see TLSOptions). A server at
// its connection limit answers with an *Error matching wire.ErrServerBusy;
// a TLS server reached without TLS, with one matching wire.ErrTLSRequired;
// a server whose bank is still opening, with one matching wire.ErrStarting
// (try again shortly: with Reconnect on, a reconnection treats such a
// server as one that is not there yet, and keeps trying).
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	return DialServers(ctx, SplitAddrs(addr), opts)
}

// DialServers connects to the first of addrs that answers, in order, and
// waits for its greeting. The addresses must be servers of one bank (the
// same accounts and the same record of requests): with Reconnect on, a
// broken connection fails over to the next address, round robin, and the
// pending requests are resent there with their ids, so the bank answers a
// request it already applied with its first outcome. When no address
// answers, the error matches each server's error (errors.Is).
func DialServers(ctx context.Context, addrs []string, opts Options) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no address of a bank server")
	}
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
		addrs:      append([]string(nil), addrs...),
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
	var errs []error
	for i, addr := range addrs {
		conn, br, hello, err := c.dial(ctx, addr, "")
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		c.conn, c.bw, c.hello, c.cur = conn, bufio.NewWriter(conn), hello, i
		go c.run(conn, br)
		return c, nil
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, &dialErrors{errs: errs}
}

// SplitAddrs splits a comma-separated list of addresses, dropping spaces
// and empty items: "a:1, b:2" is [a:1 b:2].
func SplitAddrs(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// dialErrors is the error of a Dial where no server answered: one error
// per address tried.
type dialErrors struct{ errs []error }

func (e *dialErrors) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("no bank server answered (%d tried): %s", len(e.errs), strings.Join(msgs, "; "))
}

func (e *dialErrors) Unwrap() []error { return e.errs }

// randomTag is four random characters, lower case, that tell apart
// processes (and clients within one) that were given the same name.
func randomTag() string { return strings.ToLower(rand.Text()[:4]) }

// dial opens a connection to addr and reads the greeting; reason labels the
// greeting's clock event.
func (c *Client) dial(ctx context.Context, addr, reason string) (net.Conn, *bufio.Reader, Hello, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	conn, info, err := DialTransport(ctx, addr, c.opts.TLS)
	if err != nil {
		return nil, nil, Hello{}, err
	}
	dl, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(dl)
	br := bufio.NewReader(conn)
	var scratch []byte
	line, err := wire.ReadLine(br, clientMaxLine, &scratch)
	if err != nil {
		conn.Close()
		return nil, nil, Hello{}, fmt.Errorf("waiting for the bank's greeting from %s: %w", addr, err)
	}
	var m wire.Message
	if err := json.Unmarshal(line, &m); err != nil {
		conn.Close()
		return nil, nil, Hello{}, fmt.Errorf("the server at %s does not speak this protocol: %w", addr, err)
	}
	if m.Type == wire.TypeError && m.Code == wire.CodeStarting {
		// Not a Lamport event (it carries no ts): the server has no clock
		// until its bank is open. Nothing to observe.
		conn.Close()
		return nil, nil, Hello{}, wire.ErrorFrom(&m)
	}
	c.observe(&m, reason)
	_ = conn.SetReadDeadline(time.Time{})
	switch m.Type {
	case wire.TypeHello:
		return conn, br, Hello{Server: m.Proc, Addr: addr, Version: m.Version, TS: m.TS, MaxLine: m.MaxLine,
			MaxAmount: money.Cents(m.MaxAmount), Message: m.Message, TLS: info}, nil
	case wire.TypeError, wire.TypeBye:
		conn.Close()
		return nil, nil, Hello{}, wire.ErrorFrom(&m)
	default:
		conn.Close()
		return nil, nil, Hello{}, fmt.Errorf("the server at %s sent %q instead of a greeting", addr, m.Type)
	}
}

// ProcessID returns this client's process id, carried by every message.
func (c *Client) ProcessID() string { return c.proc }

// Clock returns the client's Lamport clock.
func (c *Client) Clock() *lamport.Clock { return c.clock }

// Hello returns the greeting of the current connection (while reconnecting,
// of the last server that greeted); its Addr is that server's address.
func (c *Client) Hello() Hello {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello
}

// Addr returns the address of the server of the current connection (the
// last one while reconnecting).
func (c *Client) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[c.cur]
}

// Addrs returns the addresses of the bank's servers this client knows, in
// the order it tries them.
func (c *Client) Addrs() []string { return append([]string(nil), c.addrs...) }

// Pushes delivers the server's notifications. The channel is buffered; when
// it is full the oldest push is dropped. It is closed when the client closes.
func (c *Client) Pushes() <-chan Push { return c.pushes }

// Status delivers changes of the connection (lost, reconnecting,
// reconnected, closed). The channel is buffered; when it is full new
// statuses are dropped, except the last: StateClosed, after which the
// channel is closed.
func (c *Client) Status() <-chan ConnStatus { return c.status }
