package ui

import (
	"errors"
	"strings"
	"time"

	"atm/bank/money"
	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// Operations the forms submit.
const (
	opDeposit  = "deposit"
	opWithdraw = "withdraw"
	opTransfer = "transfer"
)

// amountField is a money input with inline validation: the parsed amount or
// the reason it is not valid is shown as the person types.
type amountField struct {
	base
	input textinput.Model
	typed bool // something was typed: show errors
}

func newAmountField(c *common) amountField {
	in := newInput(c, c.tr.T(i18n.AmountPlaceholder), 24)
	in.Prompt = "R$ › "
	return amountField{base: newBase(c), input: in}
}

// SetSize sizes the field for a screen of width×height.
func (f *amountField) SetSize(width, height int) {
	f.base.SetSize(width, height)
	f.input.SetWidth(width - 8)
}

func (f *amountField) reset() tea.Cmd {
	f.input.Reset()
	f.typed = false
	return f.input.Focus()
}

func (f *amountField) update(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	f.input, cmd = f.input.Update(msg)
	if k, ok := msg.(tea.KeyPressMsg); ok && (k.Text != "" || k.String() == "backspace") {
		f.typed = true
	}
	return cmd
}

// errOverLimit is an amount above the bank's per-operation limit.
var errOverLimit = errors.New("over the limit")

// value is the amount typed, checked against the bank's per-operation limit
// when the bank announced one.
func (f *amountField) value() (money.Cents, error) {
	v, err := money.Parse(f.input.Value())
	if err == nil && f.c.maxAmount > 0 && v > f.c.maxAmount {
		return 0, errOverLimit
	}
	return v, err
}

// amountErrors are the sentences for the reasons an amount is not valid.
var amountErrors = []struct {
	err error
	msg i18n.Key
}{
	{money.ErrAmountEmpty, i18n.AmountEmpty},
	{money.ErrAmountChars, i18n.AmountChars},
	{money.ErrAmountNegative, i18n.AmountNegative},
	{money.ErrAmountZero, i18n.AmountZero},
	{money.ErrAmountDecimals, i18n.AmountDecimals},
	{money.ErrAmountGrouping, i18n.AmountGrouping},
	{money.ErrAmountAmbiguous, i18n.AmountAmbiguous},
	{money.ErrAmountTooLarge, i18n.AmountTooLarge},
}

// errorText says why the amount typed is not valid.
func (f *amountField) errorText(err error) string {
	if errors.Is(err, errOverLimit) {
		return f.c.tr.T(i18n.AmountOverLimit, f.c.maxAmount.String())
	}
	for _, e := range amountErrors {
		if errors.Is(err, e.err) {
			return f.c.tr.T(e.msg)
		}
	}
	return f.c.tr.T(i18n.AmountChars)
}

// view renders the field and, under it, its validation line.
func (f *amountField) view() string {
	s := f.c.styles
	line := f.input.View() + "\n"
	v, err := f.value()
	switch {
	case err == nil:
		line += s.Success.Render("  = "+v.String()) + "\n"
	case f.typed:
		line += f.wrapMarked(s.Error, "  ✗ ", f.errorText(err)) + "\n"
	default:
		line += "\n"
	}
	return line
}

// amountPage is the deposit or withdraw form, then its confirmation.
type amountPage struct {
	base
	op      string
	field   amountField
	confirm bool // the confirmation is shown
	amount  money.Cents
	gate    confirmGate
}

type amountSubmitMsg struct {
	op     string
	amount money.Cents
}

func newAmountPage(c *common) *amountPage {
	return &amountPage{base: newBase(c), field: newAmountField(c)}
}

func (p *amountPage) SetSize(width, height int) {
	p.base.SetSize(width, height)
	p.field.SetSize(width, height)
}

func (p *amountPage) start(op string) tea.Cmd {
	p.op, p.confirm, p.amount = op, false, 0
	return p.field.reset()
}

func (p *amountPage) Typing() bool { return !p.confirm }
func (p *amountPage) applyStyles() { p.field.input.SetStyles(p.c.styles.Input) }

func (p *amountPage) Help() []key.Binding {
	k := p.c.keys
	if p.confirm {
		return []key.Binding{k.Confirm, k.Cancel, k.Quit}
	}
	return []key.Binding{k.Submit, k.Back, k.QuitTyping}
}

func (p *amountPage) Update(msg tea.Msg) (intent, tea.Cmd) {
	if p.confirm {
		switch p.gate.update(p.c.keys, msg) {
		case gateConfirm:
			return amountSubmitMsg{op: p.op, amount: p.amount}, nil
		case gateBack:
			p.confirm = false
			return nil, p.field.input.Focus()
		}
		return nil, nil
	}
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch {
		case key.Matches(k, p.c.keys.Back):
			return backMsg{}, nil
		case key.Matches(k, p.c.keys.Submit):
			v, err := p.field.value()
			if err != nil {
				p.field.typed = true
				return nil, nil
			}
			p.amount, p.confirm = v, true
			p.field.input.Blur()
			return nil, p.gate.arm()
		}
	}
	return nil, p.field.update(msg)
}

func (p *amountPage) View() string {
	s, tr := p.c.styles, p.c.tr
	title, label := tr.T(i18n.DepositTitle), tr.T(i18n.DepositLabel)
	if p.op == opWithdraw {
		title, label = tr.T(i18n.WithdrawTitle), tr.T(i18n.WithdrawLabel)
	}
	var b strings.Builder
	if p.confirm {
		question := tr.T(i18n.DepositQuestion, p.amount.String())
		if p.op == opWithdraw {
			title = tr.T(i18n.WithdrawConfirmTitle)
			question = tr.T(i18n.WithdrawQuestion, p.amount.String())
		} else {
			title = tr.T(i18n.DepositConfirmTitle)
		}
		b.WriteString(s.PageTitle.Render(title) + "\n\n")
		acc := p.c.sess.account
		if p.c.sess.holder != "" {
			acc += " · " + p.c.sess.holder
		}
		b.WriteString(p.kv(tr.T(i18n.FieldAccount), acc) + "\n")
		b.WriteString(p.kv(tr.T(i18n.FieldAmount), p.amount.String()) + "\n\n")
		b.WriteString(p.wrap(s.Text, question) + "\n")
		b.WriteString(p.gate.view(&p.base, tr.T(i18n.ChangeAmount)))
		return b.String()
	}
	b.WriteString(s.PageTitle.Render(title) + "\n\n")
	b.WriteString(s.Field.Render(label) + "\n")
	b.WriteString(p.field.view())
	b.WriteString("\n" + p.wrap(s.Hint, tr.T(i18n.AmountHint)) + "\n")
	return b.String()
}

// transferPage asks for the recipient, shows the holder's name the bank
// returns, asks for the amount and then for confirmation.
type transferPage struct {
	base
	step     int // 0 recipient, 1 amount, 2 confirm
	to       textinput.Model
	toHolder string
	field    amountField
	amount   money.Cents
	err      string
	gate     confirmGate
}

const (
	stepRecipient = iota
	stepAmount
	stepConfirm
)

type lookupSubmitMsg struct{ account string }

type transferSubmitMsg struct {
	to       string
	toHolder string
	amount   money.Cents
}

// backMsg asks the root to go back to the menu.
type backMsg struct{}

func newTransferPage(c *common) *transferPage {
	return &transferPage{base: newBase(c), to: newInput(c, c.tr.T(i18n.TransferPlaceholder), 20), field: newAmountField(c)}
}

func (p *transferPage) SetSize(width, height int) {
	p.base.SetSize(width, height)
	p.to.SetWidth(width - 4)
	p.field.SetSize(width, height)
}

func (p *transferPage) start() tea.Cmd {
	p.step, p.toHolder, p.amount, p.err = stepRecipient, "", 0, ""
	p.to.Reset()
	p.field.input.Blur()
	return p.to.Focus()
}

// found is the bank's answer to the recipient lookup.
func (p *transferPage) found(account, holder string) tea.Cmd {
	p.to.SetValue(account)
	p.toHolder = holder
	p.step = stepAmount
	p.err = ""
	p.to.Blur()
	return p.field.reset()
}

// lookupFailed keeps the person on the recipient step with the reason.
func (p *transferPage) lookupFailed(msg string) tea.Cmd {
	p.step = stepRecipient
	p.err = msg
	p.field.input.Blur()
	return p.to.Focus()
}

func (p *transferPage) Typing() bool { return p.step != stepConfirm }

func (p *transferPage) applyStyles() {
	p.to.SetStyles(p.c.styles.Input)
	p.field.input.SetStyles(p.c.styles.Input)
}

func (p *transferPage) Help() []key.Binding {
	k := p.c.keys
	if p.step == stepConfirm {
		return []key.Binding{k.Confirm, k.Cancel, k.Quit}
	}
	return []key.Binding{k.Submit, k.Back, k.QuitTyping}
}

func (p *transferPage) Update(msg tea.Msg) (intent, tea.Cmd) {
	k, isKey := msg.(tea.KeyPressMsg)
	keys := p.c.keys
	switch p.step {
	case stepRecipient:
		if isKey {
			switch {
			case key.Matches(k, keys.Back):
				return backMsg{}, nil
			case key.Matches(k, keys.Submit):
				acc := strings.TrimSpace(p.to.Value())
				switch {
				case !money.ValidAccountID(acc):
					p.err = p.c.tr.T(i18n.TransferTypeAccount)
					return nil, nil
				case acc == p.c.sess.account:
					p.err = p.c.tr.T(i18n.TransferOwnAccount)
					return nil, nil
				}
				p.err = ""
				return lookupSubmitMsg{account: acc}, nil
			}
			if onlyDigits(msg) {
				p.err = p.c.tr.T(i18n.OnlyDigits)
				return nil, nil
			}
			p.err = ""
		}
		var cmd tea.Cmd
		p.to, cmd = p.to.Update(msg)
		return nil, cmd
	case stepAmount:
		if isKey {
			switch {
			case key.Matches(k, keys.Back):
				p.field.input.Blur()
				p.step = stepRecipient
				return nil, p.to.Focus()
			case key.Matches(k, keys.Submit):
				v, err := p.field.value()
				if err != nil {
					p.field.typed = true
					return nil, nil
				}
				p.amount = v
				p.field.input.Blur()
				p.step = stepConfirm
				return nil, p.gate.arm()
			}
			p.err = ""
		}
		return nil, p.field.update(msg)
	case stepConfirm:
		switch p.gate.update(keys, msg) {
		case gateConfirm:
			return transferSubmitMsg{to: p.to.Value(), toHolder: p.toHolder, amount: p.amount}, nil
		case gateBack:
			p.step = stepAmount
			return nil, p.field.input.Focus()
		}
	}
	return nil, nil
}

func (p *transferPage) View() string {
	s, tr := p.c.styles, p.c.tr
	var b strings.Builder
	switch p.step {
	case stepRecipient:
		b.WriteString(s.PageTitle.Render(tr.T(i18n.TransferTitle)) + "\n\n")
		b.WriteString(s.Field.Render(tr.T(i18n.TransferRecipient)) + "\n")
		b.WriteString(p.to.View() + "\n\n")
		if p.err != "" {
			b.WriteString(p.wrapMarked(s.Error, "✗ ", p.err) + "\n")
		} else {
			b.WriteString(p.wrap(s.Hint, tr.T(i18n.TransferHint)) + "\n")
		}
	case stepAmount:
		b.WriteString(s.PageTitle.Render(tr.T(i18n.TransferTitle)) + "\n\n")
		b.WriteString(p.kv(tr.T(i18n.FieldTo), p.to.Value()+" · "+p.toHolder) + "\n\n")
		b.WriteString(s.Field.Render(tr.T(i18n.TransferLabel)) + "\n")
		b.WriteString(p.field.view())
		b.WriteString("\n" + p.wrap(s.Hint, tr.T(i18n.AmountHint)) + "\n")
	case stepConfirm:
		b.WriteString(s.PageTitle.Render(tr.T(i18n.TransferConfirmTitle)) + "\n\n")
		from := p.c.sess.account
		if p.c.sess.holder != "" {
			from += " · " + p.c.sess.holder
		}
		b.WriteString(p.kv(tr.T(i18n.FieldFrom), from) + "\n")
		b.WriteString(p.kv(tr.T(i18n.FieldTo), p.to.Value()+" · "+p.toHolder) + "\n")
		b.WriteString(p.kv(tr.T(i18n.FieldAmount), p.amount.String()) + "\n\n")
		b.WriteString(p.wrap(s.Text, tr.T(i18n.TransferQuestion, p.amount.String(), p.toHolder)) + "\n")
		b.WriteString(p.gate.view(&p.base, tr.T(i18n.ChangeAmount)))
	}
	return b.String()
}

// confirmGrace is how long a confirmation must have been on screen before
// a key counts as an answer to it.
const confirmGrace = 500 * time.Millisecond

// confirmGate guards the confirmation of a step that moves money.
//
// The rule: only y confirms, and only once the confirmation has been on
// screen for confirmGrace. The time starts when the confirmation is shown:
// arm returns a timer command at that moment, and its confirmReadyMsg comes
// back confirmGrace later, behind every key that was already queued. Any
// key before it (a second Enter, a y typed in the same breath as the amount,
// keys typed ahead while the ATM waited for the bank) is ignored, and the
// screen says how many were. Enter never confirms: it is the key that
// submitted the step before. n or esc go back. No clock is read in Update,
// and tests need no sleep: they send confirmReadyMsg themselves.
type confirmGate struct {
	id      int
	ready   bool
	ignored int  // keys that came before the confirmation was ready
	enter   bool // enter was pressed on the ready confirmation
	sent    bool // y was pressed: the request is on its way
}

// confirmReadyMsg comes confirmGrace after the confirmation was shown.
type confirmReadyMsg struct {
	gate *confirmGate
	id   int
}

type gateResult int

const (
	gateNone gateResult = iota
	gateConfirm
	gateBack
)

// arm is called when a new confirmation is shown: keys count only after
// its confirmReadyMsg.
func (g *confirmGate) arm() tea.Cmd {
	g.id++
	g.ready, g.ignored, g.enter, g.sent = false, 0, false, false
	id := g.id
	return tea.Tick(confirmGrace, func(time.Time) tea.Msg { return confirmReadyMsg{gate: g, id: id} })
}

// update says what msg means for the confirmation.
func (g *confirmGate) update(keys *KeyMap, msg tea.Msg) gateResult {
	switch msg := msg.(type) {
	case confirmReadyMsg:
		if msg.gate == g && msg.id == g.id {
			g.ready = true
		}
	case tea.KeyPressMsg:
		if !g.ready {
			g.ignored++
			return gateNone
		}
		g.enter, g.ignored = false, 0
		switch {
		case key.Matches(msg, keys.Confirm):
			g.ready, g.sent = false, true
			return gateConfirm
		case key.Matches(msg, keys.Cancel):
			return gateBack
		case msg.String() == "enter":
			g.enter = true
		}
	}
	return gateNone
}

// view is the line under a confirmation on screen p: which keys answer
// it, or why they do not yet.
func (g *confirmGate) view(p *base, back string) string {
	c := p.c
	s, tr := c.styles, c.tr
	yes, no := c.keys.Confirm.Help().Key, c.keys.Cancel.Help().Key
	var b strings.Builder
	switch {
	case g.sent:
		return ""
	case g.ready:
		line := withKeycaps(s, tr.T(i18n.ConfirmPress, keycapMark(0), keycapMark(1), back), yes, no)
		b.WriteString(lipgloss.NewStyle().Width(p.width).Render(line) + "\n")
	default:
		b.WriteString(p.wrap(s.Dim, tr.T(i18n.ConfirmWait, yes)) + "\n")
	}
	switch {
	case g.enter:
		b.WriteString(p.wrap(s.Warning, tr.T(i18n.ConfirmEnter, yes, no)) + "\n")
	case g.ignored > 0:
		b.WriteString(p.wrap(s.Warning, tr.T(i18n.ConfirmIgnored, g.ignored)) + "\n")
	}
	return b.String()
}

// keycapMark stands for the i-th key in a sentence that withKeycaps draws.
func keycapMark(i int) string { return string(rune(0xE000 + i)) }

// withKeycaps renders a sentence in the text style with keycapMark(i)
// drawn as the keycap of keys[i], wherever the language put it.
func withKeycaps(s *Styles, text string, keys ...string) string {
	var b strings.Builder
	start := 0
	for i, r := range text {
		if k := int(r - 0xE000); k >= 0 && k < len(keys) {
			b.WriteString(s.Text.Render(text[start:i]) + s.Keycap.Render(keys[k]))
			start = i + len(string(r))
		}
	}
	b.WriteString(s.Text.Render(text[start:]))
	return b.String()
}
