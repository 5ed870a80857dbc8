// Package ui is the ATM: a full-screen terminal app on the bank's protocol
// client, with the ATM's Lamport clock always on screen.
//
// The root Model owns the connection and the session and switches between
// screens (connect, login, menu, forms, receipt, statement). Screens never do
// I/O nor call the root: their Update returns a typed intent, the root turns
// it into commands that call the client, and the answers come back as
// messages. The root's Update does no I/O either: requests, closing a
// client and reconnecting run in commands. The client's clock events, pushes
// and connection changes reach the program as messages too.
package ui

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"

	"atm/netproto/client"
	"atm/netproto/retry"
	"atm/netproto/wire"

	"atm/bank/lamport"
	"atm/ui/i18n"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
)

// Minimum terminal size the layout is designed for.
const (
	MinWidth  = 80
	MinHeight = 24
)

// Config tells the ATM where the bank is.
type Config struct {
	// Addr is the server's address, or a comma-separated list of the
	// addresses of several servers of one bank (the client uses the first
	// that answers and fails over to the others); default wire.DefaultAddr.
	// The title bar shows the server the ATM is on.
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
	// TLS says which certificates the ATM trusts at tls:// addresses; the
	// zero value trusts on first use (client.TLSOptions).
	TLS client.TLSOptions
	// Lang is the language of every text on screen (i18n.English, the
	// zero value, or i18n.Portuguese); money is written the Brazilian way
	// in both. atm takes it from --lang or the environment
	// (i18n.FromEnv); a front end serving several people can give each
	// session its own (i18n.FromEnviron of the session's environment).
	Lang i18n.Lang
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
	pageDiagram
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
	// area is the page area inside the ATM panel: the size of every
	// screen but the diagram's, which takes the whole body.
	area      struct{ width, height int }
	page      pageID
	connect   *connectPage
	login     *loginPage
	menu      *menuPage
	amount    *amountPage
	transfer  *transferPage
	receipt   *receiptPage
	statement *statementPage
	diagram   *diagramPage
	// replies are the bank's answers by request id, for the diagram.
	replies map[string]client.Reply

	client Client
	gen    int // connection generation: messages of older clients are ignored
	server string
	// serverAddr is the address of the server the client is on, from its
	// greeting ("" if the client does not say: cfg.Addr is shown).
	serverAddr string
	embedded   LocalServer
	starting   bool // an embedded server is being started
	retryID    int
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

	// conn is the connection as the person sees it: offline or not, the
	// banner, the last push's notice.
	conn connState
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
	tr := i18n.For(cfg.Lang)
	m.c = &common{styles: NewStyles(true), keys: NewKeyMap(tr), sess: &m.sess, tr: tr}
	m.clockPanel = clockPanel{c: m.c, proc: cfg.ProcessID}
	m.spinner = spinner.New(spinner.WithSpinner(spinner.Dot))
	m.help = help.New()
	m.connect = &connectPage{base: newBase(m.c), addr: cfg.Addr, dbPath: cfg.DBPath}
	m.login = newLoginPage(m.c)
	m.menu = &menuPage{base: newBase(m.c)}
	m.amount = newAmountPage(m.c)
	m.transfer = newTransferPage(m.c)
	m.receipt = &receiptPage{base: newBase(m.c), clockPanel: &m.clockPanel}
	m.statement = newStatementPage(m.c)
	m.diagram = newDiagramPage(m.c)
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
	return []page{m.connect, m.login, m.menu, m.amount, m.transfer, m.receipt, m.statement, m.diagram}
}

func (m *Model) current() page { return m.pages()[m.page] }

// Layout: title bar, body (ATM panel | clock panel), status line, help bar.
func (m *Model) clockWidth() int {
	if m.width >= 100 {
		return min(46, m.width*2/5)
	}
	return 34
}

// setSize lays the screen out for a terminal of w×h and gives each part
// its size.
func (m *Model) setSize(w, h int) {
	m.width, m.height = w, h
	m.help.SetWidth(w - 1) // after the help line's leading space
	bodyH := max(1, h-3)
	m.clockPanel.SetSize(m.clockWidth(), bodyH)
	atmW := w - m.clockWidth()
	m.area.width = max(20, atmW-m.c.styles.Screen.GetHorizontalFrameSize())
	// Border (2), header and rule (2), busy line (1).
	m.area.height = max(3, bodyH-m.c.styles.Screen.GetVerticalFrameSize()-3)
	for _, p := range m.pages() {
		if p == page(m.diagram) {
			p.SetSize(w, bodyH) // across the whole body
			continue
		}
		p.SetSize(m.area.width, m.area.height)
	}
}

// Init starts the connection and the clock event listener.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.queue.wait(), tea.RequestBackgroundColor, m.dial(), m.spinner.Tick)
}
