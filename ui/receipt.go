package ui

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank/money"
	"atm/bank/outcome"
	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// receiptPage is shown after every operation: what happened, the new
// balance, and the Lamport timestamps of the request.
type receiptPage struct {
	base
	clockPanel *clockPanel
	op         string // "balance", "deposit", "withdraw", "transfer"
	reply      client.Reply
	err        error
	// What was asked, for the failure text.
	amount   money.Cents
	to       string
	toHolder string
	note     string // e.g. the connection dropped during the request
	// pending: the outcome is unknown (err matches
	// client.ErrOutcomeUnknown) and the ATM is asking the bank.
	pending bool
}

func (p *receiptPage) Typing() bool { return false }
func (p *receiptPage) applyStyles() {}

func (p *receiptPage) Help() []key.Binding {
	k := p.c.keys
	return []key.Binding{k.Dismiss, k.Quit}
}

func (p *receiptPage) Update(msg tea.Msg) (intent, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, p.c.keys.Dismiss) {
		return backMsg{}, nil
	}
	return nil, nil
}

var opTitles = map[string][3]i18n.Key{ // done, refused by the bank, failed before the bank
	"balance":  {i18n.BalanceDone, i18n.BalanceUnavailable, i18n.BalanceUnavailable},
	opDeposit:  {i18n.DepositDone, i18n.DepositRefused, i18n.DepositNotDone},
	opWithdraw: {i18n.WithdrawDone, i18n.WithdrawRefused, i18n.WithdrawNotDone},
	opTransfer: {i18n.TransferDone, i18n.TransferRefused, i18n.TransferNotDone},
}

// failureText explains a failed operation: the bank's refusal, or why the
// bank could not be asked.
func failureText(tr *i18n.Printer, op string, err error, amount money.Cents, to string) string {
	switch {
	case errors.Is(err, client.ErrOutcomeUnknown):
		return tr.T(i18n.FailUnknown, unknownCause(tr, err))
	case errors.Is(err, context.DeadlineExceeded):
		return tr.T(i18n.FailTimeout)
	case errors.Is(err, client.ErrConnectionLost), errors.Is(err, client.ErrClientClosed):
		return tr.T(i18n.FailLost)
	case errors.Is(err, client.ErrNotPending):
		return tr.T(i18n.FailNotPending)
	}
	switch {
	case errors.Is(err, outcome.ErrInsufficientFunds):
		return tr.T(i18n.FailFunds, amount.String())
	case errors.Is(err, outcome.ErrLimitExceeded):
		return tr.T(i18n.FailLimit, amount.String())
	case errors.Is(err, outcome.ErrAccountNotFound) && op == opTransfer:
		return tr.T(i18n.FailNoAccount, to)
	case errors.Is(err, outcome.ErrSameAccount):
		return tr.T(i18n.FailSameAccount)
	case errors.Is(err, outcome.ErrInvalidAmount):
		return tr.T(i18n.FailAmount)
	case errors.Is(err, outcome.ErrOverflow):
		return tr.T(i18n.FailOverflow)
	case errors.Is(err, wire.ErrNotLoggedIn):
		return tr.T(i18n.FailNotLoggedIn)
	}
	var pe *wire.Error
	if errors.As(err, &pe) {
		// The bank's own sentence is English: other languages say its
		// code, which never changes.
		if pe.Message != "" && tr.Lang() == i18n.English {
			return pe.Message
		}
		return tr.T(i18n.FailRefusedCode, pe.Code)
	}
	return tr.T(i18n.FailOther)
}

// unknownCause says why the ATM cannot learn an unknown outcome any more.
func unknownCause(tr *i18n.Printer, err error) string {
	var pe *wire.Error
	switch {
	case errors.Is(err, client.ErrConnectionLost):
		return tr.T(i18n.CauseLost)
	case errors.Is(err, client.ErrClientClosed):
		return tr.T(i18n.CauseClosed)
	case errors.As(err, &pe):
		return tr.T(i18n.CauseNotRestored)
	}
	return tr.T(i18n.CauseCannotAsk)
}

func (p *receiptPage) View() string {
	s, tr := p.c.styles, p.c.tr
	var b strings.Builder
	titles := opTitles[p.op]
	var pe *wire.Error
	switch {
	case p.pending:
		b.WriteString(p.wrap(s.Warning, tr.T(i18n.ReceiptChecking)) + "\n")
		b.WriteString(p.c.spinner + s.Dim.Render(tr.T(i18n.ReceiptNotRefusal)) + "\n\n")
		b.WriteString(p.kv(tr.T(i18n.ReceiptRequest), opNoun(tr, p.op, p.amount, p.to)) + "\n")
		b.WriteString(p.wrap(s.Text, tr.T(i18n.ReceiptWait)) + "\n")
		if p.c.sess.hasBalance {
			b.WriteString(p.kv(tr.T(i18n.ReceiptBalanceBefore), p.c.sess.balance.String()) + "\n")
		}
	case errors.Is(p.err, client.ErrOutcomeUnknown):
		b.WriteString(s.Warning.Render(tr.T(i18n.ReceiptUnknown)) + "\n\n")
		b.WriteString(p.kv(tr.T(i18n.ReceiptRequest), opNoun(tr, p.op, p.amount, p.to)) + "\n")
		b.WriteString(p.wrap(s.Text, failureText(tr, p.op, p.err, p.amount, p.to)) + "\n")
	case p.err != nil:
		title := titles[2]
		if errors.As(p.err, &pe) {
			title = titles[1] // only the bank refuses
		}
		b.WriteString(s.Error.Render("✗ "+tr.T(title)) + "\n\n")
		b.WriteString(p.wrap(s.Text, failureText(tr, p.op, p.err, p.amount, p.to)) + "\n")
		if p.c.sess.hasBalance {
			b.WriteString(p.kv(tr.T(i18n.FieldBalance), p.c.sess.balance.String()) + "\n")
		}
	default:
		b.WriteString(s.Success.Render("✓ "+tr.T(titles[0])) + "\n\n")
		r := p.reply
		switch p.op {
		case "balance":
			b.WriteString(p.kv(tr.T(i18n.FieldBalance), r.Balance.String()) + "\n")
		case opDeposit, opWithdraw:
			b.WriteString(p.kv(tr.T(i18n.FieldAmount), p.amount.String()) + "\n")
			b.WriteString(p.kv(tr.T(i18n.FieldNewBalance), r.Balance.String()) + "\n")
		case opTransfer:
			to := p.to
			if p.toHolder != "" {
				to += " · " + p.toHolder
			}
			b.WriteString(p.kv(tr.T(i18n.FieldTo), to) + "\n")
			b.WriteString(p.kv(tr.T(i18n.FieldAmount), p.amount.String()) + "\n")
			b.WriteString(p.kv(tr.T(i18n.FieldNewBalance), r.Balance.String()) + "\n")
		}
		if r.Duplicate {
			b.WriteString(p.wrap(s.Warning, tr.T(i18n.ReceiptDuplicate)) + "\n")
		}
	}
	if p.note != "" {
		b.WriteString(p.wrap(s.Warning, p.note) + "\n")
	}
	b.WriteString("\n" + s.PageTitle.Render(tr.T(i18n.LamportStamps)) + "\n")
	for _, l := range p.stamps() {
		b.WriteString(p.kv(l[0], l[1]) + "\n")
	}
	return b.String()
}

// stamps lists the request's timestamps: sent here, received, applied and
// answered by the bank, and received here with the max+1 rule.
func (p *receiptPage) stamps() [][2]string {
	num := func(v uint64) string {
		if v == 0 {
			return "—"
		}
		return strconv.FormatUint(v, 10)
	}
	id, sent, replyTS, recv := p.reply.ID, p.reply.SentTS, p.reply.TS, p.reply.RecvTS
	srvRecv, srvApply := p.reply.ServerRecv, p.reply.ServerApply
	var pe *wire.Error
	var ue *client.OutcomeUnknownError
	if p.err != nil {
		sent, replyTS, recv, srvRecv, srvApply = 0, 0, 0, 0, 0
		if errors.As(p.err, &pe) {
			id, replyTS, srvRecv, srvApply = pe.ID, pe.TS, pe.RecvTS, pe.ApplyTS
		} else if errors.As(p.err, &ue) {
			id = ue.ID
		}
	}
	if e, ok := p.clockPanel.lastEvent("send", id); ok && sent == 0 {
		sent = e.After
	}
	recvLine := num(recv)
	if e, ok := p.clockPanel.lastEvent("recv", id); ok {
		recvLine = entryRule(e)
	}
	tr := p.c.tr
	proc := p.clockPanel.proc
	bankName := tr.T(i18n.TheBank)
	if p.clockPanel.server != "" {
		bankName = p.clockPanel.server
	}
	lines := [][2]string{{tr.T(i18n.StampSentBy, proc), num(sent)}}
	if srvApply != 0 { // the bank ran the request, even if it refused it
		decided := i18n.StampAppliedBy
		if p.err != nil {
			decided = i18n.StampRefusedBy
		}
		lines = append(lines,
			[2]string{tr.T(i18n.StampReceivedBy, bankName), num(srvRecv)},
			[2]string{tr.T(decided, bankName), num(srvApply)})
	}
	lines = append(lines,
		[2]string{tr.T(i18n.StampAnsweredBy, bankName), num(replyTS)},
		[2]string{tr.T(i18n.StampReceivedHere), recvLine})
	return lines
}
