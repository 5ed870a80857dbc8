package ui

// The root model's view: the title bar, the ATM and clock panels, the
// notice cards, the status line and the help bar.

import (
	"strconv"
	"strings"

	"atm/netproto/wire"
	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// stamp writes a Lamport timestamp: digits only, in every language.
func stamp(ts uint64) string { return strconv.FormatUint(ts, 10) }

// statementLoading says the statement screen waits for the bank.
func (m *Model) statementLoading() bool {
	return m.page == pageStatement && m.statement.loading
}

// helpBindings are the keys of the help bar: the screen's, or while the
// ATM waits, what typing does then.
func (m *Model) helpBindings() []key.Binding {
	if m.busy == "" {
		return m.current().Help()
	}
	k := m.c.keys
	kept := k.TypeAhead
	if n := len(m.typeahead); n > 0 {
		kept.SetHelp(kept.Help().Key, m.c.tr.T(i18n.TypeAheadSoFar, kept.Help().Desc, n))
	}
	return []key.Binding{kept, k.QuitTyping}
}

// View renders the whole screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = m.c.tr.T(i18n.WindowTitle, m.cfg.BankName, m.cfg.ProcessID)
	return v
}

// render draws the screen as a string of exactly height lines.
func (m *Model) render() string {
	if m.width < MinWidth || m.height < MinHeight {
		return m.tooSmall()
	}
	title := m.titleBar()
	var body string
	helpKeys := m.helpBindings()
	if m.conn.offline {
		helpKeys = append([]key.Binding{m.c.keys.Reconnect}, helpKeys...)
	}
	helpKeys = append(helpKeys, m.c.keys.Legend)
	if m.clockPanel.legend {
		body = m.clockPanel.legendView(m.width, max(1, m.height-3))
		helpKeys = []key.Binding{m.legendClose(), m.c.keys.QuitTyping}
	} else if m.page == pageDiagram {
		body = m.diagram.View()
	} else {
		body = lipgloss.JoinHorizontal(lipgloss.Top, m.atmPanel(), m.clockPanel.viewWithCard(m.cardsAside()))
	}
	status := m.statusLine()
	helpLine := " " + m.help.ShortHelpView(helpKeys)
	out := strings.Join([]string{title, body, status, helpLine}, "\n")
	return fitLines(out, m.width, m.height)
}

func (m *Model) tooSmall() string {
	s := m.c.styles
	msg := m.c.tr.T(i18n.TooSmall, MinWidth, MinHeight, m.width, m.height)
	sub := m.c.tr.T(i18n.TooSmallHint)
	w := max(1, m.width)
	block := s.TooSmall.Width(w).Align(lipgloss.Center).Render(msg) + "\n" + s.Dim.Width(w).Align(lipgloss.Center).Render(sub)
	return fitLines(lipgloss.Place(w, max(1, m.height), lipgloss.Center, lipgloss.Center, block), w, max(1, m.height))
}

// addr is the address of the server the ATM is on, or the configured
// address(es) when the client does not say.
func (m *Model) addr() string {
	if m.serverAddr != "" {
		return m.serverAddr
	}
	return m.cfg.Addr
}

func (m *Model) titleBar() string {
	s := m.c.styles
	tr := m.c.tr
	left := s.TitleBrand.Render(" ◆ "+m.cfg.BankName) + s.TitleInfo.Render("  "+tr.T(i18n.TitleATM, m.cfg.ProcessID))
	right := tr.T(i18n.TitleBank, m.cfg.Addr)
	if m.server != "" {
		right = m.server + " @ " + m.addr()
	}
	if m.embedded != nil {
		right += tr.T(i18n.TitleEmbedded)
	}
	right = s.TitleInfo.Render(right + " ")
	gap := m.width - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		right = ansi.Truncate(right, max(0, m.width-lipgloss.Width(left)-1), "…")
		gap = max(1, m.width-lipgloss.Width(left)-lipgloss.Width(right))
	}
	return left + s.TitleBar.Render(strings.Repeat(" ", gap)) + right
}

func (m *Model) atmPanel() string {
	s, tr := m.c.styles, m.c.tr
	w := m.area.width
	var head string
	if m.sess.loggedIn() {
		who := s.ScreenHead.Render(m.sess.holder) + s.Dim.Render(tr.T(i18n.HeadAccount, m.sess.account))
		bal := ""
		if m.sess.hasBalance {
			st := s.Money
			if m.conn.hot {
				st = s.BannerPush
			}
			bal = st.Render(m.sess.balance.String())
		}
		gap := max(1, w-lipgloss.Width(who)-lipgloss.Width(bal))
		head = ansi.Truncate(who+strings.Repeat(" ", gap)+bal, w, "…")
	} else {
		head = s.ScreenHead.Render(tr.T(i18n.HeadTeller)) + s.Dim.Render(" · "+m.cfg.ProcessID)
	}
	rule := s.ScreenRule.Render(strings.Repeat("─", w))
	content := strings.TrimRight(m.current().View(), "\n")
	if card, ok := m.cardsHere(content); ok {
		content = fitLines(content, w, m.area.height-lipgloss.Height(card)) + "\n" + card
	}
	content = fitLines(content, w, m.area.height)
	// The busy line: a spinner, maybe, and what the ATM waits for, in
	// whole words.
	spin, text, st := "", "", s.Text
	switch {
	case m.busy != "":
		spin, text = m.spinner.View()+" ", m.busy
	case m.pending != nil:
		spin, text, st = m.spinner.View(), tr.T(i18n.BusyUnknown), s.Warning
	case m.conn.offline:
		text, st = tr.T(i18n.BusyOffline), s.Warning
	case m.statementLoading():
		spin, text = m.spinner.View()+" ", tr.T(i18n.BusyStatement)
	case m.dropped > 0:
		text, st = tr.T(i18n.KeysDropped, m.dropped), s.Warning
	}
	busy := ""
	if text != "" {
		busy = spin + st.Render(i18n.Fit(text, max(1, w-ansi.StringWidth(spin))))
	}
	inner := strings.Join([]string{head, rule, content, busy}, "\n")
	return s.Screen.Width(m.width - m.clockWidth()).Render(inner)
}

// cards are the notices of the moment, in cards of width w: a request
// refused while offline, and the last push ("" when there are none).
func (m *Model) cards(w int) string {
	var cards []string
	if m.conn.refused != "" {
		s := m.c.styles
		box := lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(s.Warn).Padding(0, 1).Width(w)
		cards = append(cards, box.Render(s.Warning.Width(max(1, w-4)).Render(m.conn.refused)))
	}
	if m.conn.notice != "" {
		cards = append(cards, m.pushCard(w))
	}
	return strings.Join(cards, "\n")
}

// cardsHere returns the cards when they go in the ATM panel, below the
// screen's content: when they fit there whole. Otherwise the clock panel
// shows them (cardsAside), so they never hide the screen.
func (m *Model) cardsHere(content string) (string, bool) {
	card := m.cards(m.area.width)
	if card == "" || lipgloss.Height(content)+lipgloss.Height(card) > m.area.height {
		return "", false
	}
	return card, true
}

// cardsAside are the cards for the clock panel, when they do not fit in the
// ATM panel ("" when there are none, or they do).
func (m *Model) cardsAside() string {
	if m.conn.refused == "" && m.conn.notice == "" {
		return ""
	}
	if _, here := m.cardsHere(strings.TrimRight(m.current().View(), "\n")); here {
		return ""
	}
	return m.cards(m.clockPanel.innerWidth())
}

// pushCard shows the last push: money that arrived, or a change another
// session made on the account.
func (m *Model) pushCard(w int) string {
	s, tr := m.c.styles, m.c.tr
	p := m.conn.push
	inner := max(1, w-4)
	var lines []string
	if p.Kind == wire.PushTransferIn || p.Kind == "" {
		from := p.From
		if p.FromHolder != "" {
			from += " · " + p.FromHolder
		}
		lines = append(lines,
			s.BannerPush.Width(inner).Render(pushHeadline(tr, p, true)),
			s.Text.Width(inner).Render(tr.T(i18n.PushFrom, from)))
		if p.HasBalance {
			lines = append(lines, s.Text.Render(tr.T(i18n.PushBalanceNow))+s.Value.Render(p.Balance.String()))
		}
	} else {
		lines = append(lines, s.BannerPush.Width(inner).Render(pushHeadline(tr, p, true)))
	}
	if !p.HasBalance {
		lines = append(lines, s.Dim.Width(inner).Render(tr.T(i18n.PushInBalance)))
	}
	lines = append(lines, s.Dim.Width(inner).Render(tr.T(i18n.PushStamps, stamp(p.TS), stamp(p.RecvTS))))
	box := lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(s.Push).Padding(0, 1).Width(w)
	return box.Render(strings.Join(lines, "\n"))
}

func (m *Model) statusLine() string {
	s := m.c.styles
	var text string
	var st lipgloss.Style
	switch {
	case m.conn.offline:
		text, st = m.conn.offlineLine(m.c.tr), s.BannerBad
	case m.conn.badNews():
		text, st = m.conn.banner, s.BannerBad
	case m.conn.notice != "":
		text, st = m.conn.notice, s.BannerPush
	case m.conn.banner != "":
		text, st = m.conn.banner, s.BannerGood
	case m.embedded != nil:
		text, st = m.c.tr.T(i18n.StatusEmbedded, m.embedded.Addr()), s.BannerInfo
	case m.client != nil:
		text, st = m.c.tr.T(i18n.StatusConnected, m.server, m.addr()), s.BannerInfo
	default:
		return " "
	}
	return " " + st.Render(i18n.Fit(text, m.width-1))
}
