package ui

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"
	"atm/ui/i18n"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// atmPanelWords is the ATM panel of a rendered screen as one line of words, so
// that wrapped sentences can be looked for.
func atmPanelWords(t *testing.T, m *Model) string {
	t.Helper()
	var words []string
	for _, l := range strings.Split(screen(t, m), "\n") {
		l = ansi.Cut(l, 0, m.width-m.clockWidth())
		words = append(words, strings.Fields(boxLines.Replace(l))...)
	}
	return strings.Join(words, " ")
}

// dialFails dials addr with the real client and returns its error.
func dialFails(t *testing.T, addr string) error {
	t.Helper()
	c, err := DialNetproto(context.Background(), addr, client.Options{ProcessID: "atm-test", DialTimeout: 300 * time.Millisecond})
	if err == nil {
		c.Close()
		t.Fatalf("dialing %s succeeded", addr)
	}
	return err
}

// silentListener accepts connections and never says anything.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// closedPort is an address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A person pointed at something that is not a bank, at a closed port or at
// a name that does not resolve reads what happened, not a Go error.
func TestConnectErrorsAreReadable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		addr func(t *testing.T) string
		want func(addr string) string
	}{
		{"silent listener", silentListener, func(addr string) string { return addr + " did not answer like an atm bank" }},
		{"closed port", closedPort, func(addr string) string { return "Nothing is listening at " + addr }},
		{"unknown host", func(*testing.T) string { return "no-such-host.invalid:7681" },
			func(string) string { return "no-such-host.invalid is not a known host" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := c.addr(t)
			err := dialFails(t, addr)
			for _, sz := range sizes {
				for _, dark := range []bool{true, false} {
					t.Run(fmt.Sprintf("%dx%d/dark=%v", sz.w, sz.h, dark), func(t *testing.T) {
						m := New(Config{Addr: addr, ProcessID: "atm-test", DBPath: t.TempDir() + "/bank.db"})
						m.setStyles(dark)
						send(m, tea.WindowSizeMsg{Width: sz.w, Height: sz.h}, dialResultMsg{err: err})
						text := atmPanelWords(t, m)
						mustContain(t, text, "The bank is not answering.", c.want(addr), "Trying again in 1 s (attempt 2)")
						mustNotContain(t, text, "tcp", "i/o timeout", "dial", "lookup", "ms (")
					})
				}
			}
		})
	}
}

// A server that cannot start inside the ATM is explained too.
func TestEmbeddedStartErrorIsReadable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	m := New(Config{Addr: addr, ProcessID: "atm-test", DBPath: t.TempDir() + "/bank.db", Embedded: true, StartServer: startTestServer})
	send(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	_, cmd := m.Update(dialResultMsg{err: dialFails(t, closedPort(t))})
	msg := cmd()
	if e, ok := msg.(embeddedResultMsg); !ok || e.err == nil {
		t.Fatalf("starting a server on a taken port: %#v", msg)
	}
	send(m, msg)
	text := atmPanelWords(t, m)
	mustContain(t, text, "Could not start a server here: another program already uses "+addr)
	mustNotContain(t, text, "bind", "listen tcp")
}

func TestRetryWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 5, 6, 23, 50, 0, 0, time.Local)
	cases := []struct {
		until  time.Time
		en, pt string
	}{
		{now.Add(400 * time.Millisecond), "in 1 s", "em 1 s"},
		{now.Add(42 * time.Second), "in 42 s", "em 42 s"},
		{now.Add(2 * time.Minute), "in 120 s", "em 120 s"},
		{now.Add(5 * time.Minute), "at " + now.Add(5*time.Minute).Format("15:04:05 MST"), "às " + now.Add(5*time.Minute).Format("15:04:05 MST")},
		{now.Add(15 * time.Minute), "at " + now.Add(15*time.Minute).Format("15:04:05 MST") + " on Tue 7 May 2030", "em 07/05/2030 às " + now.Add(15*time.Minute).Format("15:04:05 MST")},
		{now.Add(-time.Second), "now", "agora"},
	}
	for _, c := range cases {
		if got := retryWhen(i18n.For(i18n.English), c.until, now); got != c.en {
			t.Errorf("retryWhen(now+%v) = %q, want %q", c.until.Sub(now), got, c.en)
		}
		if got := retryWhen(i18n.For(i18n.Portuguese), c.until, now); got != c.pt {
			t.Errorf("Portuguese retryWhen(now+%v) = %q, want %q", c.until.Sub(now), got, c.pt)
		}
	}
}

// Lock messages say how long to wait, in seconds, or when, with the zone
// and, when not today, the date.
func TestLoginLockTimes(t *testing.T) {
	t.Parallel()
	tomorrow := time.Now().Add(26 * time.Hour)
	cases := []struct {
		name string
		err  error
		want *regexp.Regexp
	}{
		{"account locked for a minute", &wire.Error{Code: "account_locked", Until: time.Now().Add(45 * time.Second)},
			regexp.MustCompile(`Too many wrong PINs for account 123; try again in (4[0-5]) s\.`)},
		{"account locked until tomorrow", &wire.Error{Code: "account_locked", Until: tomorrow},
			regexp.MustCompile(regexp.QuoteMeta("Too many wrong PINs for account 123; try again at " + tomorrow.Format("15:04:05 MST") + " on " + tomorrow.Format("Mon 2 Jan 2006") + "."))},
		{"terminal waits", &wire.Error{Code: "too_many_attempts", Until: time.Now().Add(20 * time.Second)},
			regexp.MustCompile(`Too many attempts on this terminal; try again in (1[5-9]|20) s\.`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachLayout(t, func(t *testing.T, m *Model) {
				connected(m)
				send(m, loginResultMsg{account: "123", err: c.err})
				if text := atmPanelWords(t, m); !c.want.MatchString(text) {
					t.Errorf("screen lacks %v:\n%s", c.want, text)
				}
			})
		})
	}
}

// TestLoginFailureNeverShowsAGoError: a login that fails for a reason of
// the ATM's own (the connection closed under it) is explained in words.
func TestLoginFailureNeverShowsAGoError(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		connected(m)
		typeText(m, "123")
		press(m, tea.KeyEnter)
		typeText(m, "1234")
		press(m, tea.KeyEnter)
		send(m, loginResultMsg{account: "123", err: fmt.Errorf("login 123: %w", client.ErrConnectionLost)})
		out := atmPanelWords(t, m)
		if !strings.Contains(out, "Login failed: The connection to the bank was lost") || strings.Contains(out, "login 123:") {
			t.Fatalf("%s", out)
		}
	})
}
