package ui

import (
	"context"
	"errors"
	"strings"
	"testing"

	"atm/netproto/client"

	"atm/bank/lamport"
	"atm/bank/money"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// stubClient stands in for a connection in screen tests, which drive the
// model with the messages the real commands would produce. Its calls are
// never made there: the commands are not run.
type stubClient struct {
	pushes chan client.Push
	status chan client.ConnStatus
}

func newStubClient() *stubClient {
	return &stubClient{pushes: make(chan client.Push), status: make(chan client.ConnStatus)}
}

var errStub = errors.New("stub client: no network in screen tests")

func (s *stubClient) ProcessID() string     { return "atm-test" }
func (s *stubClient) Clock() *lamport.Clock { return lamport.NewClock(0) }
func (s *stubClient) Hello() client.Hello {
	return client.Hello{Server: "bank", Version: 1, MaxAmount: 10_000_000}
}
func (s *stubClient) Pushes() <-chan client.Push       { return s.pushes }
func (s *stubClient) Status() <-chan client.ConnStatus { return s.status }
func (s *stubClient) Close() error                     { return nil }
func (s *stubClient) Login(context.Context, string, string) (client.Reply, error) {
	return client.Reply{}, errStub
}
func (s *stubClient) Balance(context.Context) (client.Reply, error) {
	return client.Reply{}, errStub
}
func (s *stubClient) Deposit(context.Context, money.Cents) (client.Reply, error) {
	return client.Reply{}, errStub
}
func (s *stubClient) Withdraw(context.Context, money.Cents) (client.Reply, error) {
	return client.Reply{}, errStub
}
func (s *stubClient) Transfer(context.Context, string, money.Cents) (client.Reply, error) {
	return client.Reply{}, errStub
}
func (s *stubClient) Lookup(context.Context, string) (client.Reply, error) {
	return client.Reply{}, errStub
}
func (s *stubClient) Statement(context.Context, uint64, int) (client.Reply, error) {
	return client.Reply{}, errStub
}
func (s *stubClient) Logout(context.Context) (client.Reply, error) {
	return client.Reply{}, errStub
}
func (s *stubClient) Resolve(context.Context, string) (client.Reply, error) {
	return client.Reply{}, errStub
}

// newTestModel returns a model of the given size and background.
func newTestModel(t *testing.T, w, h int, dark bool) *Model {
	t.Helper()
	m := New(Config{Addr: "127.0.0.1:7667", ProcessID: "atm-test", DBPath: t.TempDir() + "/bank.db"})
	m.setStyles(dark)
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// send feeds messages to the model, as the program would.
func send(m *Model, msgs ...tea.Msg) {
	for _, msg := range msgs {
		m.Update(msg)
	}
}

// typeText types s key by key.
func typeText(m *Model, s string) {
	for _, r := range s {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

func press(m *Model, codes ...rune) {
	for _, c := range codes {
		m.Update(tea.KeyPressMsg{Code: c})
	}
}

// screen renders the model without ANSI and checks the frame's geometry:
// exactly h lines, none wider than w.
func screen(t *testing.T, m *Model) string {
	t.Helper()
	v := m.View()
	if !v.AltScreen {
		t.Error("the view is not on the alternate screen")
	}
	out := ansi.Strip(v.Content)
	lines := strings.Split(out, "\n")
	if len(lines) != m.height {
		t.Errorf("frame has %d lines, want %d", len(lines), m.height)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > m.width {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, w, m.width, l)
		}
	}
	return out
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("screen lacks %q:\n%s", w, out)
		}
	}
}

func mustNotContain(t *testing.T, out string, nots ...string) {
	t.Helper()
	for _, n := range nots {
		if strings.Contains(out, n) {
			t.Errorf("screen shows %q but should not:\n%s", n, out)
		}
	}
}

// connected brings a model to the login screen on a stub connection.
func connected(m *Model) {
	send(m, dialResultMsg{client: newStubClient()})
}

// loggedIn brings a model to the menu as Ana (account 123).
func loggedIn(m *Model) {
	connected(m)
	send(m, loginResultMsg{account: "123", reply: client.Reply{Op: "login", Account: "123", Holder: "Ana Souza", Balance: 100000}})
	m.busy = ""
}
