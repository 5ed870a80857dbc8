package ui

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"atm/netproto/client"

	tea "charm.land/bubbletea/v2"
)

// retryStub is a stub connection that counts RetryNow calls.
type retryStub struct {
	*stubClient
	retries atomic.Int32
}

func (r *retryStub) RetryNow() { r.retries.Add(1) }

// offline brings a logged-in model on c to the state of a client that lost
// the connection and waits for its third attempt.
func offline(m *Model) {
	send(m, statusMsg{gen: m.gen, status: client.ConnStatus{State: client.StateLost, Err: errors.New("EOF")}})
	send(m, statusMsg{gen: m.gen, status: client.ConnStatus{State: client.StateReconnecting, Attempt: 3, Delay: 2 * time.Second}})
}

// Offline, every screen says so with the reconnection's progress, and r in
// the help bar.
func TestOfflineIsVisibleOnEveryScreen(t *testing.T) {
	t.Parallel()
	for _, sc := range []struct {
		name  string
		setup func(m *Model)
	}{
		{"menu", func(*Model) {}},
		{"deposit form", func(m *Model) { typeText(m, "2") }},
		{"statement", statementFull},
	} {
		t.Run(sc.name, func(t *testing.T) {
			eachScreen(t, func(t *testing.T, m *Model, w words) {
				loggedIn(m)
				sc.setup(m)
				offline(m)
				out := screen(t, m)
				mustContain(t, out, w.pick("Offline — reconnecting (attempt 3, next in 2 s)", "Sem conexão — reconectando (tentativa 3, próxima em 2 s)",
					"r retry now", "r tentar agora", "Connection to the bank lost", "Conexão com o banco perdida")...)
				send(m, statusMsg{gen: m.gen, status: client.ConnStatus{State: client.StateReconnected}})
				mustNotContain(t, screen(t, m), w.pick("Offline", "Sem conexão", "r retry now", "r tentar agora")...)
			})
		})
	}
}

// Offline, a request is refused on the spot and says so; nothing is left
// waiting to be sent when the connection returns.
func TestOfflineRefusesRequests(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		offline(m)
		typeText(m, "1") // balance
		if m.busy != "" || m.page != pageMenu {
			t.Fatalf("balance asked while offline: busy %q, page %v", m.busy, m.page)
		}
		refusal := w.pick("unreachable", "inacessível", "not sent", "não foi enviado", "Press r", "Tecle r")
		mustContain(t, screen(t, m), refusal...)

		typeText(m, "2") // the deposit form opens; its confirmation is refused
		typeText(m, "50")
		press(m, tea.KeyEnter)
		confirmNow(m)
		if m.busy != "" || m.page != pageAmount {
			t.Fatalf("deposit sent while offline: busy %q, page %v", m.busy, m.page)
		}
		out := screen(t, m)
		mustContain(t, out, "R$ 50,00", w.one("Confirm the deposit", "Confirme o depósito"))
		mustContain(t, out, refusal...)

		// Once the connection is back the notice goes, and the form can
		// be sent.
		send(m, statusMsg{gen: m.gen, status: client.ConnStatus{State: client.StateReconnected}})
		mustNotContain(t, screen(t, m), refusal[1])
	})
}

// r asks the client to retry at once, from any screen, even a form.
func TestOfflineRetryNow(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	c := &retryStub{stubClient: newStubClient()}
	send(m, dialResultMsg{client: c})
	send(m, loginResultMsg{account: "123", reply: client.Reply{Op: "login", Account: "123", Holder: "Ana Souza", Balance: 100000}})
	m.busy = ""
	typeText(m, "2") // a form with a text field
	offline(m)
	_, cmd := m.Update(tea.KeyPressMsg{Code: 'r', Text: "r"})
	if cmd == nil {
		t.Fatal("r did nothing while offline")
	}
	cmd()
	if n := c.retries.Load(); n != 1 {
		t.Fatalf("RetryNow called %d times, want 1", n)
	}
	mustContain(t, screen(t, m), "Offline — retrying the connection now")
	if v := m.amount.field.input.Value(); v != "" {
		t.Errorf("r was typed in the amount field: %q", v)
	}
	// Online, r is just a key.
	send(m, statusMsg{gen: m.gen, status: client.ConnStatus{State: client.StateReconnected}})
	if _, cmd := m.Update(tea.KeyPressMsg{Code: 'r', Text: "r"}); cmd != nil {
		cmd()
	}
	if n := c.retries.Load(); n != 1 {
		t.Fatalf("r retried while online")
	}
}
