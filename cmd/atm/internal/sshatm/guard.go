package sshatm

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"

	tea "charm.land/bubbletea/v2"
)

// guard runs a session's ATM and keeps a panic in it to the session: the
// panic is logged with its stack, the ATM is not called again (its screen
// stays as last drawn), and fail ends the session. It covers the model's
// Init, Update and View, and the commands they return, with the commands of
// a tea.BatchMsg those yield. A panic anywhere else in the program (a
// command of a tea.Sequence) is caught by Bubble Tea itself, which ends the
// program and prints the panic on the server's standard error.
type guard struct {
	m      tea.Model
	proc   string
	log    *slog.Logger
	fail   func()
	failed atomic.Bool
	last   tea.View // the last view drawn; View and Update run on one goroutine
}

func (g *guard) Init() (cmd tea.Cmd) {
	defer g.catch(nil, &cmd)
	return g.wrap(g.m.Init())
}

func (g *guard) Update(msg tea.Msg) (next tea.Model, cmd tea.Cmd) {
	next = g
	if g.failed.Load() {
		return g, nil
	}
	defer g.catch(msg, &cmd)
	m, c := g.m.Update(msg)
	g.m = m
	return g, g.wrap(c)
}

func (g *guard) View() (v tea.View) {
	if g.failed.Load() {
		return g.last
	}
	defer func() {
		if r := recover(); r != nil {
			g.fault("drawing", r)
			v = g.last
		}
	}()
	g.last = g.m.View()
	return g.last
}

// catch, deferred, recovers a panic of the ATM while it starts (msg nil)
// or handles msg: no command follows it.
func (g *guard) catch(msg tea.Msg, cmd *tea.Cmd) {
	if r := recover(); r != nil {
		doing := "starting"
		if msg != nil {
			doing = fmt.Sprintf("handling %T", msg)
		}
		g.fault(doing, r)
		*cmd = nil
	}
}

// wrap guards a command of the ATM, and the commands of the batch it
// returns.
func (g *guard) wrap(cmd tea.Cmd) tea.Cmd {
	if cmd == nil {
		return nil
	}
	return func() (msg tea.Msg) {
		defer func() {
			if r := recover(); r != nil {
				g.fault("in a command", r)
				msg = nil
			}
		}()
		msg = cmd()
		if b, ok := msg.(tea.BatchMsg); ok {
			w := make(tea.BatchMsg, len(b))
			for i, c := range b {
				w[i] = g.wrap(c)
			}
			msg = w
		}
		return msg
	}
}

// fault logs the panic r with the stack of the goroutine that panicked
// (fault runs in the deferred function that recovered it) and ends the
// session.
func (g *guard) fault(doing string, r any) {
	g.failed.Store(true)
	g.log.Error(fmt.Sprintf("ssh: %s: panic %s: %v", g.proc, doing, r), slog.String("stack", string(debug.Stack())))
	g.fail()
}
