package ui

// The connection: dialing, the server inside this ATM, retries, the
// banner, pushes, going offline and coming back.

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"
	"atm/ui/i18n"

	tea "charm.land/bubbletea/v2"
)

// Messages of the connection.
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
)

func (m *Model) dial() tea.Cmd {
	cfg := m.cfg
	opts := client.Options{
		ProcessID:      cfg.ProcessID,
		Clock:          m.clock,
		DialTimeout:    3 * time.Second,
		RequestTimeout: cfg.RequestTimeout,
		Reconnect:      true,
		OnEvent:        m.queue.add,
		TLS:            cfg.TLS,
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

func (m *Model) setBanner(text string, bad bool, clearAfter time.Duration) tea.Cmd {
	id := m.conn.setBanner(text, bad)
	if clearAfter <= 0 {
		return nil
	}
	return tea.Tick(clearAfter, func(time.Time) tea.Msg { return bannerClearMsg{id} })
}

// dialNow dials at once, when the person asks on the connect screen.
func (m *Model) dialNow() tea.Cmd {
	if m.client != nil || m.starting {
		return nil
	}
	m.retryID++
	return tea.Batch(m.dial(), m.spinner.Tick)
}

// handleConn deals with the connection: dialing, the embedded server,
// retries, connection status and pushes.
func (m *Model) handleConn(msg tea.Msg) (tea.Cmd, bool) {
	switch msg := msg.(type) {
	case dialResultMsg:
		if msg.err != nil {
			m.connect.err = msg.err
			m.connect.attempt++
			// A bank that says it is starting is there: no server of our
			// own in its place, only a wait for it.
			if m.cfg.Embedded && m.embedded == nil && !errors.Is(msg.err, wire.ErrStarting) {
				m.connect.starting = true
				if cmd := m.startServer(true); cmd != nil {
					return cmd, true
				}
			}
			return m.scheduleRetry(), true
		}
		m.client = msg.client
		m.gen++
		m.server, m.serverAddr = msg.client.Hello().Server, msg.client.Hello().Addr
		m.c.maxAmount = msg.client.Hello().MaxAmount
		m.clockPanel.server = m.server
		m.connect.err, m.connect.embedErr, m.connect.attempt = nil, nil, 0
		m.redial.Reset()
		if notice := firstUseNotice(m.c.tr, msg.client.Hello().TLS); notice != "" {
			m.login.notice = notice
		}
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
			m.login.notice = m.c.tr.T(i18n.EmbedStarted, msg.srv.Addr(), tildeHome(msg.srv.DBPath()))
			return m.dial(), true
		}
		return m.setBanner(m.c.tr.T(i18n.EmbedTookOver, msg.srv.Addr()), false, 8*time.Second), true
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
		cmd := m.onStatus(msg.status)
		if msg.gen != m.gen { // onStatus let the client go
			return cmd, true
		}
		return tea.Batch(cmd, waitStatus(m.gen, m.client)), true
	}
	return nil, false
}

func (m *Model) onPush(p client.Push) tea.Cmd {
	if m.sess.loggedIn() && p.HasBalance && (p.Account == "" || p.Account == m.sess.account) {
		m.sess.balance, m.sess.hasBalance = p.Balance, true
	}
	id := m.conn.pushed(pushNotice(m.c.tr, p), p)
	return tea.Tick(15*time.Second, func(time.Time) tea.Msg { return noticeClearMsg{id} })
}

// pushNotice is the status line's text for push p.
func pushNotice(tr *i18n.Printer, p client.Push) string {
	if p.Kind != wire.PushTransferIn && p.Kind != "" {
		return pushHeadline(tr, p, false)
	}
	from := p.From
	if p.FromHolder != "" {
		from += " " + p.FromHolder
	}
	if p.HasBalance {
		return tr.T(i18n.PushNoticeBalance, p.Amount.String(), from, p.Balance.String(), stamp(p.RecvTS))
	}
	return tr.T(i18n.PushNotice, p.Amount.String(), from, stamp(p.RecvTS))
}

// pushHeadline says what a push reports: "↓ Money arrived: +R$ 25,00", or
// "Balance changed at another ATM: withdrawal of R$ 50,00 → R$ 950,00"
// (with the recipient's name after a transfer when holder is set).
func pushHeadline(tr *i18n.Printer, p client.Push, holder bool) string {
	switch p.Kind {
	case wire.PushTransferIn, "":
		return tr.T(i18n.PushArrived, p.Amount.String())
	}
	var what string
	switch p.Kind {
	case wire.PushDeposit:
		what = opNoun(tr, opDeposit, p.Amount, "")
	case wire.PushWithdraw:
		what = opNoun(tr, opWithdraw, p.Amount, "")
	case wire.PushTransferOut:
		to := p.To
		if holder && p.ToHolder != "" {
			to += " · " + p.ToHolder
		}
		what = opNoun(tr, opTransfer, p.Amount, to)
	default:
		what = tr.T(i18n.PushOther, p.Kind, p.Amount.String())
	}
	if p.HasBalance {
		return tr.T(i18n.PushChangedTo, what, p.Balance.String())
	}
	return tr.T(i18n.PushChanged, what)
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
	m.conn.retryNow()
	return func() tea.Msg {
		r.RetryNow()
		return nil
	}
}

// waitText is a reconnection wait as the status line says it: "2 s",
// "0.4 s" ("0,4 s" in Portuguese).
func waitText(tr *i18n.Printer, d time.Duration) string {
	if d < time.Second {
		return tr.T(i18n.WaitFraction, d.Seconds())
	}
	return seconds(tr, d)
}

func (m *Model) onStatus(s client.ConnStatus) tea.Cmd {
	tr := m.c.tr
	switch s.State {
	case client.StateLost:
		if m.sess.loggedIn() {
			m.relogin = true
		}
		m.conn.lost()
		return m.setBanner(tr.T(i18n.BannerLost), true, 0)
	case client.StateReconnecting:
		if untrusted(s.Err) {
			// The server came back with a certificate the ATM refuses: the
			// session ends, and the connect screen says why.
			cmd := m.lostClient()
			m.connect.err = s.Err
			return cmd
		}
		// A bank that answers it is starting is there: the status line
		// says so, and no server of our own takes its place.
		starting := errors.Is(s.Err, wire.ErrStarting)
		m.conn.reconnecting(s.Attempt, s.Delay, starting)
		cmd := m.setBanner(tr.T(i18n.BannerReconnecting, s.Attempt), true, 0)
		if m.cfg.Embedded && m.embedded == nil && s.Attempt >= 3 && !starting {
			return tea.Batch(cmd, m.startServer(false))
		}
		return cmd
	case client.StateReconnected:
		m.conn.online()
		m.server = ""
		before := m.addr()
		m.serverAddr = s.Addr
		if m.client != nil {
			m.server = m.client.Hello().Server
			if a := m.client.Hello().Addr; a != "" {
				m.serverAddr = a
			}
			m.c.maxAmount = m.client.Hello().MaxAmount
			m.clockPanel.server = m.server
		}
		text := tr.T(i18n.BannerReconnected)
		if after := m.addr(); after != before {
			text = tr.T(i18n.BannerReconnectedAt, after)
		}
		cmd := m.setBanner(text, false, 5*time.Second)
		if s.Err != nil {
			// The client could not restore the session: it is logged out.
			m.relogin = false
			wasIn := m.sess.loggedIn()
			m.sess = session{}
			if m.busy == "" && wasIn {
				m.login.notice = tr.T(i18n.SessionNotRestored)
				return tea.Batch(cmd, m.goLogin())
			}
			return cmd
		}
		if m.relogin && m.busy == "" && m.pending == nil {
			return tea.Batch(cmd, m.endSessionAuto(tr.T(i18n.SessionDroppedBack)))
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
	m.conn.online()
	m.sess = session{}
	m.busy, m.relogin = "", false
	m.typeahead, m.dropped = nil, 0
	if p := m.pending; p != nil {
		m.pending = nil
		m.login.notice = m.c.tr.T(i18n.UnknownClosed, opNoun(m.c.tr, p.op, p.amount, p.to))
	}
	m.page = pageConnect
	m.connect.err = errConnClosed
	return tea.Batch(closing, m.setBanner(m.c.tr.T(i18n.BannerDisconnected), true, 5*time.Second), m.dial(), m.spinner.Tick)
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

// tildeHome shortens a path in the home directory to ~/...
func tildeHome(path string) string {
	if h, err := os.UserHomeDir(); err == nil && h != "" && strings.HasPrefix(path, h+string(os.PathSeparator)) {
		return "~" + path[len(h):]
	}
	return path
}
