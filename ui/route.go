package ui

// The root model's routing: every message of the program, the keys, the
// keys typed ahead while the ATM waits, and what the screens ask for.

import (
	"context"
	"strings"

	"atm/netproto/client"
	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
)

// goLogin shows the login screen with empty fields.
func (m *Model) goLogin() tea.Cmd {
	m.page = pageLogin
	m.login.err = "" // the notice, if any, is the newer message
	return m.login.reset()
}

// Update handles every message of the program.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.setSize(msg.Width, msg.Height)
		return m, nil
	case tea.BackgroundColorMsg:
		m.setStyles(msg.IsDark())
		return m, nil
	case spinner.TickMsg:
		if m.busy == "" && m.page != pageConnect && m.pending == nil && !m.statementLoading() {
			return m, nil // let the spinner stop
		}
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		m.c.spinner = m.spinnerView()
		return m, cmd
	case clockEventsMsg:
		cmd := m.clockPanel.add(msg)
		if m.page == pageDiagram {
			m.showDiagram(false)
		}
		return m, tea.Batch(cmd, m.queue.wait())
	case clockFlashOffMsg:
		m.clockPanel.flashOff(msg.id)
		return m, nil
	case bannerClearMsg:
		m.conn.clearBanner(msg.id)
		return m, nil
	case noticeClearMsg:
		m.conn.clearNotice(msg.id)
		return m, nil
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	}
	if cmd, ok := m.handleConn(msg); ok {
		return m, cmd
	}
	m.noteReply(msg)
	wasBusy := m.busy != ""
	if cmd, ok := m.handleResult(msg); ok {
		if wasBusy && m.busy == "" {
			cmd = tea.Batch(cmd, m.replayTyped(refused(msg)))
		}
		return m, cmd
	}
	// Anything else (cursor blinks...) goes to the current screen.
	return m, m.updatePage(msg)
}

// updatePage passes msg to the current screen and does at once what the
// screen asks for, in the same update, so keys typed right after land on
// the screen it leads to.
func (m *Model) updatePage(msg tea.Msg) tea.Cmd {
	in, cmd := m.current().Update(msg)
	if in == nil {
		return cmd
	}
	return tea.Batch(cmd, m.handleIntent(in))
}

// maxTypeahead bounds the keys kept while the ATM waits for the bank.
const maxTypeahead = 64

// replayTyped applies the keys typed while the ATM was busy to the screen
// the answer brought, in order, as if they were typed now. They were meant
// for the screen after a success: when the bank refused (wrong PIN, unknown
// recipient) none is used, and neither does a receipt take any (it must be
// read, and Enter would dismiss it); the screen says how many were not used.
// A confirmation ignores them (see confirmGate). A key that starts another
// request keeps the rest for the screen after it.
func (m *Model) replayTyped(refused bool) tea.Cmd {
	keys := m.typeahead
	m.typeahead = nil
	var cmds []tea.Cmd
	for i, k := range keys {
		if refused || (m.page == pageReceipt && m.busy == "") {
			m.dropped = len(keys) - i
			break
		}
		cmds = append(cmds, m.handleKey(k))
	}
	return tea.Batch(cmds...)
}

// refused says an answer is the bank's no to a login or a lookup.
func refused(msg tea.Msg) bool {
	switch msg := msg.(type) {
	case loginResultMsg:
		return msg.err != nil
	case lookupResultMsg:
		return msg.err != nil
	}
	return false
}

func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	keys := m.c.keys
	if key.Matches(k, keys.QuitTyping) {
		return tea.Quit
	}
	if m.width < MinWidth || m.height < MinHeight {
		if key.Matches(k, keys.Quit) {
			return tea.Quit
		}
		return nil
	}
	if m.conn.offline && key.Matches(k, keys.Reconnect) {
		return m.retryNow()
	}
	if m.clockPanel.legend {
		if key.Matches(k, keys.Legend, keys.Back) {
			m.clockPanel.legend = false
		}
		return nil
	}
	if key.Matches(k, keys.Legend) { // no field of the ATM takes "?"
		m.clockPanel.legend = true
		return nil
	}
	if m.busy != "" {
		// One request at a time, but what is typed meanwhile is not lost:
		// it is kept for the screen that comes with the answer. Ctrl+c
		// still quits at once.
		if len(m.typeahead) < maxTypeahead {
			m.typeahead = append(m.typeahead, k)
		}
		return nil
	}
	m.dropped = 0
	if m.conn.refused != "" && k.Text == "" {
		m.conn.ackRefusal() // acknowledged, as a push notice
	}
	if !m.current().Typing() && key.Matches(k, keys.Quit) {
		return tea.Quit
	}
	if m.conn.notice != "" && k.Text == "" && !key.Matches(k, keys.Up, keys.Down) {
		// Any command key acknowledges a push notification.
		m.conn.ackNotice()
	}
	return m.updatePage(k)
}

// handleIntent turns what a screen asked for into a request.
func (m *Model) handleIntent(in intent) tea.Cmd {
	if m.held(in) {
		return nil
	}
	tr := m.c.tr
	switch msg := in.(type) {
	case retryNowMsg:
		return m.dialNow()
	case loginSubmitMsg:
		return m.call(tr.T(i18n.BusyLogin), func(ctx context.Context, c Client) tea.Msg {
			r, err := c.Login(ctx, msg.account, msg.pin)
			return loginResultMsg{account: msg.account, reply: r, err: err}
		})
	case menuChoiceMsg:
		return m.menuChoice(msg.item)
	case amountSubmitMsg:
		return m.submitAmount(msg)
	case lookupSubmitMsg:
		return m.call(tr.T(i18n.BusyLookup, msg.account), func(ctx context.Context, c Client) tea.Msg {
			r, err := c.Lookup(ctx, msg.account)
			return lookupResultMsg{account: msg.account, reply: r, err: err}
		})
	case transferSubmitMsg:
		return m.call(tr.T(i18n.BusyTransfer), func(ctx context.Context, c Client) tea.Msg {
			r, err := c.Transfer(ctx, msg.to, msg.amount)
			return opResultMsg{op: opTransfer, amount: msg.amount, to: msg.to, toHolder: msg.toHolder, reply: r, err: err}
		})
	case statementMoreMsg:
		return m.fetchStatement(msg.before)
	case diagramMsg:
		m.page = pageDiagram
		m.showDiagram(true)
		return nil
	case backMsg:
		if m.relogin && m.pending == nil {
			return m.endSessionAuto(tr.T(i18n.SessionDropped))
		}
		if !m.sess.loggedIn() {
			return m.goLogin()
		}
		m.page = pageMenu
		return nil
	}
	return nil
}

// held says the ATM cannot do now what a screen asked for, and tells the
// person where they must know: there is no connection, the ATM is
// offline, or an operation's outcome is unknown.
func (m *Model) held(in intent) bool {
	if m.client == nil {
		switch in.(type) {
		case loginSubmitMsg, menuChoiceMsg, amountSubmitMsg, lookupSubmitMsg, transferSubmitMsg, statementMoreMsg:
			return true
		}
	}
	if m.conn.offline && sendsRequest(in) {
		// Nothing is queued for later: a request the person can no
		// longer see must never reach the bank.
		m.conn.refuse(m.c.tr.T(i18n.OfflineRefusal))
		return true
	}
	if m.pending != nil && startsMoneyOp(in) {
		// Whatever the bank did with the pending operation must be known
		// before anything else moves money, or the session ends.
		m.menu.notice = m.pendingBlock()
		m.page = pageMenu
		return true
	}
	return false
}

// menuChoice does what the menu's item stands for.
func (m *Model) menuChoice(item menuItem) tea.Cmd {
	tr := m.c.tr
	switch item {
	case itemBalance:
		return m.call(tr.T(i18n.BusyBalance), func(ctx context.Context, c Client) tea.Msg {
			r, err := c.Balance(ctx)
			return opResultMsg{op: "balance", reply: r, err: err}
		})
	case itemDeposit, itemWithdraw:
		op := opDeposit
		if item == itemWithdraw {
			op = opWithdraw
		}
		m.page = pageAmount
		return m.amount.start(op)
	case itemTransfer:
		m.page = pageTransfer
		return m.transfer.start()
	case itemStatement:
		m.page = pageStatement
		m.statement.start()
		return m.fetchStatement(0)
	case itemLogout:
		return m.endSession(goodbye(tr, m.sess.holder))
	}
	return nil
}

// submitAmount asks the bank for the deposit or withdrawal of msg.
func (m *Model) submitAmount(msg amountSubmitMsg) tea.Cmd {
	what := m.c.tr.T(i18n.BusyDeposit)
	if msg.op == opWithdraw {
		what = m.c.tr.T(i18n.BusyWithdraw)
	}
	return m.call(what, func(ctx context.Context, c Client) tea.Msg {
		var r client.Reply
		var err error
		if msg.op == opWithdraw {
			r, err = c.Withdraw(ctx, msg.amount)
		} else {
			r, err = c.Deposit(ctx, msg.amount)
		}
		return opResultMsg{op: msg.op, amount: msg.amount, reply: r, err: err}
	})
}

// sendsRequest says the screen's msg would send a request to the bank
// (logging out, which ends the session here at once, is not refused).
func sendsRequest(in intent) bool {
	switch msg := in.(type) {
	case menuChoiceMsg:
		return msg.item == itemBalance || msg.item == itemStatement
	case loginSubmitMsg, amountSubmitMsg, lookupSubmitMsg, transferSubmitMsg, statementMoreMsg:
		return true
	}
	return false
}

// startsMoneyOp says msg would start a money operation or end the session.
func startsMoneyOp(in intent) bool {
	switch msg := in.(type) {
	case menuChoiceMsg:
		switch msg.item {
		case itemDeposit, itemWithdraw, itemTransfer, itemLogout:
			return true
		}
	case amountSubmitMsg, lookupSubmitMsg, transferSubmitMsg:
		return true
	}
	return false
}

func goodbye(tr *i18n.Printer, name string) string {
	if f, _, _ := strings.Cut(name, " "); f != "" {
		return tr.T(i18n.GoodbyeName, f)
	}
	return tr.T(i18n.Goodbye)
}
