package ui

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"atm/bank"
	"atm/netproto"
)

// receiptPage is shown after every operation: what happened, the new
// balance, and the Lamport timestamps of the request.
type receiptPage struct {
	c     *common
	clock *clockPanel
	op    string // "balance", "deposit", "withdraw", "transfer"
	reply netproto.Reply
	err   error
	// What was asked, for the failure text.
	amount   bank.Cents
	to       string
	toHolder string
	note     string // e.g. the connection dropped during the request
}

func (p *receiptPage) Typing() bool { return false }
func (p *receiptPage) applyStyles() {}

func (p *receiptPage) Help() []key.Binding {
	k := p.c.keys
	return []key.Binding{k.Dismiss, k.Quit}
}

func (p *receiptPage) Update(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, p.c.keys.Dismiss) {
		return p.c.intent(backMsg{})
	}
	return nil
}

var opTitles = map[string][2]string{ // done, refused
	"balance":  {"Balance", "Balance not available"},
	opDeposit:  {"Deposit done", "Deposit refused"},
	opWithdraw: {"Withdrawal done", "Withdrawal refused"},
	opTransfer: {"Transfer done", "Transfer refused"},
}

// failureText explains a refused operation.
func failureText(op string, err error, amount bank.Cents, to string) string {
	switch {
	case errors.Is(err, bank.ErrInsufficientFunds):
		return fmt.Sprintf("Insufficient funds for %s.", FormatCents(amount))
	case errors.Is(err, bank.ErrLimitExceeded):
		return fmt.Sprintf("%s is more than the bank allows in one operation.", FormatCents(amount))
	case errors.Is(err, bank.ErrAccountNotFound) && op == opTransfer:
		return fmt.Sprintf("There is no account %s.", to)
	case errors.Is(err, bank.ErrSameAccount):
		return "You cannot transfer to your own account."
	case errors.Is(err, bank.ErrInvalidAmount):
		return "The bank did not accept that amount."
	case errors.Is(err, bank.ErrOverflow):
		return "The balance would be larger than the bank can hold."
	case errors.Is(err, netproto.ErrNotLoggedIn):
		return "The session has ended: please log in again."
	}
	var pe *netproto.Error
	if errors.As(err, &pe) && pe.Message != "" {
		return pe.Message
	}
	return err.Error()
}

func (p *receiptPage) View() string {
	s := p.c.styles
	var b strings.Builder
	titles := opTitles[p.op]
	if p.err != nil {
		b.WriteString(s.Error.Render("✗ "+titles[1]) + "\n\n")
		b.WriteString(wrap(p.c, s.Text, failureText(p.op, p.err, p.amount, p.to)) + "\n")
		if p.c.sess.hasBalance {
			b.WriteString(kv(p.c, "Balance", FormatCents(p.c.sess.balance)) + "\n")
		}
	} else {
		b.WriteString(s.Success.Render("✓ "+titles[0]) + "\n\n")
		r := p.reply
		switch p.op {
		case "balance":
			b.WriteString(kv(p.c, "Balance", FormatCents(r.Balance)) + "\n")
		case opDeposit, opWithdraw:
			b.WriteString(kv(p.c, "Amount", FormatCents(p.amount)) + "\n")
			b.WriteString(kv(p.c, "New balance", FormatCents(r.Balance)) + "\n")
		case opTransfer:
			to := p.to
			if p.toHolder != "" {
				to += " · " + p.toHolder
			}
			b.WriteString(kv(p.c, "To", to) + "\n")
			b.WriteString(kv(p.c, "Amount", FormatCents(p.amount)) + "\n")
			b.WriteString(kv(p.c, "New balance", FormatCents(r.Balance)) + "\n")
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
	var pe *netproto.Error
	if p.err != nil {
		sent, replyTS, recv, srvRecv, srvApply = 0, 0, 0, 0, 0
		if errors.As(p.err, &pe) {
			id, replyTS, srvRecv, srvApply = pe.ID, pe.TS, pe.RecvTS, pe.ApplyTS
		}
	}
	if e, ok := p.clock.lastEvent("send", id); ok && sent == 0 {
		sent = e.After
	}
	recvLine := num(recv)
	if e, ok := p.clock.lastEvent("recv", id); ok {
		recvLine = entryRule(e)
	}
	proc := p.clock.proc
	bankName := "bank"
	if p.clock.server != "" {
		bankName = p.clock.server
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
