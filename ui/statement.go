package ui

import (
	"strconv"
	"strings"

	"atm/bank/money"
	"atm/bank/outcome"
	"atm/netproto/wire"
	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// statementPageSize is how many entries are asked for at a time (the
// bank's maximum).
const statementPageSize = 50

// statementPage lists the account's entries, newest first; older pages load
// as the list scrolls near its end. Enter shows an entry in full, with its
// Lamport timestamps.
type statementPage struct {
	base
	entries []wire.Entry
	next    uint64 // cursor of the next (older) page, 0 at the end
	// archived: the entries end where the bank's online history does.
	archived bool
	loading  bool
	err      string
	cursor   int  // the selected entry
	offset   int  // the first entry on screen
	detail   bool // the selected entry is shown in full
}

type statementMoreMsg struct{ before uint64 }

// statementOpen opens the selected entry.
var statementOpen = key.NewBinding(key.WithKeys("enter"))

// Keys shown in the statement's help bar (the bindings that act are in
// KeyMap).
func (p *statementPage) helpKeys() (scroll, open key.Binding) {
	scroll = key.NewBinding(key.WithKeys("up", "down", "pgup", "pgdown", "home", "end"),
		key.WithHelp("↑↓ pgup pgdn home end", p.c.tr.T(i18n.KeyMove)))
	open = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", p.c.tr.T(i18n.KeyDetails)))
	return scroll, open
}

func newStatementPage(c *common) *statementPage { return &statementPage{base: newBase(c)} }

func (p *statementPage) start() {
	p.entries, p.next, p.archived, p.loading, p.err = nil, 0, false, true, ""
	p.cursor, p.offset, p.detail = 0, 0, false
}

// loaded appends a page of entries; archived says it ends where the
// bank's online history does.
func (p *statementPage) loaded(entries []wire.Entry, next uint64, archived bool) {
	p.loading = false
	p.entries = append(p.entries, entries...)
	p.next, p.archived = next, archived
}

func (p *statementPage) failed(msg string) {
	p.loading = false
	p.err = msg
}

func (p *statementPage) Typing() bool { return false }
func (p *statementPage) applyStyles() {}

// SetSize sizes the list and keeps the selected entry on screen.
func (p *statementPage) SetSize(width, height int) {
	p.base.SetSize(width, height)
	p.scrollTo(p.cursor)
}

func (p *statementPage) Help() []key.Binding {
	k := p.c.keys
	if p.detail {
		return []key.Binding{k.Back, k.Quit}
	}
	if len(p.entries) == 0 {
		return []key.Binding{k.Back, k.Quit}
	}
	scroll, open := p.helpKeys()
	return []key.Binding{scroll, open, k.Back, k.Quit}
}

// plainAmount formats an amount for the list: "1.234,56", without "R$".
func plainAmount(c money.Cents) string { return strings.TrimPrefix(c.String(), "R$ ") }

// received says e is a transfer into the session's account.
func (p *statementPage) received(e wire.Entry) bool {
	me := p.c.sess.account
	return e.Kind == wire.KindTransfer && e.To == me && e.Account != me
}

// describe is an entry from the account's point of view: what it was, with
// whom, the signed amount and the balance after it ("" when none).
func (p *statementPage) describe(e wire.Entry) (what, amount, balance string) {
	tr := p.c.tr
	switch e.Kind {
	case wire.KindDeposit:
		what, amount = tr.T(i18n.StmtDeposit), "+"+plainAmount(e.Amount)
	case wire.KindWithdraw:
		what, amount = tr.T(i18n.StmtWithdrawal), "-"+plainAmount(e.Amount)
	case wire.KindTransfer:
		if p.received(e) {
			what, amount = tr.T(i18n.StmtFrom, e.Account), "+"+plainAmount(e.Amount)
		} else {
			what, amount = tr.T(i18n.StmtTo, e.To), "-"+plainAmount(e.Amount)
			if e.Detail != "" {
				what += " " + e.Detail
			}
		}
	case wire.KindOpen:
		what = tr.T(i18n.StmtOpened)
		if e.Amount != 0 {
			amount = "+" + plainAmount(e.Amount)
		}
	case wire.KindPush:
		what = tr.T(i18n.StmtFrom, e.To)
	default:
		what = e.Kind
	}
	switch e.Kind {
	case wire.KindDeposit, wire.KindWithdraw, wire.KindTransfer, wire.KindBalance, wire.KindOpen:
		balance = plainAmount(e.Balance)
		if p.received(e) {
			balance = plainAmount(e.ToBalance)
		}
	}
	if e.Outcome != "" && e.Outcome != outcome.OutcomeOK {
		what = tr.T(i18n.StmtFailed, what, outcomeText(tr, e.Outcome))
		balance = ""
	}
	return what, amount, balance
}

// outcomeTexts name the bank's refusals on a statement, by code.
var outcomeTexts = map[string]i18n.Key{
	outcome.Code(outcome.ErrInsufficientFunds): i18n.OutcomeFunds,
	outcome.Code(outcome.ErrLimitExceeded):     i18n.OutcomeLimit,
	outcome.Code(outcome.ErrAccountNotFound):   i18n.OutcomeNoAccount,
	outcome.Code(outcome.ErrSameAccount):       i18n.OutcomeSame,
	outcome.Code(outcome.ErrInvalidAmount):     i18n.OutcomeAmount,
	outcome.Code(outcome.ErrOverflow):          i18n.OutcomeOverflow,
}

// outcomeText names a refusal: in tr's language when the catalog has it,
// else its code in words ("read only").
func outcomeText(tr *i18n.Printer, code string) string {
	if k, ok := outcomeTexts[code]; ok {
		return tr.T(k)
	}
	return strings.ReplaceAll(code, "_", " ")
}

// when is the entry's date and time on this computer's clock, with the
// zone, written the language's way.
func (p *statementPage) when(e wire.Entry) string {
	if e.Wall.IsZero() {
		return "—"
	}
	return p.c.tr.DateTime(e.Wall.Local())
}

// layout is how the list is drawn at the page width.
type layout struct {
	lw, ww, dw, aw, bw int  // widths: L, when, description, amount, balance
	twoLines           bool // the date goes on a second line
}

// minDescription is the narrowest description column: room for "from "
// and a short account number.
const minDescription = 12

func (p *statementPage) layout() layout {
	tr := p.c.tr
	l := layout{lw: 1, aw: ansi.StringWidth(tr.T(i18n.StmtAmount)), bw: ansi.StringWidth(tr.T(i18n.StmtBalance))}
	for _, e := range p.entries {
		_, a, b := p.describe(e)
		l.lw = max(l.lw, len(strconv.FormatUint(e.TS, 10)))
		l.aw = max(l.aw, ansi.StringWidth(a))
		l.bw = max(l.bw, ansi.StringWidth(b))
		l.ww = max(l.ww, ansi.StringWidth(p.when(e)))
	}
	w := p.width
	// L when description amount balance, one space between columns.
	l.dw = w - l.lw - l.ww - l.aw - l.bw - 4
	if l.dw < minDescription {
		l.twoLines = true
		l.dw = max(4, w-l.lw-l.aw-l.bw-3)
	}
	return l
}

// perEntry is how many lines an entry takes.
func (l layout) perEntry() int {
	if l.twoLines {
		return 2
	}
	return 1
}

// pad fits s in w cells, in whole words, padded on the left (right
// aligned) or on the right.
func pad(s string, w int, right bool) string {
	s = i18n.Fit(s, w)
	gap := strings.Repeat(" ", max(0, w-ansi.StringWidth(s)))
	if right {
		return gap + s
	}
	return s + gap
}

// visible is how many entries fit on the screen: the title, the header and
// the footer take three lines.
func (p *statementPage) visible() int {
	return max(1, (p.height-3)/p.layout().perEntry())
}

// scrollTo selects entry i and scrolls so that it shows.
func (p *statementPage) scrollTo(i int) {
	if len(p.entries) == 0 {
		p.cursor, p.offset = 0, 0
		return
	}
	p.cursor = min(max(0, i), len(p.entries)-1)
	n := p.visible()
	if p.cursor < p.offset {
		p.offset = p.cursor
	}
	if p.cursor >= p.offset+n {
		p.offset = p.cursor - n + 1
	}
	p.offset = min(max(0, p.offset), max(0, len(p.entries)-n))
}

// more asks for the next page when the screen reaches the last entry loaded.
func (p *statementPage) more() intent {
	if p.next == 0 || p.loading || p.offset+p.visible() < len(p.entries) {
		return nil
	}
	p.loading = true
	return statementMoreMsg{before: p.next}
}

func (p *statementPage) Update(msg tea.Msg) (intent, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil, nil
	}
	keys := p.c.keys
	if p.detail {
		if key.Matches(k, keys.Back) {
			p.detail = false
		}
		return nil, nil
	}
	n := p.visible()
	switch {
	case key.Matches(k, keys.Back):
		return backMsg{}, nil
	case len(p.entries) == 0:
		return nil, nil
	case key.Matches(k, statementOpen):
		p.detail = true
		return nil, nil
	case key.Matches(k, keys.More):
		if p.next != 0 && !p.loading {
			p.loading = true
			return statementMoreMsg{before: p.next}, nil
		}
		return nil, nil
	case key.Matches(k, keys.Up):
		p.scrollTo(p.cursor - 1)
	case key.Matches(k, keys.Down):
		p.scrollTo(p.cursor + 1)
	case key.Matches(k, keys.PageUp):
		p.offset = max(0, p.offset-n)
		p.scrollTo(p.cursor - n)
	case key.Matches(k, keys.PageDown):
		// A page down shows the next page of entries.
		p.offset = min(p.offset+n, max(0, len(p.entries)-n))
		p.scrollTo(p.cursor + n)
	case key.Matches(k, keys.Top):
		p.scrollTo(0)
	case key.Matches(k, keys.Bottom):
		p.scrollTo(len(p.entries) - 1)
	default:
		return nil, nil
	}
	return p.more(), nil
}

func (p *statementPage) View() string {
	s, tr := p.c.styles, p.c.tr
	var b strings.Builder
	if p.detail && p.cursor < len(p.entries) {
		return p.detailView(p.entries[p.cursor])
	}
	b.WriteString(s.PageTitle.Render(tr.T(i18n.StmtTitle)) + s.Dim.Render(tr.T(i18n.StmtSubtitle)) + "\n")
	switch {
	case p.err != "":
		b.WriteString("\n" + p.wrap(s.Error, "✗ "+p.err) + "\n")
		return b.String()
	case p.loading && len(p.entries) == 0:
		b.WriteString("\n" + s.Dim.Render(tr.T(i18n.StmtLoading)) + "\n")
		return b.String()
	case len(p.entries) == 0:
		empty := tr.T(i18n.StmtEmpty)
		if p.archived {
			empty = tr.T(i18n.StmtAllArchived)
		}
		b.WriteString("\n" + s.Dim.Render(i18n.Fit(empty, p.width)) + "\n")
		return b.String()
	}
	l := p.layout()
	cells := func(lts, date, what, amount, balance string) string {
		parts := []string{pad(lts, l.lw, true)}
		if !l.twoLines {
			parts = append(parts, pad(date, l.ww, false))
		}
		parts = append(parts, pad(what, l.dw, false), pad(amount, l.aw, true), pad(balance, l.bw, true))
		return strings.Join(parts, " ")
	}
	head := tr.T(i18n.StmtWhen)
	if l.twoLines {
		head = ""
	}
	b.WriteString(s.Table.Header.UnsetPadding().Render(cells("L", head, tr.T(i18n.StmtEntry), tr.T(i18n.StmtAmount), tr.T(i18n.StmtBalance))) + "\n")
	n := p.visible()
	last := min(len(p.entries), p.offset+n)
	for i := p.offset; i < last; i++ {
		e := p.entries[i]
		what, amount, balance := p.describe(e)
		line := cells(strconv.FormatUint(e.TS, 10), p.when(e), what, amount, balance)
		second := ""
		if l.twoLines {
			second = pad(strings.Repeat(" ", l.lw+1)+p.when(e), p.width, false)
		}
		if i == p.cursor {
			line = s.Table.Selected.Render(pad(line, p.width, false))
			if l.twoLines {
				second = s.Table.Selected.Render(second)
			}
		} else {
			line = s.Text.Render(line)
			second = s.Dim.Render(second)
		}
		b.WriteString(line + "\n")
		if l.twoLines {
			b.WriteString(second + "\n")
		}
	}
	for i := last - p.offset; i < n; i++ {
		b.WriteString(strings.Repeat("\n", l.perEntry()))
	}
	var footer string
	switch {
	case p.next == 0 && p.archived:
		footer = tr.T(i18n.StmtArchived, p.offset+1, last, len(p.entries))
	case p.next == 0:
		footer = tr.T(i18n.StmtAll, p.offset+1, last, len(p.entries))
	case p.loading:
		footer = tr.T(i18n.StmtMoreLoading, p.offset+1, last)
	default:
		footer = tr.T(i18n.StmtMore, p.offset+1, last)
	}
	b.WriteString(s.Dim.Render(i18n.Fit(footer, p.width)))
	return b.String()
}

// detailView shows one entry in full, with its Lamport timestamps like a
// receipt.
func (p *statementPage) detailView(e wire.Entry) string {
	s, tr := p.c.styles, p.c.tr
	var b strings.Builder
	what, amount, balance := p.describe(e)
	b.WriteString(s.PageTitle.Render(tr.T(i18n.StmtEntryAt, strconv.FormatUint(e.TS, 10))) + "\n\n")
	b.WriteString(p.kv(tr.T(i18n.StmtEntry), what) + "\n")
	if amount != "" {
		sign := ""
		for _, c := range []string{"+", "-"} {
			if rest, ok := strings.CutPrefix(amount, c); ok {
				sign, amount = c, rest
			}
		}
		b.WriteString(p.kv(tr.T(i18n.FieldAmount), sign+"R$ "+amount) + "\n")
	}
	if balance != "" {
		b.WriteString(p.kv(tr.T(i18n.StmtBalanceAfter), "R$ "+balance) + "\n")
	}
	b.WriteString(p.kv(tr.T(i18n.StmtDate), p.when(e)) + "\n")
	bankName := e.Proc
	if bankName == "" {
		bankName = tr.T(i18n.TheBank)
	}
	num := func(v uint64) string {
		if v == 0 {
			return "—"
		}
		return strconv.FormatUint(v, 10)
	}
	applied := e.ApplyTS
	if applied == 0 {
		applied = e.TS
	}
	b.WriteString("\n" + s.PageTitle.Render(tr.T(i18n.LamportStamps)) + "\n")
	if p.received(e) {
		b.WriteString(p.kv(tr.T(i18n.StampAppliedBy, bankName), num(applied)) + "\n")
		b.WriteString(p.wrap(s.Dim, tr.T(i18n.StmtReceived, e.Account)) + "\n")
		return b.String()
	}
	client := e.Client
	if client == "" {
		client = tr.T(i18n.TheATM)
	}
	for _, l := range [][2]string{
		{tr.T(i18n.StampSentBy, client), num(e.ClientTS)},
		{tr.T(i18n.StampReceivedBy, bankName), num(e.RecvTS)},
		{tr.T(i18n.StampAppliedBy, bankName), num(applied)},
		{tr.T(i18n.StampAnsweredBy, bankName), num(e.ReplyTS)},
	} {
		b.WriteString(p.kv(l[0], l[1]) + "\n")
	}
	return b.String()
}
