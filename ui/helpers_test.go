package ui

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"atm/netproto/client"

	"atm/bank/lamport"
	"atm/bank/money"
	"atm/ui/i18n"

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

// newTestModel returns a model of the given size and background, in
// English.
func newTestModel(t *testing.T, w, h int, dark bool) *Model {
	t.Helper()
	return newTestModelIn(t, w, h, dark, i18n.English)
}

// newTestModelIn returns a model of the given size, background and
// language.
func newTestModelIn(t *testing.T, w, h int, dark bool, lang i18n.Lang) *Model {
	t.Helper()
	m := New(Config{Addr: "127.0.0.1:7667", ProcessID: "atm-test", DBPath: t.TempDir() + "/bank.db", Lang: lang})
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
	if cut := cutWords(out); len(cut) > 0 {
		t.Errorf("words cut short on screen: %q\n%s", cut, out)
	}
	return out
}

// ellipses are the catalog's texts that end a word in "…": the words
// themselves ("Loading…"), and the texts where a value comes before it
// ("Looking up account %s…") as patterns matching them whole. A "…" after
// any other word is a word cut short.
var ellipses = sync.OnceValues(func() (map[string]bool, []*regexp.Regexp) {
	words := map[string]bool{}
	var whole []*regexp.Regexp
	for _, e := range i18n.Entries() {
		for _, f := range []interface{ Texts() []string }{e.En, e.Pt} {
			for _, text := range f.Texts() {
				for _, m := range ellipsisAfterWord.FindAllStringSubmatch(text, -1) {
					words[m[1]] = true
				}
				if strings.Contains(text, "s…") && strings.Contains(text, "%") {
					parts := strings.Split(text, "%s")
					for i := range parts {
						parts[i] = regexp.QuoteMeta(parts[i])
					}
					whole = append(whole, regexp.MustCompile(strings.Join(parts, `\S+`)))
				}
			}
		}
	}
	return words, whole
})

var ellipsisAfterWord = regexp.MustCompile(`([\pL\pN]+)…`)

// cutWords lists the words of a screen that a truncation cut in the middle.
func cutWords(out string) []string {
	words, whole := ellipses()
	for _, re := range whole {
		out = re.ReplaceAllString(out, "")
	}
	var cut []string
	for _, m := range ellipsisAfterWord.FindAllStringSubmatch(out, -1) {
		if !words[m[1]] {
			cut = append(cut, m[0])
		}
	}
	return cut
}

// words picks a screen's expected texts in one language.
type words struct{ lang i18n.Lang }

// pick takes texts in pairs, English then Portuguese, and returns those of
// the language.
func (w words) pick(pairs ...string) []string {
	out := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		if w.lang == i18n.Portuguese {
			out = append(out, pairs[i+1])
		} else {
			out = append(out, pairs[i])
		}
	}
	return out
}

// one is pick for a single text.
func (w words) one(en, pt string) string { return w.pick(en, pt)[0] }

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
