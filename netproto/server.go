package netproto

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"atm/bank"
)

// Server defaults.
const (
	DefaultIdleTimeout  = 5 * time.Minute
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxConns     = 10000
	DefaultLoginBackoff = 500 * time.Millisecond
	maxLoginBackoff     = 30 * time.Second
	maxRequestID        = 128
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("netproto: server closed")

// Server serves a bank over the line protocol described in PROTOCOL.md. Its
// zero value is usable once Bank is set.
//
// Guarantees:
//   - Each connection is served by one goroutine that handles its requests
//     one at a time, so replies leave in request order even when requests
//     are pipelined. Money changes are serialised by the bank.
//   - A session is bound to the account it logged in to; operations act on
//     that account only and any account id they carry is checked against it.
//   - Receiving a request observes its timestamp on the bank's clock before
//     the operation reaches the bank; the bank ticks for the apply event and
//     pre-assigns the reply's timestamp, all recorded in one event.
//   - Malformed, oversized or unknown input gets an error reply; it never
//     stops the server or reaches the ledger.
//   - Shutdown stops accepting, lets every connection finish the request it
//     is handling, sends each one a "bye", waits for them and records
//     the server's stop.
type Server struct {
	Bank          *bank.Bank
	IdleTimeout   time.Duration // default 5m; the connection is closed after this long without a request
	WriteTimeout  time.Duration // default 10s per write
	MaxConns      int           // default 10000; excess get a "server_busy" error line then close
	MaxLineBytes  int           // default 64 KiB
	OperatorToken string        // enables operator ops (audit, open_account) when non-empty
	// Logger receives one record per clock change: receives and protocol
	// replies from here, committed events through LogEvent (wire it as
	// bank.Options.OnEvent). Nil means no output.
	Logger *slog.Logger
	// LoginBackoff is the wait imposed on a connection after its first
	// failed login; it doubles with each further failure (up to 30s) and
	// resets on success. Default 500ms.
	LoginBackoff time.Duration
	// Now is the wall clock, for the login backoff; default time.Now.
	Now func() time.Time

	initOnce  sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	mu        sync.Mutex
	shutting  atomic.Bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	sessions  map[string]map[*conn]struct{}
	wg        sync.WaitGroup
	started   atomic.Bool
	stopOnce  sync.Once
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		s.sessions = make(map[string]map[*conn]struct{})
	})
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return DefaultIdleTimeout
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return DefaultMaxConns
}

func (s *Server) maxLine() int {
	if s.MaxLineBytes > 0 {
		return s.MaxLineBytes
	}
	return DefaultMaxLineBytes
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) loginDelay(fails int) time.Duration {
	d := s.LoginBackoff
	if d <= 0 {
		d = DefaultLoginBackoff
	}
	for i := 1; i < fails && d < maxLoginBackoff; i++ {
		d *= 2
	}
	return min(d, maxLoginBackoff)
}

// Serve accepts connections on l until Shutdown and serves each in its own
// goroutine. The first call records the server's start event. It returns
// ErrServerClosed after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if s.Bank == nil {
		return errors.New("netproto: Server.Bank is nil")
	}
	s.init()
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	if s.started.CompareAndSwap(false, true) {
		_, err := s.Bank.Record(s.ctx, bank.Event{Kind: bank.KindServerStart, Client: s.Bank.ProcessID(),
			Detail: "listening on " + l.Addr().String()})
		if err != nil {
			return fmt.Errorf("record the server start: %w", err)
		}
	}
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept on %s: %w", l.Addr(), err)
		}
		backoff = 0
		s.mu.Lock()
		if s.shutting.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		if len(s.conns) >= s.maxConns() {
			s.mu.Unlock()
			go s.reject(nc)
			continue
		}
		c := newConn(s, nc)
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// reject tells an excess client the server is busy and closes it.
func (s *Server) reject(nc net.Conn) {
	defer s.wg.Done()
	defer nc.Close()
	ts := s.Bank.Clock().Tick()
	s.logf(ts, "send", fmt.Sprintf("send error server_busy to %s (at the limit of %d connections)", nc.RemoteAddr(), s.maxConns()),
		slog.String("code", CodeServerBusy), slog.String("remote", nc.RemoteAddr().String()))
	m := &message{Type: TypeError, Proc: s.Bank.ProcessID(), TS: ts, Code: CodeServerBusy,
		Message: "the bank is serving too many ATMs right now; try again in a moment"}
	b, _ := json.Marshal(m)
	_ = nc.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	_, _ = nc.Write(append(b, '\n'))
}

// Shutdown stops the server gracefully: it closes the listeners, lets each
// connection finish the request in hand, sends it a "bye" and closes it,
// waits for all of them, then records the stop event. If ctx ends first, the
// remaining connections are closed at once and ctx's error is returned. It
// does not close the Bank.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.shutting.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0)) // wake a blocked read
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		s.cancel()
		<-done
	}
	s.stopOnce.Do(func() {
		if s.started.Load() {
			if _, rerr := s.Bank.Record(context.Background(), bank.Event{Kind: bank.KindServerStop, Client: s.Bank.ProcessID(),
				Detail: "graceful shutdown"}); rerr != nil && err == nil {
				err = fmt.Errorf("record the server stop: %w", rerr)
			}
		}
	})
	return err
}

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

// notify queues a push for every session logged in to p.account.
func (s *Server) notify(p pushItem) {
	s.mu.Lock()
	targets := make([]*conn, 0, len(s.sessions[p.account]))
	for c := range s.sessions[p.account] {
		targets = append(targets, c)
	}
	s.mu.Unlock()
	for _, c := range targets {
		c.enqueuePush(p)
	}
}

type pushItem struct {
	account, from, fromHolder string
	amount, balance           bank.Cents
	applyTS                   uint64
}

// conn is one client connection.
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

	peer atomic.Pointer[string] // last process id the client announced

	wmu    sync.Mutex // guards bw and broken
	bw     *bufio.Writer
	broken bool

	pmu     sync.Mutex
	pq      []pushItem
	pushing bool
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 4096),
		remote: nc.RemoteAddr().String()}
	c.peer.Store(&c.remote)
	return c
}

func (c *conn) peerID() string { return *c.peer.Load() }

func (c *conn) serve() {
	s := c.s
	reason := "closed by the client"
	defer func() { c.finish(reason) }()

	ev, err := s.Bank.Record(s.ctx, bank.Event{Kind: bank.KindConnect, Client: c.remote, Detail: "connection from " + c.remote})
	if err != nil {
		c.sendBye(CodeShuttingDown, "the bank is shutting down; try again later")
		reason = "bank unavailable"
		return
	}
	c.send(&message{Type: TypeHello, Proc: s.Bank.ProcessID(), TS: ev.TS, Version: Version,
		MaxLine: s.maxLine(), MaxAmount: int64(s.Bank.MaxAmount()), Message: "connection established"})
	c.flush()

	idle := s.idleTimeout()
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(idle))
		if s.shutting.Load() {
			c.sendBye(CodeShuttingDown, "the bank is shutting down; your ATM can reconnect when it is back")
			reason = "server shutting down"
			return
		}
		line, err := readLine(c.br, s.maxLine(), &c.scratch)
		if err != nil {
			switch {
			case errors.Is(err, errLineTooLong):
				c.protoError(nil, CodeLineTooLong, fmt.Sprintf("a line may hold at most %d bytes; closing the connection", s.maxLine()))
				c.flush()
				reason = "line too long"
			case errors.Is(err, os.ErrDeadlineExceeded) && s.shutting.Load():
				c.sendBye(CodeShuttingDown, "the bank is shutting down; your ATM can reconnect when it is back")
				reason = "server shutting down"
			case errors.Is(err, os.ErrDeadlineExceeded):
				c.protoError(nil, CodeIdleTimeout, fmt.Sprintf("no request for %s; closing the connection", idle))
				c.flush()
				reason = "idle timeout"
			default:
				if !errors.Is(err, net.ErrClosed) && err.Error() != "EOF" {
					reason = err.Error()
				}
			}
			return
		}
		if len(bytes.TrimSpace(line)) > 0 {
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
		_, _ = s.Bank.Record(context.Background(), bank.Event{Kind: bank.KindDisconnect, Account: c.account,
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
	ev, err := s.Bank.Record(context.Background(), bank.Event{Kind: bank.KindDisconnect, Account: c.account,
		Client: c.peerID(), Detail: msg})
	ts := ev.TS
	if err != nil {
		ts = s.Bank.Clock().Tick()
		s.logf(ts, "send", "send bye to "+c.peerID(), slog.String("peer", c.peerID()))
	} else {
		c.byeSent = true
	}
	c.send(&message{Type: TypeBye, Proc: s.Bank.ProcessID(), TS: ts, Code: code, Message: msg})
	c.flush()
}

// send queues m on the connection's buffer.
func (c *conn) send(m *message) {
	b, err := json.Marshal(m)
	if err != nil { // cannot happen with these types; keep the stream valid
		b = []byte(`{"type":"error","code":"internal","message":"reply could not be encoded"}`)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken {
		return
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

// flush writes the buffered replies; false when the connection is broken.
func (c *conn) flush() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
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

// enqueuePush queues p for delivery on c, in order, by one drainer at a time.
func (c *conn) enqueuePush(p pushItem) {
	c.pmu.Lock()
	c.pq = append(c.pq, p)
	start := !c.pushing
	c.pushing = true
	c.pmu.Unlock()
	if start {
		c.s.wg.Add(1) // the caller is a live connection, so the group is not at zero
		go c.drainPushes()
	}
}

func (c *conn) drainPushes() {
	defer c.s.wg.Done()
	for {
		c.pmu.Lock()
		if len(c.pq) == 0 {
			c.pushing = false
			c.pmu.Unlock()
			return
		}
		p := c.pq[0]
		c.pq = c.pq[1:]
		c.pmu.Unlock()
		if !c.s.isSession(p.account, c) {
			continue
		}
		ev, err := c.s.Bank.Record(c.s.ctx, bank.Event{Kind: bank.KindPush, Account: p.account, To: p.from,
			Amount: p.amount, Balance: p.balance, Client: c.peerID(),
			Detail: fmt.Sprintf("transfer applied at %d", p.applyTS)})
		if err != nil {
			continue
		}
		c.send(&message{Type: TypePush, Proc: c.s.Bank.ProcessID(), TS: ev.TS, Account: p.account,
			From: p.from, FromHolder: p.fromHolder, Amount: amountNumber(p.amount), Balance: centsPtr(p.balance),
			ApplyTS: p.applyTS})
		c.flush()
	}
}

// protoError answers a request the bank never saw with an error of the
// server's own. req is nil for a line that could not be parsed.
func (c *conn) protoError(req *message, code, msg string) { c.send(c.ownError(req, code, msg)) }

// ownError builds the error message of protoError, ticking the clock for
// its send and logging it.
func (c *conn) ownError(req *message, code, msg string) *message {
	s := c.s
	ts := s.Bank.Clock().Tick()
	m := &message{Type: TypeError, Proc: s.Bank.ProcessID(), TS: ts, Code: code, Message: msg}
	if req != nil {
		m.ID, m.Op = req.ID, req.Type
	}
	if s.Logger != nil {
		op := m.Op
		if op == "" {
			op = "-"
		}
		s.logf(ts, "send", fmt.Sprintf("send error %s %s to %s%s", code, op, c.peerID(), reqSuffix(m.ID)),
			slog.String("code", code), slog.String("op", m.Op), slog.String("peer", c.peerID()), slog.String("req", m.ID))
	}
	return m
}

func reqSuffix(id string) string {
	if id == "" {
		return ""
	}
	return " req=" + id
}

// handle parses and serves one request line.
func (c *conn) handle(line []byte) {
	s := c.s
	req := new(message)
	if err := json.Unmarshal(line, req); err != nil {
		t := bytes.TrimSpace(line)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			c.protoError(nil, CodeMalformed, "the line is not a JSON object: "+se.Error())
			return
		}
		if t[0] != '{' {
			c.protoError(nil, CodeMalformed, "the line is a JSON "+jsonValueKind(t)+", not an object")
			return
		}
		// A JSON object with a field that cannot hold its value, such as an
		// amount given as text: answered with the request's id and type
		// when those can be read.
		c.protoError(requestHead(t), CodeBadRequest, wrongFieldText(err))
		return
	}
	if req.Proc != "" && req.Proc != c.peerID() {
		p := req.Proc
		if len(p) > 64 {
			p = p[:64]
		}
		c.peer.Store(&p)
	}
	step := s.Bank.Clock().Receive(req.TS)
	recv := step.New
	c.recv = recv
	if s.Logger != nil {
		who := c.account
		if req.Type == OpLogin || req.Type == OpLookup {
			who = req.Account
		}
		what := orDash(who)
		if req.Amount != "" {
			what += " " + string(req.Amount)
		}
		if req.To != "" {
			what += " to " + req.To
		}
		s.logf(recv, "recv", fmt.Sprintf("recv %s %s from %s%s, max(%d,%d)+1", orDash(req.Type), what, c.peerID(),
			reqSuffix(req.ID), step.Old, step.Received),
			slog.String("op", req.Type), slog.String("account", who), slog.String("peer", c.peerID()),
			slog.String("req", req.ID), slog.Uint64("remote_ts", req.TS))
	}
	if req.Type == "" {
		c.protoError(req, CodeBadRequest, `the message has no "type"`)
		return
	}
	if !knownType(req.Type) {
		c.protoError(req, CodeUnknownType, fmt.Sprintf("unknown message type %q; this server speaks protocol version %d", req.Type, Version))
		return
	}
	if req.ID == "" || len(req.ID) > maxRequestID {
		c.protoError(req, bank.Code(bank.ErrInvalidRequestID), `every request needs an "id" of 1 to 128 bytes`)
		return
	}
	meta := bank.Meta{ReqID: req.ID, Client: c.peerID(), ClientTS: req.TS, RecvTS: recv, Source: c.peerID() + "@" + hostOf(c.remote)}
	ctx := s.ctx

	switch req.Type {
	case OpAudit:
		c.audit(req)
		return
	case OpOpenAccount:
		c.openAccount(req, meta)
		return
	case OpLogin:
		c.login(req, meta)
		return
	}
	if c.account == "" {
		c.protoError(req, CodeNotLoggedIn, "log in to an account first")
		return
	}
	if req.Type != OpLookup && req.Account != "" && req.Account != c.account {
		c.protoError(req, CodeForbidden, fmt.Sprintf("this session is logged in to account %s and acts on it only", c.account))
		return
	}
	switch req.Type {
	case OpLogout:
		c.logout(req, meta)
	case OpBalance:
		rc, err := s.Bank.Balance(ctx, meta, c.account)
		c.bankReply(req, rc, err, func(m *message) {
			m.Account, m.Holder, m.Balance = c.account, c.holder, centsPtr(rc.Event.Balance)
		})
	case OpDeposit, OpWithdraw, OpTransfer:
		amount, err := parseAmount(req.Amount)
		if err != nil {
			c.protoError(req, bank.Code(err), err.Error())
			return
		}
		var rc bank.Receipt
		switch req.Type {
		case OpDeposit:
			rc, err = s.Bank.Deposit(ctx, meta, c.account, amount)
		case OpWithdraw:
			rc, err = s.Bank.Withdraw(ctx, meta, c.account, amount)
		case OpTransfer:
			if req.To == "" {
				c.protoError(req, CodeBadRequest, `a transfer needs "to", the recipient's account`)
				return
			}
			rc, err = s.Bank.Transfer(ctx, meta, c.account, req.To, amount)
		}
		c.bankReply(req, rc, err, func(m *message) {
			m.Account, m.Amount, m.Balance = c.account, amountNumber(rc.Event.Amount), centsPtr(rc.Event.Balance)
			if req.Type == OpTransfer {
				m.To, m.ToHolder = rc.Event.To, rc.Event.Detail
			}
		})
		if err == nil && req.Type == OpTransfer && !rc.Duplicate {
			s.notify(pushItem{account: rc.Event.To, from: c.account, fromHolder: c.holder,
				amount: rc.Event.Amount, balance: rc.Event.ToBalance, applyTS: rc.Event.TS})
		}
	case OpLookup:
		if req.Account == "" {
			c.protoError(req, CodeBadRequest, `a lookup needs "account"`)
			return
		}
		rc, err := s.Bank.Lookup(ctx, meta, req.Account)
		c.bankReply(req, rc, err, func(m *message) { m.Account, m.Holder = req.Account, rc.Holder })
	case OpStatement:
		limit := req.Limit
		if limit <= 0 {
			limit = DefaultStatementLimit
		}
		limit = min(limit, MaxStatementLimit)
		page, rc, err := s.Bank.Statement(ctx, meta, c.account, req.Before, limit)
		c.bankReply(req, rc, err, func(m *message) {
			m.Account, m.Balance, m.Entries, m.Next = c.account, centsPtr(rc.Event.Balance), page.Entries, page.Next
			if m.Entries == nil {
				m.Entries = []bank.Event{}
			}
		})
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func knownType(t string) bool {
	switch t {
	case OpLogin, OpLogout, OpBalance, OpDeposit, OpWithdraw, OpTransfer, OpStatement, OpLookup, OpAudit, OpOpenAccount:
		return true
	}
	return false
}

// bankReply sends the outcome of a bank operation with the reply timestamp
// the bank assigned. fill adds the operation's fields to a successful reply.
func (c *conn) bankReply(req *message, rc bank.Receipt, err error, fill func(*message)) {
	s := c.s
	if rc.ReplyTS == 0 { // the bank did not run the operation (closed, or an internal failure)
		if err == nil {
			err = ErrInternal
		}
		code := bank.Code(err)
		msg := "the bank could not process the request; nothing was applied, try again"
		if errors.Is(err, bank.ErrClosed) {
			code, msg = CodeShuttingDown, "the bank is shutting down; nothing was applied, try again later"
		}
		c.protoError(req, code, msg)
		return
	}
	m := &message{Proc: s.Bank.ProcessID(), TS: rc.ReplyTS, ID: req.ID, Op: req.Type,
		RecvTS: rc.Event.RecvTS, ApplyTS: rc.Event.ApplyTS, Duplicate: rc.Duplicate}
	if rc.Duplicate {
		m.RecvTS = c.recv // this request's receive; the first execution's is in its event
	}
	if err != nil {
		m.Type = TypeError
		m.Code = bank.Code(err)
		m.Message = errorMessage(req, err)
		var wp *bank.WrongPINError
		if errors.As(err, &wp) {
			n := wp.AttemptsLeft
			m.AttemptsLeft = &n
		}
		var le *bank.LockedError
		if errors.As(err, &le) {
			m.Until = le.Until
		}
	} else {
		m.Type = TypeReply
		fill(m)
	}
	c.send(m)
}

// errorMessage is the sentence sent with a bank error.
func errorMessage(req *message, err error) string {
	switch {
	case errors.Is(err, bank.ErrAccountNotFound):
		switch req.Type {
		case OpTransfer:
			return fmt.Sprintf("recipient account %s not found; check the number and try again", req.To)
		default:
			return fmt.Sprintf("account %s not found; check the number and try again", req.Account)
		}
	case errors.Is(err, bank.ErrSameAccount):
		return "you cannot transfer to the account you are logged in to; choose another recipient"
	}
	return err.Error()
}

func (c *conn) login(req *message, meta bank.Meta) {
	s := c.s
	if c.account != "" {
		c.protoError(req, CodeAlreadyLoggedIn, fmt.Sprintf("this session is already logged in to account %s; log out first", c.account))
		return
	}
	if now := s.now(); now.Before(c.nextLogin) {
		wait := c.nextLogin.Sub(now).Round(time.Millisecond)
		m := c.ownError(req, CodeTooManyAttempts, fmt.Sprintf("too many failed logins on this connection; wait %s before trying again", wait))
		m.Until = c.nextLogin
		c.send(m)
		return
	}
	rc, err := s.Bank.Authenticate(s.ctx, meta, req.Account, req.PIN)
	if err == nil {
		c.account, c.holder, c.fails, c.nextLogin = req.Account, rc.Holder, 0, time.Time{}
		s.register(c.account, c)
	} else if rc.ReplyTS != 0 {
		c.fails++
		c.nextLogin = s.now().Add(s.loginDelay(c.fails))
	}
	c.bankReply(req, rc, err, func(m *message) {
		m.Account, m.Holder, m.Balance = req.Account, rc.Holder, centsPtr(rc.Event.Balance)
	})
}

func (c *conn) logout(req *message, meta bank.Meta) {
	s := c.s
	account := c.account
	s.unregister(account, c)
	c.account, c.holder = "", ""
	// With a request id, the bank reserves the reply's tick in the record.
	ev, err := s.Bank.Record(s.ctx, bank.Event{Kind: bank.KindLogout, Account: account, ReqID: req.ID,
		Client: meta.Client, ClientTS: meta.ClientTS, RecvTS: meta.RecvTS})
	if err != nil {
		// The session is unbound anyway; the record is what failed.
		c.protoError(req, CodeShuttingDown, "logged out, but the bank is shutting down")
		return
	}
	c.bankReply(req, bank.Receipt{Event: ev, ReplyTS: ev.ReplyTS}, nil, func(m *message) {
		m.Account = account
	})
}

// ownReply sends a reply to an operation the bank did not stamp, ticking
// the clock for the send.
func (c *conn) ownReply(req *message, m *message) {
	s := c.s
	m.Type, m.ID, m.Op, m.Proc = TypeReply, req.ID, req.Type, s.Bank.ProcessID()
	m.TS = s.Bank.Clock().Tick()
	s.logf(m.TS, "send", fmt.Sprintf("send reply %s to %s%s", req.Type, c.peerID(), reqSuffix(req.ID)),
		slog.String("op", req.Type), slog.String("peer", c.peerID()), slog.String("req", req.ID), slog.String("outcome", bank.OutcomeOK))
	c.send(m)
}

func (c *conn) operator(req *message) bool {
	if c.s.OperatorToken == "" || req.Token != c.s.OperatorToken {
		c.protoError(req, CodeForbidden, "operator operations need the server's operator token")
		return false
	}
	return true
}

func (c *conn) audit(req *message) {
	if !c.operator(req) {
		return
	}
	a, err := c.s.Bank.Audit()
	if err != nil {
		c.protoError(req, CodeInternal, "audit failed: "+err.Error())
		return
	}
	m := &message{Total: centsPtr(a.Total), Deposits: centsPtr(a.Deposits), Withdrawals: centsPtr(a.Withdrawals),
		Negative: a.Negative, Accounts: make([]AccountInfo, 0, len(a.Accounts))}
	ok := a.Conserved()
	m.Conserved = &ok
	for _, acct := range a.Accounts {
		m.Accounts = append(m.Accounts, AccountInfo{ID: acct.ID, Name: acct.Name, Balance: acct.Balance})
	}
	c.ownReply(req, m)
}

func (c *conn) openAccount(req *message, meta bank.Meta) {
	if !c.operator(req) {
		return
	}
	rc, err := c.s.Bank.OpenAccount(c.s.ctx, meta, req.Account, req.Name, req.PIN)
	c.bankReply(req, rc, err, func(m *message) {
		m.Account, m.Holder, m.Balance = req.Account, rc.Holder, centsPtr(0)
	})
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
