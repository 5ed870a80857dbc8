// Package watch is the space-time diagram of a running bank, live: every
// process (the bank, each ATM) a lane, time going down, each event a mark
// with its Lamport timestamp and each message a line from its send to its
// receive. It follows the bank's event log as its operator: the bank sends
// the events as they commit (atm watch). Its Diagram also draws the ATM's
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

// Following: the watcher subscribes to the log (a log request with
// follow) and waits for its pages; the bank sends them as events commit,
// so a watcher costs the bank's clock nothing while nothing happens.
// After a failure it subscribes again from where it was, once errorWait
// has passed.
const (
	pageLimit = wire.MaxLogLimit
	errorWait = time.Second
)

// LogSource follows the bank's event log as its operator; *client.Client
// is one.
type LogSource interface {
	FollowLog(ctx context.Context, token string, after wire.Cursor, limit int) (*client.LogFollow, error)
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
	after wire.Cursor       // the log's position: Next of the last page
	fol   *client.LogFollow // the subscription whose pages come, nil when none
	err   string            // the last failure ("" after a page)
	stop  bool              // the bank refused the token: following again is useless

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

// EntriesMsg is a page of the log: its new entries and the position
// after them; or why the log could not be followed.
type EntriesMsg struct {
	Entries []wire.Entry
	Next    wire.Cursor
	Err     error
}

// followingMsg says the subscription started: its pages come next.
type followingMsg struct{ f *client.LogFollow }

// retryMsg says the wait after a failure is over: follow again.
type retryMsg struct{}

// follow subscribes to the log after after.
func (m *Model) follow(after wire.Cursor) tea.Cmd {
	src, token := m.cfg.Source, m.cfg.Token
	if src == nil {
		return nil
	}
	return func() tea.Msg {
		f, err := src.FollowLog(context.Background(), token, after, pageLimit)
		if err != nil {
			return EntriesMsg{Err: err}
		}
		return followingMsg{f}
	}
}

// nextPage waits for the subscription's next page: nothing is read
// meanwhile, the bank sends it when events commit.
func nextPage(f *client.LogFollow) tea.Cmd {
	return func() tea.Msg {
		p, ok := <-f.Pages()
		if !ok {
			return EntriesMsg{Err: f.Err()}
		}
		return EntriesMsg{Entries: p.Events, Next: p.Next}
	}
}

// Init starts following the log.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(tea.RequestBackgroundColor, m.follow(""))
}

// Update handles the program's messages.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.SetWidth(msg.Width - 1) // after the help line's leading space
	case tea.BackgroundColorMsg:
		m.setStyles(msg.IsDark())
	case followingMsg:
		m.fol = msg.f
		return m, nextPage(msg.f)
	case retryMsg:
		return m, m.follow(m.after)
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

// took takes in a page and waits for the next one.
func (m *Model) took(msg EntriesMsg) tea.Cmd {
	if msg.Err != nil {
		m.fol = nil
		if errors.Is(msg.Err, wire.ErrForbidden) {
			m.err, m.stop = m.tr.T(i18n.WatchForbidden), true
			return nil
		}
		m.err = m.tr.T(i18n.WatchReadFailed)
		if m.cfg.Source == nil {
			return nil
		}
		return tea.Tick(errorWait, func(time.Time) tea.Msg { return retryMsg{} })
	}
	m.err = ""
	m.d.Add(msg.Entries...)
	if msg.Next != "" {
		m.after = msg.Next
	}
	if m.fol == nil {
		return nil
	}
	return nextPage(m.fol)
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
