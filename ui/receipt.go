package ui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"atm/netproto/client"
	"atm/netproto/wire"

	"atm/bank/money"
	"atm/bank/outcome"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// receiptPage is shown after every operation: what happened, the new
// balance, and the Lamport timestamps of the request.
type receiptPage struct {
	c          *common
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

var opTitles = map[string][3]string{ // done, refused by the bank, failed before the bank
	"balance":  {"Balance", "Balance not available", "Balance not available"},
	opDeposit:  {"Deposit done", "Deposit refused", "Deposit not done"},
	opWithdraw: {"Withdrawal done", "Withdrawal refused", "Withdrawal not done"},
	opTransfer: {"Transfer done", "Transfer refused", "Transfer not done"},
}

// failureText explains a failed operation: the bank's refusal, or why the
// bank could not be asked.
func failureText(op string, err error, amount money.Cents, to string) string {
	switch {
	case errors.Is(err, client.ErrOutcomeUnknown):
		return "The request reached the bank, but its answer did not come back. " + unknownCause(err) +
			" It may have been applied: check your statement before trying again."
	case errors.Is(err, context.DeadlineExceeded):
		return "The bank did not answer in time; nothing was changed. Try again."
	case errors.Is(err, client.ErrConnectionLost), errors.Is(err, client.ErrClientClosed):
		return "The connection to the bank was lost; nothing was changed. Try again once it is back."
	case errors.Is(err, client.ErrNotPending):
		return "The ATM no longer has this request to ask the bank about. Check your statement before trying again."
	}
	switch {
	case errors.Is(err, outcome.ErrInsufficientFunds):
		return fmt.Sprintf("Insufficient funds for %s.", amount.String())
	case errors.Is(err, outcome.ErrLimitExceeded):
		return fmt.Sprintf("%s is more than the bank allows in one operation.", amount.String())
	case errors.Is(err, outcome.ErrAccountNotFound) && op == opTransfer:
		return fmt.Sprintf("There is no account %s.", to)
	case errors.Is(err, outcome.ErrSameAccount):
		return "You cannot transfer to your own account."
	case errors.Is(err, outcome.ErrInvalidAmount):
		return "The bank did not accept that amount."
	case errors.Is(err, outcome.ErrOverflow):
		return "The balance would be larger than the bank can hold."
	case errors.Is(err, wire.ErrNotLoggedIn):
		return "The session has ended: please log in again."
	}
	var pe *wire.Error
	if errors.As(err, &pe) {
		if pe.Message != "" {
			return pe.Message
		}
		return "The bank refused the request (" + pe.Code + ")."
	}
	return "The ATM could not complete the request with the bank; nothing was changed. Try again."
}

// unknownCause says why the ATM cannot learn an unknown outcome any more.
func unknownCause(err error) string {
	var pe *wire.Error
	switch {
	case errors.Is(err, client.ErrConnectionLost):
		return "The connection to the bank was lost before it answered."
	case errors.Is(err, client.ErrClientClosed):
		return "The connection to the bank was closed before it answered."
	case errors.As(err, &pe):
		return "After reconnecting, the session could not be restored to ask again."
	}
	return "The ATM cannot ask the bank about it any more."
}

func (p *receiptPage) View() string {
	s := p.c.styles
	var b strings.Builder
	titles := opTitles[p.op]
	var pe *wire.Error
	switch {
	case p.pending:
		b.WriteString(s.Warning.Render("Outcome unknown — checking with the bank") + "\n")
		b.WriteString(p.c.spinner + s.Dim.Render("not a refusal: no answer yet") + "\n\n")
		b.WriteString(kv(p.c, "Request", opNoun(p.op, p.amount, p.to)) + "\n")
		b.WriteString(wrap(p.c, s.Text, "No answer came in time. The bank may or may not have done it; the ATM is asking about this same request, which is never applied twice. Please wait here: do not try again.") + "\n")
		if p.c.sess.hasBalance {
			b.WriteString(kv(p.c, "Balance before", p.c.sess.balance.String()) + "\n")
		}
	case errors.Is(p.err, client.ErrOutcomeUnknown):
		b.WriteString(s.Warning.Render("⚠ Outcome unknown") + "\n\n")
		b.WriteString(kv(p.c, "Request", opNoun(p.op, p.amount, p.to)) + "\n")
		b.WriteString(wrap(p.c, s.Text, failureText(p.op, p.err, p.amount, p.to)) + "\n")
	case p.err != nil:
		title := titles[2]
		if errors.As(p.err, &pe) {
			title = titles[1] // only the bank refuses
		}
		b.WriteString(s.Error.Render("✗ "+title) + "\n\n")
		b.WriteString(wrap(p.c, s.Text, failureText(p.op, p.err, p.amount, p.to)) + "\n")
		if p.c.sess.hasBalance {
			b.WriteString(kv(p.c, "Balance", p.c.sess.balance.String()) + "\n")
		}
	default:
		b.WriteString(s.Success.Render("✓ "+titles[0]) + "\n\n")
		r := p.reply
		switch p.op {
		case "balance":
			b.WriteString(kv(p.c, "Balance", r.Balance.String()) + "\n")
		case opDeposit, opWithdraw:
			b.WriteString(kv(p.c, "Amount", p.amount.String()) + "\n")
			b.WriteString(kv(p.c, "New balance", r.Balance.String()) + "\n")
		case opTransfer:
			to := p.to
			if p.toHolder != "" {
				to += " · " + p.toHolder
			}
			b.WriteString(kv(p.c, "To", to) + "\n")
			b.WriteString(kv(p.c, "Amount", p.amount.String()) + "\n")
			b.WriteString(kv(p.c, "New balance", r.Balance.String()) + "\n")
		}
		if r.Duplicate {
			b.WriteString(wrap(p.c, s.Warning, "The bank had already applied this request; it was not applied again.") + "\n")
		}
	}
	if p.note != "" {
		b.WriteString(wrap(p.c, s.Warning, p.note) + "\n")
	}
	b.WriteString("\n" + s.PageTitle.Render("Lamport timestamps") + "\n")
	for _, l := range p.stamps() {
		b.WriteString(kv(p.c, l[0], l[1]) + "\n")
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
	proc := p.clockPanel.proc
	bankName := "bank"
	if p.clockPanel.server != "" {
		bankName = p.clockPanel.server
	}
	lines := [][2]string{{"sent by " + proc, num(sent)}}
	if srvApply != 0 { // the bank ran the request, even if it refused it
		decided := "applied by "
		if p.err != nil {
			decided = "refused by "
		}
		lines = append(lines,
			[2]string{"received by " + bankName, num(srvRecv)},
			[2]string{decided + bankName, num(srvApply)})
	}
	lines = append(lines,
		[2]string{"answered by " + bankName, num(replyTS)},
		[2]string{"received here", recvLine})
	return lines
}
