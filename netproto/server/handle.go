package server

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/lamport"
	"atm/bank/money"
	"atm/bank/outcome"
)

// handle serves one request line: the receive event first, then exactly one
// answer, a send.
func (c *conn) handle(line []byte) {
	d := decodeRequest(line)
	req := d.req
	tsErr := c.checkTS(d)
	c.receive(req, d, tsErr == nil && d.hasTS)
	if !c.checkRequest(d, tsErr) {
		return
	}
	seen, why := checkSeen(req.Seen)
	if why != "" {
		c.protoError(req, wire.CodeBadRequest, why)
		return
	}
	meta := bank.Meta{ReqID: req.ID, Client: c.peerID(), ClientTS: req.TS, RecvTS: c.recv,
		Source: c.peerID() + "@" + hostOf(c.remote), Seen: seen}
	op := requestOps[req.Type]
	if op.session && !c.checkSession(req, op.otherAccount) {
		return
	}
	op.run(c, req, meta)
}

// requestOp is how the server runs one type of request, once the request
// is received and checked.
type requestOp struct {
	run func(c *conn, req *wire.Message, meta bank.Meta)
	// session: only a session logged in to an account may send it, and
	// about that account only, unless otherAccount (a lookup names the
	// account it looks up).
	session, otherAccount bool
}

// requestOps are the types of request the server runs.
var requestOps = map[string]requestOp{
	wire.OpAudit:       {run: (*conn).audit},
	wire.OpLog:         {run: func(c *conn, req *wire.Message, _ bank.Meta) { c.readLog(req) }},
	wire.OpOpenAccount: {run: (*conn).openAccount},
	wire.OpLogin:       {run: (*conn).login},
	wire.OpLogout:      {run: (*conn).logout, session: true},
	wire.OpBalance:     {run: (*conn).balance, session: true},
	wire.OpDeposit:     {run: (*conn).change, session: true},
	wire.OpWithdraw:    {run: (*conn).change, session: true},
	wire.OpTransfer:    {run: (*conn).change, session: true},
	wire.OpLookup:      {run: (*conn).lookup, session: true, otherAccount: true},
	wire.OpStatement:   {run: (*conn).statement, session: true},
}

// checkRequest answers a request that cannot run and returns false: a line
// the decoder refused, a timestamp that cannot be observed (tsErr), a bad
// process id, a missing or unknown type, a bad request id.
func (c *conn) checkRequest(d decoded, tsErr error) bool {
	req := d.req
	switch {
	case d.fault != nil:
		c.protoError(faultEcho(req), d.fault.code, d.fault.msg)
	case tsErr != nil:
		c.protoError(req, wire.CodeInvalidTimestamp, tsErr.Error())
	case req.Proc != "" && !wire.ValidProc(req.Proc):
		c.protoError(req, wire.CodeBadRequest, `"proc" must be 1 to 64 letters, digits or . _ : @ -`)
	case req.Type == "":
		c.protoError(req, wire.CodeBadRequest, `the message has no "type"`)
	case !knownType(req.Type):
		echo := &wire.Message{ID: echoID(req.ID)}
		if len(req.Type) <= 64 {
			echo.Type = req.Type
		}
		c.protoError(echo, wire.CodeUnknownType,
			fmt.Sprintf("unknown message type %s; this server speaks protocol version %d", quoteShort(req.Type), wire.Version))
	case !wire.ValidRequestID(req.ID):
		c.protoError(&wire.Message{Type: req.Type}, outcome.Code(outcome.ErrInvalidRequestID),
			`every request needs an "id" of 1 to 128 printable ASCII characters without spaces`)
	default:
		return true
	}
	return false
}

// checkSession answers a request of a session's own when the connection
// is not logged in, or when it names another account than the session's
// (unless otherAccount), and returns false.
func (c *conn) checkSession(req *wire.Message, otherAccount bool) bool {
	if c.account == "" {
		c.protoError(req, wire.CodeNotLoggedIn, "log in to an account first")
		return false
	}
	if !otherAccount && req.Account != "" && req.Account != c.account {
		c.protoError(req, wire.CodeForbidden, fmt.Sprintf("this session is logged in to account %s and acts on it only", c.account))
		return false
	}
	return true
}

// balance answers the balance of the session's account.
func (c *conn) balance(req *wire.Message, meta bank.Meta) {
	sl := c.reserve()
	defer c.settle(sl, nil, false)
	rc, err := c.s.Ledger.Balance(c.s.ctx, meta, c.account)
	c.bankReply(sl, req, rc, err, func(m *wire.Message) {
		m.Account, m.Holder, m.Balance = c.account, c.holder, wire.CentsPtr(rc.Event.Balance)
	})
}

// change runs a deposit, a withdrawal or a transfer from the session's
// account, and pushes it to the other sessions it concerns.
func (c *conn) change(req *wire.Message, meta bank.Meta) {
	amount, ok := c.checkChange(req)
	if !ok {
		return
	}
	sl := c.reserve()
	defer c.settle(sl, nil, false)
	rc, err := c.applyChange(req, meta, amount)
	c.bankReply(sl, req, rc, err, func(m *wire.Message) {
		m.Account, m.Amount, m.Balance = c.account, wire.AmountOf(rc.Event.Amount), wire.CentsPtr(rc.Event.Balance)
		if req.Type == wire.OpTransfer {
			m.To, m.ToHolder = rc.Event.To, rc.Event.Detail
		}
	})
	if err == nil && !rc.Duplicate {
		c.notifyChange(req.Type, rc.Event)
	}
}

// checkChange reads the amount of a change and checks a transfer's
// recipient; it answers a mistake and returns false.
func (c *conn) checkChange(req *wire.Message) (money.Cents, bool) {
	amount, err := req.Amount.Cents()
	switch {
	case err != nil:
		c.protoError(req, outcome.Code(err), err.Error())
	case req.Type != wire.OpTransfer:
		return amount, true
	case req.To == "":
		c.protoError(req, wire.CodeBadRequest, `a transfer needs "to", the recipient's account`)
	case !money.ValidAccountID(req.To):
		c.protoError(req, outcome.Code(outcome.ErrInvalidAccountID), `"to" must be an account number of 1 to 20 digits`)
	default:
		return amount, true
	}
	return 0, false
}

// applyChange hands a change to the ledger.
func (c *conn) applyChange(req *wire.Message, meta bank.Meta, amount money.Cents) (bank.Receipt, error) {
	l, ctx := c.s.Ledger, c.s.ctx
	switch req.Type {
	case wire.OpDeposit:
		return l.Deposit(ctx, meta, c.account, amount)
	case wire.OpWithdraw:
		return l.Withdraw(ctx, meta, c.account, amount)
	default:
		return l.Transfer(ctx, meta, c.account, req.To, amount)
	}
}

// lookup answers the holder of another account, for a transfer to it.
func (c *conn) lookup(req *wire.Message, meta bank.Meta) {
	if req.Account == "" {
		c.protoError(req, wire.CodeBadRequest, `a lookup needs "account"`)
		return
	}
	if !money.ValidAccountID(req.Account) {
		c.protoError(req, outcome.Code(outcome.ErrInvalidAccountID), `"account" must be an account number of 1 to 20 digits`)
		return
	}
	sl := c.reserve()
	defer c.settle(sl, nil, false)
	rc, err := c.s.Ledger.Lookup(c.s.ctx, meta, req.Account)
	c.bankReply(sl, req, rc, err, func(m *wire.Message) { m.Account, m.Holder = req.Account, rc.Holder })
}

// statement answers a page of the session's account's statement.
func (c *conn) statement(req *wire.Message, meta bank.Meta) {
	limit := req.Limit
	if limit <= 0 {
		limit = wire.DefaultStatementLimit
	}
	limit = min(limit, wire.MaxStatementLimit)
	sl := c.reserve()
	defer c.settle(sl, nil, false)
	page, rc, err := c.s.Ledger.Statement(c.s.ctx, meta, c.account, req.Before, limit)
	c.bankReply(sl, req, rc, err, func(m *wire.Message) {
		m.Account, m.Balance, m.Entries, m.Next = c.account, wire.CentsPtr(rc.Event.Balance), entriesOf(page.Entries), wire.CursorOf(page.Next)
		m.Archived = page.Archived
	})
}

// notifyChange pushes a change this session applied to every other session
// logged in to an account whose balance it changed: the recipient's of a
// transfer, and the session's own account.
func (c *conn) notifyChange(op string, ev bank.Event) {
	s := c.s
	own := pushItem{account: c.account, amount: ev.Amount, balance: ev.Balance, applyTS: ev.TS}
	switch op {
	case wire.OpDeposit:
		own.kind = wire.PushDeposit
	case wire.OpWithdraw:
		own.kind = wire.PushWithdraw
	case wire.OpTransfer:
		s.notify(pushItem{kind: wire.PushTransferIn, account: ev.To, from: c.account, fromHolder: c.holder,
			amount: ev.Amount, balance: ev.ToBalance, applyTS: ev.TS}, nil)
		own.kind, own.to, own.toHolder = wire.PushTransferOut, ev.To, ev.Detail
	default:
		return
	}
	s.notify(own, c)
}

// checkTS says why the request's timestamp cannot be observed, or nil.
func (c *conn) checkTS(d decoded) error {
	if !d.hasTS {
		return nil
	}
	if d.ts > wire.MaxTS {
		return fmt.Errorf(`"ts" must be a whole number from 0 to %d; %d is out of range`, wire.MaxTS, d.ts)
	}
	limit, who := uint64(MaxJump), "a session"
	if c.account == "" {
		limit, who = MaxJumpLoggedOut, "a connection that has not logged in"
	}
	if now := c.s.Ledger.Clock().Now(); d.ts > now && d.ts-now > limit {
		return fmt.Errorf(`"ts" %d is more than %d above the bank's clock (%d), the most %s may jump it`, d.ts, limit, now, who)
	}
	return nil
}

// receive is the receive event of a request: the clock observes the
// request's timestamp if it is valid, and ticks past its own value if not.
func (c *conn) receive(req *wire.Message, d decoded, observe bool) {
	s := c.s
	var step lamport.Change
	if observe {
		step = s.Ledger.Clock().Receive(d.ts)
	} else {
		step = s.Ledger.Clock().Receive(0)
	}
	c.recv = step.New
	if req.Proc != "" && req.Proc != c.peerID() && wire.ValidProc(req.Proc) {
		p := req.Proc
		c.peer.Store(&p)
	}
	if s.Logger == nil {
		return
	}
	rule := fmt.Sprintf("max(%d,%d)+1", step.Old, step.Received)
	if !observe {
		rule = fmt.Sprintf("%d+1, its timestamp not observed", step.Old)
	}
	if d.fault != nil {
		s.logf(step.New, "recv", fmt.Sprintf("recv a refused line from %s, %s", c.peerID(), rule),
			slog.String("peer", c.peerID()), slog.Uint64("remote_ts", d.ts))
		return
	}
	who := c.account
	if req.Type == wire.OpLogin || req.Type == wire.OpLookup {
		who = printable(req.Account, money.ValidAccountID)
	}
	what := orDash(who)
	if req.Amount != "" {
		what += " " + string(req.Amount)
	}
	if req.To != "" {
		what += " to " + printable(req.To, money.ValidAccountID)
	}
	s.logf(step.New, "recv", fmt.Sprintf("recv %s %s from %s%s, %s", orDash(printable(req.Type, knownType)), what, c.peerID(),
		reqSuffix(printable(req.ID, wire.ValidRequestID)), rule),
		slog.String("op", req.Type), slog.String("account", who), slog.String("peer", c.peerID()),
		slog.String("req", req.ID), slog.Uint64("remote_ts", d.ts))
}

// printable is a client's string as the log prints it: as is when it
// passes its check, quoted and cut otherwise, so that it cannot pose as
// anything else in the line.
func printable(s string, ok func(string) bool) string {
	if s == "" || ok(s) {
		return s
	}
	return quoteShort(s)
}

// faultEcho is what an error about a faulty line echoes: the id and type,
// when they were read safely.
func faultEcho(req *wire.Message) *wire.Message {
	if req == nil || (req.ID == "" && req.Type == "") {
		return nil
	}
	return &wire.Message{ID: echoID(req.ID), Type: req.Type}
}

func echoID(id string) string {
	if wire.ValidRequestID(id) {
		return id
	}
	return ""
}

// quoteShort quotes a client's string for a message, cut to 64 bytes.
func quoteShort(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q…", s[:64])
	}
	return fmt.Sprintf("%q", s)
}

// knownType reports whether t is a type of request the server runs.
func knownType(t string) bool {
	_, ok := requestOps[t]
	return ok
}

// bankReply sends the outcome of a bank operation with the reply timestamp
// the bank assigned. fill adds the operation's fields to a successful reply.
func (c *conn) bankReply(sl *slot, req *wire.Message, rc bank.Receipt, err error, fill func(*wire.Message)) {
	if c.s.onReply != nil {
		c.s.onReply(req)
	}
	if rc.ReplyTS == 0 { // the bank did not run the operation (closed, or an internal failure)
		c.notRun(sl, req, err)
		return
	}
	m := &wire.Message{Proc: c.s.Ledger.ProcessID(), TS: rc.ReplyTS, ID: req.ID, Op: req.Type,
		RecvTS: rc.Event.RecvTS, ApplyTS: rc.Event.ApplyTS, Duplicate: rc.Duplicate}
	if rc.Duplicate {
		m.RecvTS = c.recv // this request's receive; the first execution's is in its event
	}
	if err != nil {
		fillError(m, req, err)
	} else {
		m.Type = wire.TypeReply
		fill(m)
	}
	c.settle(sl, &outMsg{m: m}, true)
}

// fillError makes m the bank's refusal of req.
func fillError(m *wire.Message, req *wire.Message, err error) {
	m.Type = wire.TypeError
	m.Code = outcome.Code(err)
	m.Message = errorMessage(req, err)
	var wp *outcome.WrongPINError
	if errors.As(err, &wp) {
		n := wp.AttemptsLeft
		m.AttemptsLeft = &n
	}
	var le *outcome.LockedError
	if errors.As(err, &le) {
		m.Until = le.Until
	}
}

// notRun answers a request the bank did not run, failing with err (nil: an
// internal failure).
func (c *conn) notRun(sl *slot, req *wire.Message, err error) {
	if err == nil {
		err = wire.ErrInternal
	}
	if p, ok := errors.AsType[*bank.PanicError](err); ok {
		// The bank's rules panicked on this request: nothing of it was
		// applied, and the fault is the server's to report.
		c.s.logFault(fmt.Sprintf("panic applying %s for %s: %v", req.Type, c.peerID(), p.Value), p.Value, p.Stack,
			slog.String("peer", c.peerID()))
	}
	if errors.Is(err, bank.ErrOutcomeUnknown) && c.s.shutting.Load() {
		// Stopped under the ledger: no answer would be true. The
		// connection closes (the shutdown closes it anyway); the client
		// holds the request as unknown and resends it with the same id.
		c.settle(sl, nil, false)
		c.closeAfterFlush()
		return
	}
	code, msg := c.notRunError(req, err)
	c.settle(sl, nil, false)
	c.protoError(req, code, msg)
}

// notRunError is the error code and message of a request the bank did not
// run.
func (c *conn) notRunError(req *wire.Message, err error) (code, msg string) {
	switch {
	case c.s.shutting.Load() && errors.Is(err, outcome.ErrClosed):
		return wire.CodeShuttingDown, "the bank is shutting down; nothing was applied, try again later"
	case errors.Is(err, bank.ErrOutcomeUnknown) && !changesMoney(req.Type):
		// A read or a login whose log record the store did not
		// confirm: no money can have moved, and asking again is safe.
		return outcome.Code(outcome.ErrClosed), "the bank cannot reach its store right now; try again"
	case errors.Is(err, bank.ErrOutcomeUnknown):
		// The store did not confirm a commit that was sent (an etcd
		// cluster losing its quorum): it may still land. Saying so is
		// the only true answer; the request id makes a retry safe.
		return outcome.Code(outcome.ErrClosed), "the bank could not confirm this request with its store: it may or may not have been applied; send it again with the same request id (the bank applies an id once)"
	case errors.Is(err, outcome.ErrClosed):
		// The server is up but its ledger is not: a store it cannot
		// reach (an etcd cluster without quorum) before anything was
		// sent to it. The request id makes a retry safe.
		return outcome.Code(outcome.ErrClosed), "the bank cannot reach its store right now; nothing was applied, try again with the same request id"
	}
	return outcome.Code(err), "the bank could not process the request; nothing was applied, try again"
}

// errorMessage is the sentence sent with a bank error.
func errorMessage(req *wire.Message, err error) string {
	switch {
	case errors.Is(err, outcome.ErrAccountNotFound):
		switch req.Type {
		case wire.OpTransfer:
			return fmt.Sprintf("recipient account %s not found; check the number and try again", req.To)
		default:
			return fmt.Sprintf("account %s not found; check the number and try again", req.Account)
		}
	case errors.Is(err, outcome.ErrSameAccount):
		return "you cannot transfer to the account you are logged in to; choose another recipient"
	}
	return err.Error()
}

func (c *conn) login(req *wire.Message, meta bank.Meta) {
	s := c.s
	if c.account != "" {
		c.protoError(req, wire.CodeAlreadyLoggedIn, fmt.Sprintf("this session is already logged in to account %s; log out first", c.account))
		return
	}
	if now := s.now(); now.Before(c.nextLogin) {
		wait := max(time.Second, c.nextLogin.Sub(now).Round(time.Second))
		m := c.ownError(req, wire.CodeTooManyAttempts, fmt.Sprintf("too many failed logins on this connection; try again in %s", wait))
		m.Until = c.nextLogin
		c.sendOwn(m)
		return
	}
	sl := c.reserve()
	defer c.settle(sl, nil, false)
	rc, err := s.Ledger.Authenticate(s.ctx, meta, req.Account, req.PIN)
	if err == nil {
		c.account, c.holder, c.fails, c.nextLogin = req.Account, rc.Holder, 0, time.Time{}
		s.register(c.account, c)
	} else if rc.ReplyTS != 0 {
		c.fails++
		c.nextLogin = s.now().Add(s.loginDelay(c.fails))
	}
	c.bankReply(sl, req, rc, err, func(m *wire.Message) {
		m.Account, m.Holder, m.Balance = req.Account, rc.Holder, wire.CentsPtr(rc.Event.Balance)
	})
}

func (c *conn) logout(req *wire.Message, meta bank.Meta) {
	s := c.s
	account := c.account
	var sl *slot
	ev, err := func() (bank.Event, error) {
		c.smu.Lock()
		defer c.smu.Unlock()
		s.unregister(account, c)
		c.account, c.holder = "", ""
		sl = c.reserve()
		// With a request id, the bank reserves the reply's tick in the record.
		return s.Ledger.Record(s.ctx, bank.Event{Kind: bank.KindLogout, Account: account, ReqID: req.ID,
			Client: meta.Client, ClientTS: meta.ClientTS, RecvTS: meta.RecvTS, Seen: meta.Seen})
	}()
	defer c.settle(sl, nil, false)
	if err != nil {
		// The session is unbound anyway; the record is what failed.
		c.settle(sl, nil, false)
		c.protoError(req, wire.CodeShuttingDown, "logged out, but the bank is shutting down")
		return
	}
	c.bankReply(sl, req, bank.Receipt{Event: ev, ReplyTS: ev.ReplyTS}, nil, func(m *wire.Message) {
		m.Account = account
	})
}

// operator reports whether req carries the server's operator token, and
// answers forbidden if not.
func (c *conn) operator(req *wire.Message) bool {
	tok := c.s.OperatorToken
	if tok == "" || subtle.ConstantTimeCompare([]byte(req.Token), []byte(tok)) != 1 {
		c.protoError(req, wire.CodeForbidden, "operator operations need the server's operator token")
		return false
	}
	return true
}

// audit reads every account in one consistent read, then records the audit
// in the log, which gives it an apply event and reserves the reply's tick.
func (c *conn) audit(req *wire.Message, meta bank.Meta) {
	if !c.operator(req) {
		return
	}
	s := c.s
	a, err := s.Ledger.Audit(s.ctx)
	if err != nil {
		c.protoError(req, wire.CodeInternal, "the audit could not read the ledger; try again")
		return
	}
	sl := c.reserve()
	defer c.settle(sl, nil, false)
	ev, err := s.Ledger.Record(s.ctx, bank.Event{Kind: bank.KindAudit, ReqID: req.ID, Client: meta.Client,
		ClientTS: meta.ClientTS, RecvTS: meta.RecvTS, Seen: meta.Seen, Balance: a.Total,
		Detail: fmt.Sprintf("%d accounts", len(a.Accounts))})
	if err != nil {
		c.settle(sl, nil, false)
		c.protoError(req, wire.CodeShuttingDown, "the bank is shutting down; try again later")
		return
	}
	c.bankReply(sl, req, bank.Receipt{Event: ev, ReplyTS: ev.ReplyTS}, nil, func(m *wire.Message) {
		m.Total, m.Deposits, m.Withdrawals = wire.CentsPtr(a.Total), wire.CentsPtr(a.Deposits), wire.CentsPtr(a.Withdrawals)
		m.Negative, m.Accounts = a.Negative, make([]wire.AccountInfo, 0, len(a.Accounts))
		ok := a.Conserved()
		m.Conserved = &ok
		for _, acct := range a.Accounts {
			m.Accounts = append(m.Accounts, wire.AccountInfo{ID: acct.ID, Name: acct.Name, Balance: acct.Balance})
		}
	})
}

// readLog answers the operator's log read: a page of the event log after a
// cursor. The read is an apply event of its own (a tick), not recorded.
// With follow, the reply says so and a subscription sends the following
// pages as they commit (follow.go). Any log request first ends the
// connection's subscription: one per connection.
func (c *conn) readLog(req *wire.Message) {
	c.endFollow()
	if !c.operator(req) {
		return
	}
	s := c.s
	limit := req.Limit
	if limit <= 0 {
		limit = wire.DefaultLogLimit
	}
	limit = min(limit, wire.MaxLogLimit)
	if len(req.After) > wire.MaxCursor {
		c.protoError(req, wire.CodeBadRequest, fmt.Sprintf(`"after" is longer than %d bytes: send back the "next" of a log reply as it is`, wire.MaxCursor))
		return
	}
	events, next, err := s.Ledger.EventsAfter(s.ctx, bank.Cursor(req.After), limit)
	if errors.Is(err, bank.ErrBadCursor) {
		c.protoError(req, wire.CodeBadRequest, `"after" is not a cursor of this bank's log: send 0 to read from the start, or the "next" of a log reply as it is`)
		return
	}
	if err != nil {
		c.protoError(req, wire.CodeInternal, "the event log could not be read: "+err.Error())
		return
	}
	apply := s.Ledger.Clock().Tick()
	what := "read"
	if req.Follow {
		what = "follow"
	}
	s.logf(apply, "apply", fmt.Sprintf("%s the log after %s for %s: %d events", what, cursorText(req.After), c.peerID(), len(events)),
		slog.String("op", wire.OpLog), slog.String("peer", c.peerID()), slog.String("req", req.ID))
	c.sendOwn(&wire.Message{Type: wire.TypeReply, ID: req.ID, Op: req.Type, Proc: s.Ledger.ProcessID(),
		RecvTS: c.recv, ApplyTS: apply, Entries: entriesOf(events), Next: wire.Cursor(next), Follow: req.Follow})
	if req.Follow {
		c.follow(req.ID, limit, next)
	}
}

// cursorText names a log cursor in the server's own log lines.
func cursorText(c wire.Cursor) string {
	if c == "" {
		return "the start"
	}
	if _, ok := c.Uint(); ok {
		return "L=" + string(c)
	}
	return EscapeControl(strconv.Quote(string(c)))
}

func (c *conn) openAccount(req *wire.Message, meta bank.Meta) {
	if !c.operator(req) {
		return
	}
	sl := c.reserve()
	defer c.settle(sl, nil, false)
	rc, err := c.s.Ledger.OpenAccount(c.s.ctx, meta, req.Account, req.Name, req.PIN)
	c.bankReply(sl, req, rc, err, func(m *wire.Message) {
		m.Account, m.Holder, m.Balance = req.Account, rc.Holder, wire.CentsPtr(0)
	})
}

// checkSeen validates the receive reports of a request: at most
// wire.MaxSeen, each a message timestamp and a receive after it, both in
// range. It returns them for the ledger, or why they are refused.
func checkSeen(in []wire.Seen) ([]bank.Seen, string) {
	if len(in) == 0 {
		return nil, ""
	}
	if len(in) > wire.MaxSeen {
		return nil, fmt.Sprintf(`"seen" may report at most %d receives, not %d`, wire.MaxSeen, len(in))
	}
	out := make([]bank.Seen, len(in))
	for i, r := range in {
		if r.TS == 0 || r.TS > wire.MaxTS || r.At <= r.TS || r.At > wire.MaxTS {
			return nil, fmt.Sprintf(`"seen" entry %d is not a receive: "at" must be above "ts", both from 1 to %d`, i, wire.MaxTS)
		}
		out[i] = bank.Seen{TS: r.TS, At: r.At}
	}
	return out, ""
}

// changesMoney reports whether a request of type op may change money or
// accounts, so that an unconfirmed one may have been applied.
func changesMoney(op string) bool {
	switch op {
	case wire.OpDeposit, wire.OpWithdraw, wire.OpTransfer, wire.OpOpenAccount:
		return true
	}
	return false
}
