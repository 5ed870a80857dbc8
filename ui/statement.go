package ui

import (
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	tea "charm.land/bubbletea/v2"

	"atm/bank"
)

// statementPageSize is how many entries are asked for at a time.
const statementPageSize = 50

// statementPage lists the account's entries, newest first, in a scrollable
// table; older pages load on demand.
type statementPage struct {
	c       *common
	table   table.Model
	entries []bank.Event
	next    uint64 // cursor of the next (older) page, 0 at the end
	loading bool
	err     string
}

type statementMoreMsg struct{ before uint64 }

func newStatementPage(c *common) *statementPage {
	p := &statementPage{c: c}
	km := table.DefaultKeyMap()
	p.table = table.New(table.WithKeyMap(km), table.WithFocused(true), table.WithStyles(c.styles.Table))
	return p
}

func (p *statementPage) start() {
	p.entries, p.next, p.loading, p.err = nil, 0, true, ""
	p.table.SetRows(nil)
	p.table.SetCursor(0)
	p.resize()
}

// loaded appends a page of entries.
func (p *statementPage) loaded(entries []bank.Event, next uint64) {
	p.loading = false
	p.entries = append(p.entries, entries...)
	p.next = next
	cur := p.table.Cursor()
	p.refresh()
	p.table.SetCursor(max(0, cur))
}

func (p *statementPage) failed(msg string) {
	p.loading = false
	p.err = msg
}

func (p *statementPage) Typing() bool { return false }

func (p *statementPage) applyStyles() { p.table.SetStyles(p.c.styles.Table) }

func (p *statementPage) Help() []key.Binding {
	k := p.c.keys
	b := []key.Binding{k.Up, k.Down, k.PageDown}
	if p.next != 0 {
		b = append(b, k.More)
	}
	return append(b, k.Back, k.Quit)
}

// columns sizes the table to the page width: the counterparty and the time
// of day appear when there is room. Amounts are in reais, without "R$".
func (p *statementPage) columns() []table.Column {
	w := p.c.width
	cols := []table.Column{
		{Title: "L", Width: 6},
		{Title: "Entry", Width: 10},
		{Title: "Amount", Width: 11},
		{Title: "Balance", Width: 12},
	}
	used := 6 + 10 + 11 + 12 + 4
	if w-used >= 10 {
		cols = append(cols, table.Column{Title: "With", Width: min(20, w-used-1)})
		used += min(20, w-used-1) + 1
	}
	if w-used >= 9 {
		cols = append(cols, table.Column{Title: "Time", Width: 8})
	}
	return cols
}

// money formats an amount for the table: "1.234,56", without "R$".
func money(c bank.Cents) string { return strings.TrimPrefix(FormatCents(c), "R$ ") }

// row renders one entry from the account's point of view.
func (p *statementPage) row(e bank.Event, ncols int) table.Row {
	me := p.c.sess.account
	kind, amount, with := e.Kind, "", ""
	switch e.Kind {
	case bank.KindDeposit:
		amount = "+" + money(e.Amount)
	case bank.KindWithdraw:
		amount = "-" + money(e.Amount)
	case bank.KindTransfer:
		if e.To == me && e.Account != me {
			kind, amount, with = "received", "+"+money(e.Amount), "from "+e.Account
		} else {
			kind, amount, with = "sent", "-"+money(e.Amount), "to "+e.To
		}
	case bank.KindPush:
		with = "from " + e.To
	}
	balance := ""
	switch e.Kind {
	case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer, bank.KindBalance, bank.KindOpen:
		balance = money(e.Balance)
		if e.Kind == bank.KindTransfer && e.To == me && e.Account != me {
			balance = money(e.ToBalance)
		}
	}
	if e.Outcome != "" && e.Outcome != bank.OutcomeOK {
		kind = "✗ " + kind
		balance = ""
		with = strings.ReplaceAll(e.Outcome, "_", " ")
	}
	r := table.Row{strconv.FormatUint(e.TS, 10), kind, amount, balance}
	if ncols > 4 {
		r = append(r, with)
	}
	if ncols > 5 {
		t := ""
		if !e.Wall.IsZero() {
			t = e.Wall.Local().Format("15:04:05")
		}
		r = append(r, t)
	}
	return r
}

func (p *statementPage) refresh() {
	cols := p.columns()
	rows := make([]table.Row, 0, len(p.entries))
	for _, e := range p.entries {
		rows = append(rows, p.row(e, len(cols)))
	}
	p.table.SetRows(nil)
	p.table.SetColumns(cols)
	p.table.SetRows(rows)
}

// resize fits the table in the page area (title and footer take 4 lines).
func (p *statementPage) resize() {
	p.table.SetWidth(p.c.width)
	p.table.SetHeight(max(3, p.c.height-4))
	p.refresh()
}

func (p *statementPage) Update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	switch {
	case key.Matches(k, p.c.keys.Back):
		return p.c.intent(backMsg{})
	case key.Matches(k, p.c.keys.More):
		if p.next != 0 && !p.loading {
			p.loading = true
			return p.c.intent(statementMoreMsg{before: p.next})
		}
		return nil
	}
	var cmd tea.Cmd
	p.table, cmd = p.table.Update(msg)
	// Reaching the last row loads the next page.
	if p.next != 0 && !p.loading && len(p.entries) > 0 && p.table.Cursor() == len(p.entries)-1 {
		p.loading = true
		return tea.Batch(cmd, p.c.intent(statementMoreMsg{before: p.next}))
	}
	return cmd
}

func (p *statementPage) View() string {
	s := p.c.styles
	var b strings.Builder
	b.WriteString(s.PageTitle.Render("Statement") + s.Dim.Render("  in R$, newest first") + "\n")
	switch {
	case p.err != "":
		b.WriteString("\n" + wrap(p.c, s.Error, "✗ "+p.err) + "\n")
		return b.String()
	case p.loading && len(p.entries) == 0:
		b.WriteString("\n" + s.Dim.Render("Loading…") + "\n")
		return b.String()
	case len(p.entries) == 0:
		b.WriteString("\n" + s.Dim.Render("No entries yet.") + "\n")
		return b.String()
	}
	b.WriteString(p.table.View() + "\n")
	footer := fmt.Sprintf("%d of %d entries", p.table.Cursor()+1, len(p.entries))
	switch {
	case p.loading:
		footer += " · loading older…"
	case p.next != 0:
		footer += " · more below (m)"
	default:
		footer += " · all loaded"
	}
	b.WriteString(s.Dim.Render(footer))
	return b.String()
}
