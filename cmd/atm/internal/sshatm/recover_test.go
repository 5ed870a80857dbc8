package sshatm_test

import (
	"errors"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	gossh "golang.org/x/crypto/ssh"

	"atm/cmd/atm/internal/sshatm"
)

// faulty is an ATM that panics when "!" is typed: in Update, or in the
// command Update returns.
type faulty struct {
	tea.Model
	inCommand bool
}

func (f faulty) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok && k.Text == "!" {
		if f.inCommand {
			return f, func() tea.Msg { panic("fault injected in a command") }
		}
		panic("fault injected in Update")
	}
	m, cmd := f.Model.Update(msg)
	f.Model = m
	return f, cmd
}

// A panic in one session ends that session only, wherever it happens: in
// the server's handling of the session (before its ATM runs), in the ATM's
// Update, or in a command of the ATM. The panic is logged with its stack,
// the session's terminal is told and it exits with status 1; a session
// opened before goes on (its person logs in), and a new one gets the
// login screen.
func TestPanicEndsItsSessionOnly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, panic string
		wrap        func(m tea.Model) tea.Model
	}{
		{"handling the session", "fault injected in the program handler", func(tea.Model) tea.Model {
			panic("fault injected in the program handler")
		}},
		{"in Update", "fault injected in Update", func(m tea.Model) tea.Model { return faulty{Model: m} }},
		{"in a command", "fault injected in a command", func(m tea.Model) tea.Model { return faulty{Model: m, inCommand: true} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := startBank(t, 0)
			f := startSSH(t, tb, sshatm.Config{}, func(s *sshatm.Server) {
				sshatm.SetWrapModel(s, func(proc string, m tea.Model) tea.Model {
					if proc != "atm-ssh-2" {
						return m
					}
					return c.wrap(m)
				})
			})
			before := f.dial(t, "before", dialOpts{})
			before.waitFor("Please log in", "atm-ssh-1")

			bad := f.dial(t, "faulty", dialOpts{})
			if !strings.HasPrefix(c.panic, "fault injected in the program") {
				bad.waitFor("Please log in", "atm-ssh-2")
				bad.typeKeys("!")
			}
			var exit *gossh.ExitError
			if err := bad.wait(); !errors.As(err, &exit) || exit.ExitStatus() != 1 {
				t.Fatalf("the faulty session ended with %v, want exit status 1", err)
			}
			bad.waitFor("This ATM stopped on a fault of the server. Connect again for a new one.")
			log := waitLog(t, f.log, c.panic, "ssh: atm-ssh-2 for student@", "ended: a fault of the server")
			if !strings.Contains(log, "goroutine ") || !strings.Contains(log, "recover_test.go") {
				t.Errorf("the panic is logged without its stack:\n%s", log)
			}

			before.login("123", "Ana Souza")
			after := f.dial(t, "after", dialOpts{})
			after.waitFor("Please log in", "atm-ssh-3")
		})
	}
}
