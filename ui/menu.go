package ui

import (
	"strconv"
	"strings"

	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// menuItem is one choice of the main menu.
type menuItem int

const (
	itemBalance menuItem = iota
	itemDeposit
	itemWithdraw
	itemTransfer
	itemStatement
	itemLogout
	numItems
)

var menuLabels = [numItems]struct{ title, desc i18n.Key }{
	{i18n.MenuBalance, i18n.MenuBalanceDesc},
	{i18n.MenuDeposit, i18n.MenuDepositDesc},
	{i18n.MenuWithdraw, i18n.MenuWithdrawDesc},
	{i18n.MenuTransfer, i18n.MenuTransferDesc},
	{i18n.MenuStatement, i18n.MenuStatementDesc},
	{i18n.MenuLogout, i18n.MenuLogoutDesc},
}

// menuPage is the main menu: arrows or j/k, number shortcuts, enter.
type menuPage struct {
	base
	cursor menuItem
	notice string // why a choice cannot be made now
}

type menuChoiceMsg struct{ item menuItem }

func (p *menuPage) Typing() bool { return false }
func (p *menuPage) applyStyles() {}

func (p *menuPage) Help() []key.Binding {
	k := p.c.keys
	// Up and down share an entry, so that the bar keeps q and ? at 80 columns.
	move := key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑↓", p.c.tr.T(i18n.KeyMove)))
	return []key.Binding{move, k.Shortcut, k.Select, k.Diagram, k.Quit}
}

func (p *menuPage) Update(msg tea.Msg) (intent, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil, nil
	}
	keys := p.c.keys
	p.notice = ""
	switch {
	case key.Matches(k, keys.Up):
		p.cursor = (p.cursor + numItems - 1) % numItems
	case key.Matches(k, keys.Down):
		p.cursor = (p.cursor + 1) % numItems
	case key.Matches(k, keys.Select):
		return menuChoiceMsg{p.cursor}, nil
	case key.Matches(k, keys.Diagram):
		return diagramMsg{}, nil
	case key.Matches(k, keys.Shortcut):
		n, _ := strconv.Atoi(k.String())
		p.cursor = menuItem(n - 1)
		return menuChoiceMsg{p.cursor}, nil
	}
	return nil, nil
}

// desc is the description after a menu item, in whole words that fit
// beside it.
func (p *menuPage) desc(item, text string) string {
	room := p.width - lipgloss.Width(item) - 2
	if room < 4 {
		return ""
	}
	return "  " + p.c.styles.Dim.Render(i18n.Fit(text, room))
}

func (p *menuPage) View() string {
	s, tr := p.c.styles, p.c.tr
	var b strings.Builder
	b.WriteString(s.PageTitle.Render(tr.T(i18n.MenuTitle)) + "\n\n")
	for i := range numItems {
		l := menuLabels[i]
		num := strconv.Itoa(int(i) + 1)
		if i == p.cursor {
			item := s.MenuCurrent.Render("› " + num + "  " + tr.T(l.title))
			b.WriteString(item + p.desc(item, tr.T(l.desc)) + "\n")
		} else {
			b.WriteString("  " + s.MenuKey.Render(num) + "  " + s.MenuItem.Render(tr.T(l.title)) + "\n")
		}
	}
	item := "  " + s.MenuKey.Render("d") + "  " + s.MenuItem.Render(tr.T(i18n.MenuDiagram))
	b.WriteString("\n" + item + p.desc(item, tr.T(i18n.MenuDiagramDesc)) + "\n")
	if p.notice != "" {
		b.WriteString("\n" + p.wrap(s.Warning, p.notice) + "\n")
	}
	return b.String()
}
