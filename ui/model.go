// Package ui is the ATM: a full-screen terminal app on the bank's protocol
// client, with the ATM's Lamport clock always on screen.
//
// The root Model owns the connection and the session and switches between
// screens (connect, login, menu, forms, receipt, statement). Screens never do
// I/O: they emit typed messages, the root turns them into commands that call
// the client, and the answers come back as messages. The client's clock
// events, pushes and connection changes reach the program the same way.
package ui

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"atm/netproto/client"
	"atm/netproto/retry"
	"atm/netproto/wire"

	"atm/bank/lamport"
	"atm/bank/money"
	"atm/bank/outcome"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Minimum terminal size the layout is designed for.
const (
	MinWidth  = 80
	MinHeight = 24
)

// Config tells the ATM where the bank is.
type Config struct {
	// Addr is the server's address; default wire.DefaultAddr.
	Addr string
	// Embedded makes the ATM start a server in this process, on Addr and
	// DBPath, when nobody answers at Addr (also when the server it was using
	// goes away). `atm --server HOST:PORT` runs with Embedded off.
	Embedded bool
	// DBPath is the database StartServer serves (atm sets its default).
	DBPath string
	// ProcessID is this ATM's id on the wire and on screen; default
	// "atm-" and 4 random letters and digits.
	ProcessID string
	// BankName is shown in the title bar.
	BankName string
	// Dial opens a connection; default DialNetproto.
	Dial DialFunc
	// RequestTimeout bounds each request, reconnection included; default 30s.
	RequestTimeout time.Duration
	// StartServer starts a bank server inside this process, serving DBPath
	// on addr. Without it, Embedded is ignored: the ATM only dials.
	StartServer func(addr, dbPath string) (LocalServer, error)
}

type pageID int

const (
	pageConnect pageID = iota
	pageLogin
	pageMenu
	pageAmount
	pageTransfer
	pageReceipt
	pageStatement
)

// Model is the root model of the ATM.
type Model struct {
	cfg        Config
	c          *common
	sess       session
	queue      *eventQueue
	clock      *lamport.Clock
	clockPanel clockPanel
	spinner    spinner.Model
	help       help.Model

	width, height int
	page          pageID
	connect       *connectPage
	login         *loginPage
	menu          *menuPage
	amount        *amountPage
	transfer      *transferPage
	receipt       *receiptPage
	statement     *statementPage

	client   Client
	gen      int // connection generation: messages of older clients are ignored
	server   string
	embedded LocalServer
	starting bool // an embedded server is being started
	retryID  int
	// redial spaces the attempts to reach the bank from the connect
	// screen, with jitter so that ATMs do not all come back at once.
	redial retry.Backoff

	busy    string // what is in flight ("" when idle)
	relogin bool   // the connection dropped during the session: log in again
	// pending is a money operation whose outcome is unknown: no answer
	// came in time. The ATM asks the bank until it knows, and meanwhile
	// starts no other money operation.
	pending *pendingOp

	// typeahead holds the keys typed while busy, for the next screen;
	// dropped counts those a receipt did not take (shown until a key).
	typeahead []tea.KeyPressMsg
	dropped   int

	banner     string // connection trouble, shown above the help bar
	bannerBad  bool
	bannerID   int
	notice     string // a push that just arrived
	lastPush   client.Push
	noticeID   int
	balanceHot bool // highlight the balance after a push

	// offline: the client lost the connection and is reconnecting by
	// itself; requests are refused meanwhile (refused says so).
	offline    bool
	offAttempt int           // the reconnection attempt announced last (0: none yet)
	offDelay   time.Duration // its wait
	offRetry   bool          // the person asked to retry now
	refused    string
}

// New returns the ATM's root model.
func New(cfg Config) *Model {
	if cfg.Addr == "" {
		cfg.Addr = wire.DefaultAddr
	}
	if cfg.Dial == nil {
		cfg.Dial = DialNetproto
	}
	if cfg.StartServer == nil {
		cfg.Embedded = false
	}
	if cfg.BankName == "" {
		cfg.BankName = "BANCO LAMPORT"
	}
	if cfg.ProcessID == "" {
		cfg.ProcessID = "atm-" + strings.ToLower(rand.Text()[:4])
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = client.DefaultRequestTimeout
	}
	m := &Model{cfg: cfg, queue: newEventQueue(), clock: lamport.NewClock(0),
		redial: retry.Backoff{Min: 500 * time.Millisecond, Max: 3 * time.Second}}
	m.c = &common{styles: NewStyles(true), keys: DefaultKeyMap(), sess: &m.sess}
	m.clockPanel = clockPanel{c: m.c, proc: cfg.ProcessID}
	m.spinner = spinner.New(spinner.WithSpinner(spinner.Dot))
	m.help = help.New()
	m.connect = &connectPage{c: m.c, addr: cfg.Addr, dbPath: cfg.DBPath}
	m.login = newLoginPage(m.c)
	m.menu = &menuPage{c: m.c}
	m.amount = newAmountPage(m.c)
	m.transfer = newTransferPage(m.c)
	m.receipt = &receiptPage{c: m.c, clockPanel: &m.clockPanel}
	m.statement = newStatementPage(m.c)
	m.setStyles(true)
	m.setSize(MinWidth, MinHeight)
	return m
}

func (m *Model) spinnerView() string { return m.spinner.View() }

// ProcessID is this ATM's process id.
func (m *Model) ProcessID() string { return m.cfg.ProcessID }

// Close logs out, closes the connection and stops the embedded server, if
// any. Call it after the program has ended.
func (m *Model) Close() error {
	m.queue.close()
	var err error
	if m.client != nil {
		if m.sess.loggedIn() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = m.client.Logout(ctx)
			cancel()
		}
		err = m.client.Close()
	}
	if m.embedded != nil {
		err = errors.Join(err, m.embedded.Close())
		m.embedded = nil
	}
	return err
}

func (m *Model) setStyles(isDark bool) {
	m.c.styles = NewStyles(isDark)
	m.spinner.Style = m.c.styles.SpinnerStyle
	m.c.spinner = m.spinnerView()
	m.help.Styles = m.c.styles.Help
	for _, p := range m.pages() {
		p.applyStyles()
	}
}

func (m *Model) pages() []page {
	return []page{m.connect, m.login, m.menu, m.amount, m.transfer, m.receipt, m.statement}
}

func (m *Model) current() page { return m.pages()[m.page] }

// Layout: title bar, body (ATM panel | clock panel), status line, help bar.
func (m *Model) clockWidth() int {
	if m.width >= 100 {
		return min(46, m.width*2/5)
	}
	return 34
}

func (m *Model) setSize(w, h int) {
	m.width, m.height = w, h
	m.help.SetWidth(w)
	bodyH := max(1, h-3)
	m.clockPanel.SetSize(m.clockWidth(), bodyH)
	atmW := w - m.clockWidth()
	m.c.width = max(20, atmW-m.c.styles.Screen.GetHorizontalFrameSize())
	// Border (2), header and rule (2), busy line (1).
	m.c.height = max(3, bodyH-m.c.styles.Screen.GetVerticalFrameSize()-3)
	m.login.account.SetWidth(m.c.width - 4)
	m.login.pin.SetWidth(m.c.width - 4)
	m.amount.field.input.SetWidth(m.c.width - 8)
	m.transfer.to.SetWidth(m.c.width - 4)
	m.transfer.field.input.SetWidth(m.c.width - 8)
	m.statement.resize()
}

// Init starts the connection and the clock event listener.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.queue.wait(), tea.RequestBackgroundColor, m.dial(), m.spinner.Tick)
}

// Messages of the root model.
type (
	dialResultMsg struct {
		client Client
		err    error
	}
	embeddedResultMsg struct {
		srv LocalServer
		err error
		// redial after a successful start (false when a running client
		// reconnects on its own)
		redial bool
	}
	retryMsg       struct{ id int }
	bannerClearMsg struct{ id int }
	noticeClearMsg struct{ id int }
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
func opNoun(op string, amount money.Cents, to string) string {
	switch op {
	case opDeposit:
		return "deposit of " + amount.String()
	case opWithdraw:
		return "withdrawal of " + amount.String()
	case opTransfer:
		return "transfer of " + amount.String() + " to " + to
	}
	return op
}

// pendingBlock explains why another operation cannot start.
func (m *Model) pendingBlock() string {
	p := m.pending
	return fmt.Sprintf("The outcome of your %s is not known yet; the ATM is checking with the bank. Wait until it is known before another operation, so that nothing is done twice.",
		opNoun(p.op, p.amount, p.to))
}

func (m *Model) dial() tea.Cmd {
	cfg := m.cfg
	opts := client.Options{
		ProcessID:      cfg.ProcessID,
		Clock:          m.clock,
		DialTimeout:    3 * time.Second,
		RequestTimeout: cfg.RequestTimeout,
		Reconnect:      true,
		OnEvent:        m.queue.add,
	}
	m.connect.retryIn = 0
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		c, err := cfg.Dial(ctx, cfg.Addr, opts)
		return dialResultMsg{client: c, err: err}
	}
}

func (m *Model) startServer(redial bool) tea.Cmd {
	if m.starting || m.embedded != nil {
		return nil
	}
	m.starting = true
	start, addr, db := m.cfg.StartServer, m.cfg.Addr, m.cfg.DBPath
	return func() tea.Msg {
		srv, err := start(addr, db)
		return embeddedResultMsg{srv: srv, err: err, redial: redial}
	}
}

func (m *Model) scheduleRetry() tea.Cmd {
	m.retryID++
	id := m.retryID
	d := m.redial.Next()
	m.connect.retryIn = d
	return tea.Tick(d, func(time.Time) tea.Msg { return retryMsg{id} })
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

func (m *Model) setBanner(text string, bad bool, clearAfter time.Duration) tea.Cmd {
	m.banner, m.bannerBad = text, bad
	m.bannerID++
	if clearAfter <= 0 {
		return nil
	}
	id := m.bannerID
	return tea.Tick(clearAfter, func(time.Time) tea.Msg { return bannerClearMsg{id} })
}

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
		return m, tea.Batch(m.clockPanel.add(msg), m.queue.wait())
	case clockFlashOffMsg:
		m.clockPanel.flashOff(msg.id)
		return m, nil
	case bannerClearMsg:
		if msg.id == m.bannerID {
			m.banner = ""
		}
		return m, nil
	case noticeClearMsg:
		if msg.id == m.noticeID {
			m.notice, m.balanceHot = "", false
		}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	}
	if cmd, ok := m.handleConn(msg); ok {
		return m, cmd
	}
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
	if m.offline && key.Matches(k, keys.Reconnect) {
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
	if m.refused != "" && k.Text == "" {
		m.refused = "" // acknowledged, as a push notice
	}
	if !m.current().Typing() && key.Matches(k, keys.Quit) {
		return tea.Quit
	}
	if m.notice != "" && k.Text == "" && !key.Matches(k, keys.Up, keys.Down) {
		// Any command key acknowledges a push notification.
		m.noticeID++
		m.notice, m.balanceHot = "", false
	}
	return m.updatePage(k)
}

// handleConn deals with the connection: dialing, the embedded server,
// retries, connection status and pushes.
func (m *Model) handleConn(msg tea.Msg) (tea.Cmd, bool) {
	switch msg := msg.(type) {
	case dialResultMsg:
		if msg.err != nil {
			m.connect.err = msg.err
			m.connect.attempt++
			if m.cfg.Embedded && m.embedded == nil {
				m.connect.starting = true
				if cmd := m.startServer(true); cmd != nil {
					return cmd, true
				}
			}
			return m.scheduleRetry(), true
		}
		m.client = msg.client
		m.gen++
		m.server = msg.client.Hello().Server
		m.c.maxAmount = msg.client.Hello().MaxAmount
		m.clockPanel.server = m.server
		m.connect.err, m.connect.embedErr, m.connect.attempt = nil, nil, 0
		m.redial.Reset()
		return tea.Batch(m.goLogin(), waitPush(m.gen, m.client), waitStatus(m.gen, m.client)), true
	case embeddedResultMsg:
		m.starting = false
		m.connect.starting = false
		if msg.err != nil {
			m.connect.embedErr = msg.err
			if msg.redial {
				return m.scheduleRetry(), true
			}
			return nil, true
		}
		m.embedded = msg.srv
		m.connect.embedErr = nil
		if msg.redial {
			m.login.notice = fmt.Sprintf("No bank server was answering, so this ATM started one on %s with the database %s. Other ATMs will use it.", msg.srv.Addr(), tildeHome(msg.srv.DBPath()))
			return m.dial(), true
		}
		return m.setBanner("The bank's server went away; this ATM now runs it on "+msg.srv.Addr()+".", false, 8*time.Second), true
	case retryMsg:
		if msg.id == m.retryID && m.client == nil {
			return tea.Batch(m.dial(), m.spinner.Tick), true
		}
		return nil, true
	case pushMsg:
		if msg.gen != m.gen {
			return nil, true
		}
		return tea.Batch(m.onPush(msg.push), waitPush(m.gen, m.client)), true
	case clientClosedMsg:
		return nil, true // nothing more to do: a new connection is on its way
	case statusMsg:
		if msg.gen != m.gen {
			return nil, true
		}
		if msg.closed {
			return m.lostClient(), true
		}
		return tea.Batch(m.onStatus(msg.status), waitStatus(m.gen, m.client)), true
	}
	return nil, false
}

func (m *Model) onPush(p client.Push) tea.Cmd {
	if m.sess.loggedIn() && p.HasBalance && (p.Account == "" || p.Account == m.sess.account) {
		m.sess.balance, m.sess.hasBalance = p.Balance, true
	}
	m.lastPush = p
	m.notice = pushHeadline(p)
	if p.Kind == wire.PushTransferIn || p.Kind == "" {
		from := p.From
		if p.FromHolder != "" {
			from += " " + p.FromHolder
		}
		m.notice = fmt.Sprintf("↓ %s received from %s", p.Amount.String(), from)
		if p.HasBalance {
			m.notice += " · balance " + p.Balance.String()
		}
		m.notice += fmt.Sprintf(" · L=%d", p.RecvTS)
	}
	m.balanceHot = p.HasBalance
	m.noticeID++
	id := m.noticeID
	return tea.Tick(15*time.Second, func(time.Time) tea.Msg { return noticeClearMsg{id} })
}

// pushHeadline says what a push reports: "↓ Money arrived: +R$ 25,00", or
// "Balance changed at another ATM: withdrawal of R$ 50,00 → R$ 950,00".
func pushHeadline(p client.Push) string {
	switch p.Kind {
	case wire.PushTransferIn, "":
		return "↓ Money arrived: +" + p.Amount.String()
	}
	var what string
	switch p.Kind {
	case wire.PushDeposit:
		what = opNoun(opDeposit, p.Amount, "")
	case wire.PushWithdraw:
		what = opNoun(opWithdraw, p.Amount, "")
	case wire.PushTransferOut:
		what = opNoun(opTransfer, p.Amount, p.To)
	default:
		what = p.Kind + " of " + p.Amount.String()
	}
	text := "Balance changed at another ATM: " + what
	if p.HasBalance {
		text += " → " + p.Balance.String()
	}
	return text
}

// dialNow dials at once, when the person asks on the connect screen.
func (m *Model) dialNow() tea.Cmd {
	if m.client != nil || m.starting {
		return nil
	}
	m.retryID++
	return tea.Batch(m.dial(), m.spinner.Tick)
}

// retrier is a client that can cut its reconnection's wait short
// (*client.Client).
type retrier interface{ RetryNow() }

// retryNow asks the client to try the connection at once.
func (m *Model) retryNow() tea.Cmd {
	r, ok := m.client.(retrier)
	if !ok {
		return nil
	}
	m.offRetry, m.refused = true, ""
	return func() tea.Msg {
		r.RetryNow()
		return nil
	}
}

// offlineRefusal is what the ATM says of a request it did not send.
const offlineRefusal = "The bank is unreachable; your request was not sent. Press r to retry the connection."

// offlineLine is the status line while offline.
func (m *Model) offlineLine() string {
	switch {
	case m.offRetry:
		return "⚠ Offline — retrying the connection now…"
	case m.offAttempt == 0:
		return "⚠ Offline — connection to the bank lost, reconnecting…"
	}
	return fmt.Sprintf("⚠ Offline — reconnecting (attempt %d, next in %s)", m.offAttempt, waitText(m.offDelay))
}

// waitText is a reconnection wait as the status line says it: "2 s",
// "0.4 s".
func waitText(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d s", int((d+time.Second-1)/time.Second))
}

func (m *Model) onStatus(s client.ConnStatus) tea.Cmd {
	switch s.State {
	case client.StateLost:
		if m.sess.loggedIn() {
			m.relogin = true
		}
		m.offline, m.offAttempt, m.offRetry = true, 0, false
		return m.setBanner("⚠ Connection to the bank lost. Reconnecting…", true, 0)
	case client.StateReconnecting:
		m.offline, m.offAttempt, m.offDelay, m.offRetry = true, s.Attempt, s.Delay, false
		cmd := m.setBanner(fmt.Sprintf("⚠ Connection to the bank lost. Reconnecting (attempt %d)…", s.Attempt), true, 0)
		if m.cfg.Embedded && m.embedded == nil && s.Attempt >= 3 {
			return tea.Batch(cmd, m.startServer(false))
		}
		return cmd
	case client.StateReconnected:
		m.offline, m.offRetry, m.refused = false, false, ""
		m.server = ""
		if m.client != nil {
			m.server = m.client.Hello().Server
			m.c.maxAmount = m.client.Hello().MaxAmount
			m.clockPanel.server = m.server
		}
		cmd := m.setBanner("✓ Reconnected to the bank.", false, 5*time.Second)
		if s.Err != nil {
			// The client could not restore the session: it is logged out.
			m.relogin = false
			wasIn := m.sess.loggedIn()
			m.sess = session{}
			if m.busy == "" && wasIn {
				m.login.notice = "The connection came back but the session could not be restored. Please log in again."
				return tea.Batch(cmd, m.goLogin())
			}
			return cmd
		}
		if m.relogin && m.busy == "" && m.pending == nil {
			return tea.Batch(cmd, m.endSessionAuto("The connection to the bank dropped and came back. For your safety, please log in again."))
		}
		return cmd
	case client.StateClosed:
		return nil // the channel closes next
	}
	return nil
}

// lostClient handles a client that closed for good: back to connecting.
func (m *Model) lostClient() tea.Cmd {
	closing := closeClient(m.client)
	m.client = nil
	m.gen++
	m.offline, m.offRetry, m.refused = false, false, ""
	m.sess = session{}
	m.busy, m.relogin = "", false
	m.typeahead, m.dropped = nil, 0
	if p := m.pending; p != nil {
		m.pending = nil
		m.login.notice = fmt.Sprintf("The outcome of your %s is unknown: the connection closed before the bank answered. Check your statement before trying again.", opNoun(p.op, p.amount, p.to))
	}
	m.page = pageConnect
	m.connect.err = errConnClosed
	return tea.Batch(closing, m.setBanner("⚠ Disconnected from the bank.", true, 5*time.Second), m.dial(), m.spinner.Tick)
}

// clientClosedMsg says a client the ATM let go of is closed.
type clientClosedMsg struct{ err error }

// closeClient closes c in a command, off the update loop (nil when c is).
func closeClient(c Client) tea.Cmd {
	if c == nil {
		return nil
	}
	return func() tea.Msg {
		return clientClosedMsg{err: c.Close()}
	}
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

// handleIntent turns what a screen asked for into a request.
func (m *Model) handleIntent(in intent) tea.Cmd {
	if m.client == nil {
		switch in.(type) {
		case loginSubmitMsg, menuChoiceMsg, amountSubmitMsg, lookupSubmitMsg, transferSubmitMsg, statementMoreMsg:
			return nil
		}
	}
	if m.offline && sendsRequest(in) {
		// Nothing is queued for later: a request the person can no
		// longer see must never reach the bank.
		m.refused = offlineRefusal
		return nil
	}
	if m.pending != nil && startsMoneyOp(in) {
		// Whatever the bank did with the pending operation must be known
		// before anything else moves money, or the session ends.
		m.menu.notice = m.pendingBlock()
		m.page = pageMenu
		return nil
	}
	switch msg := in.(type) {
	case retryNowMsg:
		return m.dialNow()
	case loginSubmitMsg:
		return m.call("Checking your PIN…", func(ctx context.Context, c Client) tea.Msg {
			r, err := c.Login(ctx, msg.account, msg.pin)
			return loginResultMsg{account: msg.account, reply: r, err: err}
		})
	case menuChoiceMsg:
		switch msg.item {
		case itemBalance:
			return m.call("Asking the bank for your balance…", func(ctx context.Context, c Client) tea.Msg {
				r, err := c.Balance(ctx)
				return opResultMsg{op: "balance", reply: r, err: err}
			})
		case itemDeposit, itemWithdraw:
			op := opDeposit
			if msg.item == itemWithdraw {
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
			return m.endSession(goodbye(m.sess.holder))
		}
	case amountSubmitMsg:
		what := "Sending the deposit…"
		if msg.op == opWithdraw {
			what = "Sending the withdrawal…"
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
	case lookupSubmitMsg:
		return m.call("Looking up account "+msg.account+"…", func(ctx context.Context, c Client) tea.Msg {
			r, err := c.Lookup(ctx, msg.account)
			return lookupResultMsg{account: msg.account, reply: r, err: err}
		})
	case transferSubmitMsg:
		return m.call("Sending the transfer…", func(ctx context.Context, c Client) tea.Msg {
			r, err := c.Transfer(ctx, msg.to, msg.amount)
			return opResultMsg{op: opTransfer, amount: msg.amount, to: msg.to, toHolder: msg.toHolder, reply: r, err: err}
		})
	case statementMoreMsg:
		return m.fetchStatement(msg.before)
	case backMsg:
		if m.relogin && m.pending == nil {
			return m.endSessionAuto("The connection to the bank dropped during the session. For your safety, please log in again.")
		}
		if !m.sess.loggedIn() {
			return m.goLogin()
		}
		m.page = pageMenu
		return nil
	}
	return nil
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

func goodbye(name string) string {
	if f, _, _ := strings.Cut(name, " "); f != "" {
		return "Logged out. Goodbye, " + f + "!"
	}
	return "Logged out. Goodbye!"
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
			m.receipt.note = "The connection dropped during this request; it was sent again with the same id, so it was applied at most once."
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
			text := failureText(opTransfer, msg.err, 0, msg.account)
			if errors.Is(msg.err, outcome.ErrAccountNotFound) {
				text = fmt.Sprintf("There is no account %s. Check the number.", msg.account)
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
			m.statement.failed(failureText("statement", msg.err, 0, ""))
			return nil, true
		}
		// The statement comes with the balance as it stands now.
		m.sess.balance, m.sess.hasBalance = msg.reply.Balance, true
		m.statement.loaded(msg.reply.Entries, msg.reply.Next)
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
	what := opNoun(p.op, p.amount, p.to)
	var pe *wire.Error
	var banner string
	bad := false
	switch {
	case msg.err == nil:
		m.sess.balance, m.sess.hasBalance = msg.reply.Balance, true
		banner = "✓ The bank answered: your " + what + " was done."
	case errors.As(msg.err, &pe):
		banner = "✗ The bank answered: your " + what + " was refused."
	default:
		banner = "⚠ The outcome of your " + what + " could not be learned. Check your statement."
		bad = true
	}
	cmd := m.setBanner(banner, bad, 10*time.Second)
	if !m.sess.loggedIn() {
		if bad {
			m.login.notice = "The outcome of your " + what + " is unknown. Check your statement before trying again."
		} else {
			m.login.notice = banner[len("✓ "):]
			if pe != nil {
				m.login.notice = banner[len("✗ "):]
			}
		}
		return cmd
	}
	r := m.receipt
	r.op, r.reply, r.err, r.pending = p.op, msg.reply, msg.err, false
	r.amount, r.to, r.toHolder = p.amount, p.to, p.toHolder
	r.note = ""
	if !bad {
		r.note = "No answer came in time, so the ATM asked the bank about the same request: it was applied at most once."
	}
	if m.busy == "" {
		m.page = pageReceipt
	}
	return cmd
}

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
		kept.SetHelp(kept.Help().Key, fmt.Sprintf("%s (%d so far)", kept.Help().Desc, n))
	}
	return []key.Binding{kept, k.QuitTyping}
}

// View renders the whole screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = m.cfg.BankName + " ATM · " + m.cfg.ProcessID
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
	if m.offline {
		helpKeys = append([]key.Binding{m.c.keys.Reconnect}, helpKeys...)
	}
	helpKeys = append(helpKeys, m.c.keys.Legend)
	if m.clockPanel.legend {
		body = m.clockPanel.legendView(m.width, max(1, m.height-3))
		helpKeys = []key.Binding{legendClose, m.c.keys.QuitTyping}
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
	msg := fmt.Sprintf("Terminal too small: need %d×%d, have %d×%d.", MinWidth, MinHeight, m.width, m.height)
	sub := "Make the window larger, or press q to quit."
	w := max(1, m.width)
	block := s.TooSmall.Width(w).Align(lipgloss.Center).Render(msg) + "\n" + s.Dim.Width(w).Align(lipgloss.Center).Render(sub)
	return fitLines(lipgloss.Place(w, max(1, m.height), lipgloss.Center, lipgloss.Center, block), w, max(1, m.height))
}

func (m *Model) titleBar() string {
	s := m.c.styles
	left := s.TitleBrand.Render(" ◆ "+m.cfg.BankName) + s.TitleInfo.Render("  ATM "+m.cfg.ProcessID)
	right := "bank " + m.cfg.Addr
	if m.server != "" {
		right = m.server + " @ " + m.cfg.Addr
	}
	if m.embedded != nil {
		right += " · server in this ATM"
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
	s := m.c.styles
	w := m.c.width
	var head string
	if m.sess.loggedIn() {
		who := s.ScreenHead.Render(m.sess.holder) + s.Dim.Render(" · account "+m.sess.account)
		bal := ""
		if m.sess.hasBalance {
			st := s.Money
			if m.balanceHot {
				st = s.BannerPush
			}
			bal = st.Render(m.sess.balance.String())
		}
		gap := max(1, w-lipgloss.Width(who)-lipgloss.Width(bal))
		head = ansi.Truncate(who+strings.Repeat(" ", gap)+bal, w, "…")
	} else {
		head = s.ScreenHead.Render("Automated teller") + s.Dim.Render(" · "+m.cfg.ProcessID)
	}
	rule := s.ScreenRule.Render(strings.Repeat("─", w))
	content := strings.TrimRight(m.current().View(), "\n")
	if card, ok := m.cardsHere(content); ok {
		content = fitLines(content, w, m.c.height-lipgloss.Height(card)) + "\n" + card
	}
	content = fitLines(content, w, m.c.height)
	busy := ""
	switch {
	case m.busy != "":
		busy = m.spinner.View() + " " + s.Text.Render(m.busy)
	case m.pending != nil:
		busy = m.spinner.View() + s.Warning.Render("Outcome unknown: asking the bank…")
	case m.offline:
		busy = s.Warning.Render("⚠ Connection to the bank lost.")
	case m.statementLoading():
		busy = m.spinner.View() + " " + s.Text.Render("Loading your statement…")
	case m.dropped == 1:
		busy = s.Warning.Render("1 key typed while waiting was not used.")
	case m.dropped > 1:
		busy = s.Warning.Render(fmt.Sprintf("%d keys typed while waiting were not used.", m.dropped))
	}
	busy = ansi.Truncate(busy, w, "…")
	inner := strings.Join([]string{head, rule, content, busy}, "\n")
	return s.Screen.Width(m.width - m.clockWidth()).Render(inner)
}

// cards are the notices of the moment, in cards of width w: a request
// refused while offline, and the last push ("" when there are none).
func (m *Model) cards(w int) string {
	var cards []string
	if m.refused != "" {
		s := m.c.styles
		box := lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(s.Warn).Padding(0, 1).Width(w)
		cards = append(cards, box.Render(s.Warning.Width(max(1, w-4)).Render(m.refused)))
	}
	if m.notice != "" {
		cards = append(cards, m.pushCard(w))
	}
	return strings.Join(cards, "\n")
}

// cardsHere returns the cards when they go in the ATM panel, below the
// screen's content: when they fit there whole. Otherwise the clock panel
// shows them (cardsAside), so they never hide the screen.
func (m *Model) cardsHere(content string) (string, bool) {
	card := m.cards(m.c.width)
	if card == "" || lipgloss.Height(content)+lipgloss.Height(card) > m.c.height {
		return "", false
	}
	return card, true
}

// cardsAside are the cards for the clock panel, when they do not fit in the
// ATM panel ("" when there are none, or they do).
func (m *Model) cardsAside() string {
	if m.refused == "" && m.notice == "" {
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
	s := m.c.styles
	p := m.lastPush
	inner := max(1, w-4)
	var lines []string
	if p.Kind == wire.PushTransferIn || p.Kind == "" {
		from := p.From
		if p.FromHolder != "" {
			from += " · " + p.FromHolder
		}
		lines = append(lines,
			s.BannerPush.Width(inner).Render(pushHeadline(p)),
			s.Text.Width(inner).Render("from "+from))
		if p.HasBalance {
			lines = append(lines, s.Text.Render("balance now ")+s.Value.Render(p.Balance.String()))
		}
	} else {
		text := pushHeadline(p)
		if p.Kind == wire.PushTransferOut && p.ToHolder != "" {
			text = strings.Replace(text, " to "+p.To, " to "+p.To+" · "+p.ToHolder, 1)
		}
		lines = append(lines, s.BannerPush.Width(inner).Render(text))
	}
	if !p.HasBalance {
		lines = append(lines, s.Dim.Width(inner).Render("already in the balance shown"))
	}
	lines = append(lines, s.Dim.Width(inner).Render(fmt.Sprintf("push sent at T=%d · here L=%d", p.TS, p.RecvTS)))
	box := lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(s.Push).Padding(0, 1).Width(w)
	return box.Render(strings.Join(lines, "\n"))
}

func (m *Model) statusLine() string {
	s := m.c.styles
	var line string
	switch {
	case m.offline:
		line = s.BannerBad.Render(m.offlineLine())
	case m.banner != "" && m.bannerBad:
		line = s.BannerBad.Render(m.banner)
	case m.notice != "":
		line = s.BannerPush.Render(m.notice)
	case m.banner != "":
		line = s.BannerGood.Render(m.banner)
	case m.embedded != nil:
		line = s.BannerInfo.Render("The bank's server runs inside this ATM (" + m.embedded.Addr() + "); quitting stops it.")
	case m.client != nil:
		line = s.BannerInfo.Render("Connected to " + m.server + " at " + m.cfg.Addr + ".")
	}
	return ansi.Truncate(" "+line, m.width, "…")
}

// tildeHome shortens a path in the home directory to ~/...
func tildeHome(path string) string {
	if h, err := os.UserHomeDir(); err == nil && h != "" && strings.HasPrefix(path, h+string(os.PathSeparator)) {
		return "~" + path[len(h):]
	}
	return path
}
