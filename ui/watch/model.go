// Package watch is the space-time diagram of a running bank, live: every
// process (the bank, each ATM) a lane, time going down, each event a mark
// with its Lamport timestamp and each message a line from its send to its
// receive. It reads the bank's event log as its operator, page after page,
// and follows it as it grows (atm watch). Its Diagram also draws the ATM's
// own diagram screen.
package watch

import (
	"context"
	"errors"
	"strings"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"
	"atm/ui/i18n"

	"charm.land/bubbles/v2/help"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Minimum terminal size of the layout.
const (
	MinWidth  = 80
	MinHeight = 24
)

// Polling: a full page is followed at once by the next read; after a
// shorter one the watcher waits before reading again, a quarter second
// while events come, longer (up to two seconds) while none do: each read is
// a receive and a send on the bank's clock too.
const (
	pageLimit = wire.MaxLogLimit
	idleWait  = 250 * time.Millisecond
	maxIdle   = 2 * time.Second
	errorWait = time.Second
	readLimit = 10 * time.Second
)

// LogSource reads the bank's event log as its operator; *client.Client is
// one.
type LogSource interface {
	Log(ctx context.Context, token string, after wire.Cursor, limit int) (client.LogPage, error)
}

// Config tells the watcher what to read.
type Config struct {
	Source LogSource // nil: nothing is read (the model is driven by messages)
	Token  string    // the bank's operator token
	Addr   string    // the bank's address (or addresses), for the title
	Lang   i18n.Lang // the language of the screen (English by default)
}

// addresser is a Source that says which server it reads from now
// (*client.Client, which fails over between the servers of one bank).
type addresser interface{ Addr() string }

// addr is the address shown in the title: the server the source is on, or
// Config.Addr.
func (m *Model) addr() string {
	if a, ok := m.cfg.Source.(addresser); ok {
		if s := a.Addr(); s != "" {
			return s
		}
	}
	return m.cfg.Addr
}

// Model is the watcher's root model.
type Model struct {
	cfg   Config
	tr    *i18n.Printer
	st    *Styles
	keys  *KeyMap
	help  help.Model
	d     *Diagram
	after wire.Cursor // the log's position: Next of the last read
	reads int
	err   string        // the last read's failure ("" after a success)
	stop  bool          // the bank refused the token: reading again is useless
	idle  time.Duration // the wait before the next read while no events come

	width, height int
}

// New returns the watcher.
func New(cfg Config) *Model {
	tr := i18n.For(cfg.Lang)
	m := &Model{cfg: cfg, tr: tr, keys: NewKeyMap(tr), help: help.New()}
	m.st = NewStyles(true)
	m.d = NewDiagram(m.st, m.keys)
	m.setStyles(true)
	m.width, m.height = MinWidth, MinHeight
	m.help.SetWidth(m.width - 1)
	return m
}

// Diagram is the watcher's diagram.
func (m *Model) Diagram() *Diagram { return m.d }

func (m *Model) setStyles(dark bool) {
	m.st = NewStyles(dark)
	m.d.SetStyles(m.st)
	m.help.Styles = m.st.Help
}

// EntriesMsg is a read of the log: its new entries and the position of the
// next read.
type EntriesMsg struct {
	Entries []wire.Entry
	Next    wire.Cursor
	Err     error
}

// readMsg says the wait before the next read of the log is over.
type readMsg struct{ after wire.Cursor }

// read reads the log after after, once wait has passed: a timer's message
// (readMsg) starts the read then.
func (m *Model) read(after wire.Cursor, wait time.Duration) tea.Cmd {
	src, token := m.cfg.Source, m.cfg.Token
	if src == nil {
		return nil
	}
	if wait > 0 {
		return tea.Tick(wait, func(time.Time) tea.Msg { return readMsg{after} })
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), readLimit)
		defer cancel()
		p, err := src.Log(ctx, token, after, pageLimit)
		return EntriesMsg{Entries: p.Events, Next: p.Next, Err: err}
	}
}

// Init starts reading the log.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(tea.RequestBackgroundColor, m.read("", 0))
}

// Update handles the program's messages.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.SetWidth(msg.Width - 1) // after the help line's leading space
	case tea.BackgroundColorMsg:
		m.setStyles(msg.IsDark())
	case readMsg:
		return m, m.read(msg.after, 0)
	case EntriesMsg:
		return m, m.took(msg)
	case tea.KeyPressMsg:
		if msg.String() == "ctrl+c" || msg.String() == "q" {
			return m, tea.Quit
		}
		m.d.HandleKey(msg)
	}
	return m, nil
}

// took takes in a read and schedules the next one.
func (m *Model) took(msg EntriesMsg) tea.Cmd {
	m.reads++
	if msg.Err != nil {
		if errors.Is(msg.Err, wire.ErrForbidden) {
			m.err, m.stop = m.tr.T(i18n.WatchForbidden), true
			return nil
		}
		m.err = m.tr.T(i18n.WatchReadFailed)
		return m.read(m.after, errorWait)
	}
	m.err = ""
	m.d.Add(msg.Entries...)
	if msg.Next != "" {
		m.after = msg.Next
	}
	if len(msg.Entries) >= pageLimit {
		return m.read(m.after, 0)
	}
	if len(msg.Entries) == 0 {
		m.idle = min(max(2*m.idle, idleWait), maxIdle)
	} else {
		m.idle = idleWait
	}
	return m.read(m.after, m.idle)
}

// View renders the screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = m.tr.T(i18n.WatchWindow, m.addr())
	return v
}

func (m *Model) render() string {
	s, tr := m.st, m.tr
	w, h := m.width, m.height
	if w < MinWidth || h < MinHeight {
		msg := tr.T(i18n.WatchTooSmall, MinWidth, MinHeight, w, h)
		return fitLines(s.Warning.Width(max(1, w)).Render(msg), max(1, w), max(1, h))
	}
	left := s.TitleBrand.Render(tr.T(i18n.WatchBrand)) + s.TitleInfo.Render(tr.T(i18n.WatchTagline))
	right := s.TitleInfo.Render(tr.T(i18n.WatchCount, m.d.Len(), m.addr()))
	gap := max(1, w-lipgloss.Width(left)-lipgloss.Width(right))
	title := ansi.Truncate(left+s.TitleBar.Render(strings.Repeat(" ", gap))+right, w, "…")
	// The error is wrapped, not cut: its lines come out of the diagram's.
	extra := 0
	var errLine string
	if m.err != "" {
		errLine = s.Error.Width(w - 1).PaddingLeft(1).Render(m.err)
		extra = lipgloss.Height(errLine)
	}
	legend := " " + s.Dim.Render(i18n.Fit(tr.T(i18n.WatchLegend), w-1))
	body := m.d.View(w, h-3-extra)
	helpLine := " " + m.help.ShortHelpView(m.keys.HelpKeys())
	parts := []string{title, legend, body}
	if errLine != "" {
		parts = append(parts, errLine)
	}
	parts = append(parts, helpLine)
	return fitLines(strings.Join(parts, "\n"), w, h)
}

// fitLines cuts or pads a block to exactly h lines of at most w cells.
func fitLines(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "…")
		}
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}
