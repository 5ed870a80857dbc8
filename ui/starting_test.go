package ui

import (
	"errors"
	"net"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/wire"

	tea "charm.land/bubbletea/v2"
)

// startingBank is the address of a bank server whose bank is still
// opening: a real Gate that is never made ready in the test.
func startingBank(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := server.NewGate(l, nil)
	t.Cleanup(func() { g.Close() })
	return l.Addr().String()
}

// A bank that is still opening is said in words, in both languages, on
// the connect screen and in the status line of a reconnection, never as a code
// or a Go error.
func TestStartingBankIsExplained(t *testing.T) {
	t.Parallel()
	addr := startingBank(t)
	err := dialFails(t, addr)
	if !errors.Is(err, wire.ErrStarting) {
		t.Fatalf("dialing a starting bank: %v, want an error matching wire.ErrStarting", err)
	}
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		send(m, dialResultMsg{err: err})
		text := atmPanelWords(t, m)
		mustContain(t, text, w.pick(
			"The bank is starting up.", "O banco está iniciando.",
			"The bank at 127.0.0.1:7667 is opening its records and will answer in a few seconds.",
			"O banco em 127.0.0.1:7667 está abrindo seus registros e vai responder em alguns segundos.",
			"Trying again in", "Nova tentativa em")...)
		mustNotContain(t, text, "(starting)", "starting;", "not answering", "não está respondendo", "turned the ATM away", "recusou o caixa")

		send(m, dialResultMsg{client: newStubClient()})
		loggedIn(m)
		send(m, statusMsg{gen: m.gen, status: client.ConnStatus{State: client.StateLost, Err: errors.New("EOF")}})
		send(m, statusMsg{gen: m.gen, status: client.ConnStatus{State: client.StateReconnecting, Attempt: 3, Delay: 2 * time.Second, Err: err}})
		mustContain(t, screen(t, m), w.one("⚠ Offline — bank starting; reconnecting (attempt 3, next in 2 s)",
			"⚠ Sem conexão — banco iniciando; reconectando (tentativa 3, próxima em 2 s)"))
	})
}

// An ATM that runs the bank inside itself when none answers does not start
// one when the bank says it is starting: the bank is there, and is waited
// for.
func TestStartingBankIsWaitedFor(t *testing.T) {
	t.Parallel()
	addr := startingBank(t)
	err := dialFails(t, addr)
	started := false
	m := New(Config{Addr: addr, ProcessID: "atm-test", DBPath: t.TempDir() + "/bank.db", Embedded: true,
		StartServer: func(string, string) (LocalServer, error) {
			started = true
			return nil, errors.New("not in this test")
		}})
	send(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	m.Update(dialResultMsg{err: err})
	if m.starting || m.connect.starting || started {
		t.Fatal("the ATM started a bank of its own beside a bank that is starting")
	}
	if m.connect.retryIn <= 0 {
		t.Fatal("the ATM does not try the starting bank again")
	}
	// Nor while a client reconnects to it.
	loggedIn(m)
	for attempt := 1; attempt <= 5; attempt++ {
		_, cmd := m.Update(statusMsg{gen: m.gen, status: client.ConnStatus{State: client.StateReconnecting, Attempt: attempt, Delay: time.Second, Err: err}})
		if m.starting || started {
			t.Fatalf("attempt %d: the ATM started a bank of its own beside a bank that is starting", attempt)
		}
		_ = cmd
	}
}
