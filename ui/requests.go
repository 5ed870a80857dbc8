package ui

// The requests to the bank and its answers: the calls, their results, an
// operation whose outcome is unknown, and the end of a session.

import (
	"context"
	"errors"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank/money"
	"atm/bank/outcome"
	"atm/ui/i18n"

	tea "charm.land/bubbletea/v2"
)

// Answers of the bank.
type (
	loginResultMsg struct {
		account string
		reply   client.Reply
		err     error
	}
	opResultMsg struct {
		op       string
		amount   money.Cents
		to       string
		toHolder string
		reply    client.Reply
		err      error
	}
	lookupResultMsg struct {
		account string
		reply   client.Reply
		err     error
	}
	statementResultMsg struct {
		reply client.Reply
		err   error
	}
	logoutResultMsg struct{ err error }
	// resolveResultMsg is what the bank says of a request whose outcome
	// was unknown (err matches client.ErrOutcomeUnknown while it still is).
	resolveResultMsg struct {
		gen   int
		id    string
		reply client.Reply
		err   error
	}
)

// pendingOp is a money operation whose outcome is not known yet.
type pendingOp struct {
	op       string
	amount   money.Cents
	to       string
	toHolder string
	id       string // the request id the client keeps
	checks   int    // Resolve calls so far
}

// resolveWait bounds one Resolve call; the ATM calls again while the
// outcome is still unknown.
const resolveWait = 10 * time.Second

// resolve asks the client for the outcome of the pending operation.
func (m *Model) resolve() tea.Cmd {
	if m.pending == nil || m.client == nil {
		return nil
	}
	m.pending.checks++
	c, gen, id := m.client, m.gen, m.pending.id
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), resolveWait)
		defer cancel()
		r, err := c.Resolve(ctx, id)
		return resolveResultMsg{gen: gen, id: id, reply: r, err: err}
	}
}

// opNoun names an operation in a sentence: "withdrawal of R$ 25,00".
func opNoun(tr *i18n.Printer, op string, amount money.Cents, to string) string {
	switch op {
	case opDeposit:
		return tr.T(i18n.NounDeposit, amount.String())
	case opWithdraw:
		return tr.T(i18n.NounWithdraw, amount.String())
	case opTransfer:
		return tr.T(i18n.NounTransfer, amount.String(), to)
	}
	return op
}

// pendingBlock explains why another operation cannot start.
func (m *Model) pendingBlock() string {
	p := m.pending
	return m.c.tr.T(i18n.PendingBlock, opNoun(m.c.tr, p.op, p.amount, p.to))
}

// call runs a client call as a command and marks the ATM busy until the
// answer arrives.
func (m *Model) call(what string, fn func(ctx context.Context, c Client) tea.Msg) tea.Cmd {
	m.busy = what
	c := m.client
	return tea.Batch(m.spinner.Tick, func() tea.Msg {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		return fn(ctx, c)
	})
}

func (m *Model) fetchStatement(before uint64) tea.Cmd {
	c := m.client
	return tea.Batch(m.spinner.Tick, func() tea.Msg {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r, err := c.Statement(ctx, before, statementPageSize)
		return statementResultMsg{reply: r, err: err}
	})
}

// handleResult applies the bank's answers.
func (m *Model) handleResult(msg tea.Msg) (tea.Cmd, bool) {
	switch msg := msg.(type) {
	case loginResultMsg:
		m.busy = ""
		if msg.err != nil {
			return m.login.loginError(msg.account, msg.err), true
		}
		m.relogin = false
		m.sess = session{account: msg.account, holder: msg.reply.Holder}
		if msg.reply.Account != "" {
			m.sess.account = msg.reply.Account
		}
		if msg.reply.Balance != 0 || msg.reply.Op == "login" {
			m.sess.balance, m.sess.hasBalance = msg.reply.Balance, true
		}
		m.login.notice = ""
		m.menu.cursor = 0
		m.page = pageMenu
		return nil, true
	case opResultMsg:
		m.busy = ""
		if msg.err == nil {
			m.sess.balance, m.sess.hasBalance = msg.reply.Balance, true
		}
		m.receipt.op, m.receipt.reply, m.receipt.err = msg.op, msg.reply, msg.err
		m.receipt.amount, m.receipt.to, m.receipt.toHolder = msg.amount, msg.to, msg.toHolder
		m.receipt.note, m.receipt.pending = "", false
		if m.relogin {
			m.receipt.note = m.c.tr.T(i18n.NoteResent)
		}
		m.page = pageReceipt
		var ue *client.OutcomeUnknownError
		if errors.As(msg.err, &ue) {
			// Not a refusal: the bank may have applied it. Ask until known.
			m.pending = &pendingOp{op: msg.op, amount: msg.amount, to: msg.to, toHolder: msg.toHolder, id: ue.ID}
			m.receipt.pending = true
			return tea.Batch(m.resolve(), m.spinner.Tick), true
		}
		return nil, true
	case resolveResultMsg:
		return m.resolved(msg), true
	case lookupResultMsg:
		m.busy = ""
		if msg.err != nil {
			text := failureText(m.c.tr, opTransfer, msg.err, 0, msg.account)
			if errors.Is(msg.err, outcome.ErrAccountNotFound) {
				text = m.c.tr.T(i18n.TransferNoAccount, msg.account)
			}
			return m.transfer.lookupFailed(text), true
		}
		acc := msg.reply.Account
		if acc == "" {
			acc = msg.account
		}
		return m.transfer.found(acc, msg.reply.Holder), true
	case statementResultMsg:
		if msg.err != nil {
			m.statement.failed(failureText(m.c.tr, "statement", msg.err, 0, ""))
			return nil, true
		}
		// The statement comes with the balance as it stands now.
		m.sess.balance, m.sess.hasBalance = msg.reply.Balance, true
		m.statement.loaded(msg.reply.Entries, msg.reply.Next, msg.reply.Archived)
		return nil, true
	case logoutResultMsg:
		return nil, true
	}
	return nil, false
}

// resolved applies what the bank said of the pending operation.
func (m *Model) resolved(msg resolveResultMsg) tea.Cmd {
	p := m.pending
	if msg.gen != m.gen || p == nil || msg.id != p.id {
		return nil
	}
	if errors.Is(msg.err, client.ErrOutcomeUnknown) && errors.Is(msg.err, context.DeadlineExceeded) {
		return m.resolve() // no answer yet: keep asking
	}
	m.pending = nil
	m.menu.notice = ""
	tr := m.c.tr
	what := opNoun(tr, p.op, p.amount, p.to)
	var pe *wire.Error
	var mark, text string
	bad := false
	switch {
	case msg.err == nil:
		m.sess.balance, m.sess.hasBalance = msg.reply.Balance, true
		mark, text = "✓ ", tr.T(i18n.ResolvedDone, what)
	case errors.As(msg.err, &pe):
		mark, text = "✗ ", tr.T(i18n.ResolvedRefused, what)
	default:
		mark, text = "⚠ ", tr.T(i18n.ResolvedUnknown, what)
		bad = true
	}
	cmd := m.setBanner(mark+text, bad, 10*time.Second)
	if !m.sess.loggedIn() {
		m.login.notice = text
		if bad {
			m.login.notice = tr.T(i18n.UnknownCheck, what)
		}
		return cmd
	}
	r := m.receipt
	r.op, r.reply, r.err, r.pending = p.op, msg.reply, msg.err, false
	r.amount, r.to, r.toHolder = p.amount, p.to, p.toHolder
	r.note = ""
	if !bad {
		r.note = tr.T(i18n.NoteAsked)
	}
	if m.busy == "" {
		m.page = pageReceipt
	}
	return cmd
}

// endSession logs out (the client would otherwise keep the session) and
// returns to the login screen with a message.
func (m *Model) endSession(notice string) tea.Cmd { return m.endSessionWhy(notice, "") }

// endSessionAuto is endSession when the ATM ends the session by itself
// (the connection came back): the timeline labels its logout.
func (m *Model) endSessionAuto(notice string) tea.Cmd {
	return m.endSessionWhy(notice, reasonATMLogout)
}

func (m *Model) endSessionWhy(notice, reason string) tea.Cmd {
	m.relogin = false
	m.sess = session{}
	m.login.notice = notice
	cmd := m.goLogin()
	if m.client == nil {
		return cmd
	}
	c := m.client
	return tea.Batch(cmd, func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if reason != "" {
			ctx = client.WithReason(ctx, reason)
		}
		_, err := c.Logout(ctx)
		return logoutResultMsg{err: err}
	})
}
