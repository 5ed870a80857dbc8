// Package sshatm serves the ATM over SSH: every SSH session runs its own
// ATM (package ui) in the server process, drawn on the session's terminal.
//
// Each ATM is a process of its own, as if it ran on the student's machine:
// it has its own process id (atm-ssh-1, atm-ssh-2, … in the order the
// sessions opened, numbered on across restarts when the caller keeps the
// count) and Lamport clock, and reaches the bank over the bank's TCP
// address (over TLS when the bank serves TLS), so the server's log and the
// space-time diagram show it like any other ATM. The PIN login is the
// ATM's; SSH authentication (public keys, or none) only decides who gets a
// terminal.
//
// Guarantees:
//   - Size and colours follow the client's terminal: its pty size and
//     window changes, its colour profile (TERM, COLORTERM), and its
//     background (asked by the ATM).
//   - Each ATM speaks the language of the client's environment as the
//     client sends it (LC_ALL, LC_MESSAGES, LANG; OpenSSH sends them with
//     SendEnv), else English; so do the lines written on the terminal
//     outside the ATM (a refusal, the goodbye).
//   - At most MaxSessions ATMs run at once; a session beyond that is told
//     so and closed before any ATM starts.
//   - A session without a key for IdleTimeout is told so and closed; its
//     ATM logs out first.
//   - A session that drops ends its ATM at once: the connection to the bank
//     closes, and a request in flight is applied at most once (the bank
//     answers a request id once; nobody resends it).
//   - Shutdown ends every ATM (each logs out), writes a goodbye on every
//     terminal, and closes every connection.
//   - A panic in a session (in its ATM, or in the server's handling of it)
//     is logged with its stack and ends that session only: its ATM leaves
//     the bank, its terminal is told, and it exits with status 1. Other
//     sessions and the server go on.
package sshatm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"atm/netproto/client"
	"atm/ui"
	"atm/ui/i18n"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	bm "charm.land/wish/v2/bubbletea"
	rm "charm.land/wish/v2/recover"
	"github.com/charmbracelet/colorprofile"
	gossh "golang.org/x/crypto/ssh"
)

// Defaults of Config.
const (
	DefaultMaxSessions = 100
	DefaultIdleTimeout = 15 * time.Minute
	// handshakeTimeout bounds a connection's key exchange and
	// authentication.
	handshakeTimeout = time.Minute
	// closeGrace is how long Shutdown lets clients close their connections
	// after the goodbye before it closes them.
	closeGrace = time.Second
)

// Why a session ended, when the server ended it.
var (
	// ErrClosing ends the sessions when the server shuts down.
	ErrClosing = errors.New("the bank is closing")
	// ErrIdle ends a session that had no key for IdleTimeout.
	ErrIdle = errors.New("no key for too long")
	// errFault ends a session after a panic in its ATM or its handling.
	errFault = errors.New("a fault of the server")
)

// Config configures a Server.
type Config struct {
	// BankAddr is the bank server's address, which every ATM dials:
	// HOST:PORT, or tls://HOST:PORT for a bank served over TLS.
	BankAddr string
	// BankTLS is what the ATMs trust of a tls:// BankAddr; a server
	// dialling its own bank pins the certificate it serves
	// (client.TLSOptions.Fingerprint).
	BankTLS client.TLSOptions
	// HostKey is the server's SSH host key (see HostKey).
	HostKey gossh.Signer
	// AuthorizedKeys are the public keys let in. None: every client is let
	// in without authentication; the caller decides whether that is safe
	// (see Loopback).
	AuthorizedKeys []gossh.PublicKey
	// MaxSessions is the most ATMs at once; default DefaultMaxSessions.
	MaxSessions int
	// IdleTimeout closes a session after this long without input;
	// default DefaultIdleTimeout, negative: never.
	IdleTimeout time.Duration
	// BankName names the bank in the goodbye; default "Banco Lamport".
	BankName string
	// Logger gets a line for every session opened, ended or refused, and
	// every key refused; default none.
	Logger *slog.Logger
	// ProcessPrefix starts every session's process id, followed by the
	// session's number; default "atm-ssh-". Servers of one bank give
	// different prefixes, so that their ATMs never share a process id.
	ProcessPrefix string
	// Sessions is how many sessions earlier runs of this server opened:
	// the first session now is number Sessions+1. OnSession, if set, is
	// called with each new number (one call at a time) for the caller to
	// keep, so that a restarted server never reuses a process id.
	Sessions  uint64
	OnSession func(n uint64)
}

// Server serves ATMs over SSH. Create it with New.
type Server struct {
	cfg  Config
	ssh  *ssh.Server
	log  *slog.Logger
	seq  atomic.Uint64 // sessions opened
	wg   sync.WaitGroup
	mu   sync.Mutex
	live map[*session]struct{}
	shut bool

	// wrapModel, for tests, wraps the model of each session's ATM.
	wrapModel func(proc string, m tea.Model) tea.Model
}

// session is one ATM over SSH.
type session struct {
	proc string
	end  context.CancelCauseFunc

	// Set by serve; program sets atm and stopQuit.
	ctx      context.Context // ends with the session
	lang     i18n.Lang
	pty      ssh.Pty
	in       *idleInput
	atm      *ui.Model
	stopQuit func() bool // stops the program's quitting when ctx ends
}

// New returns a server of cfg; it serves once Serve is called.
func New(cfg Config) (*Server, error) {
	if cfg.HostKey == nil {
		return nil, errors.New("sshatm: no host key")
	}
	if cfg.BankAddr == "" {
		return nil, errors.New("sshatm: no bank address")
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.BankName == "" {
		cfg.BankName = "Banco Lamport"
	}
	if cfg.ProcessPrefix == "" {
		cfg.ProcessPrefix = "atm-ssh-"
	}
	s := &Server{cfg: cfg, log: cfg.Logger, live: map[*session]struct{}{}}
	s.seq.Store(cfg.Sessions)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ssh = &ssh.Server{
		// A panic in a session is logged and ends that session only.
		Handler:          rm.MiddlewareWithLogger(panicLog{s.log}, s.serve)(func(ssh.Session) {}),
		HandshakeTimeout: handshakeTimeout,
		Version:          "atm",
	}
	if cfg.IdleTimeout > 0 {
		// A backstop for connections that never open a session: a session
		// ends on its own timer, with a goodbye, well before this.
		s.ssh.IdleTimeout = cfg.IdleTimeout + time.Minute
	}
	s.ssh.AddHostKey(cfg.HostKey)
	if len(cfg.AuthorizedKeys) > 0 {
		s.ssh.PublicKeyHandler = s.authorized
	}
	return s, nil
}

// Serve accepts SSH connections on l until Shutdown; it then returns
// ssh.ErrServerClosed.
func (s *Server) Serve(l net.Listener) error { return s.ssh.Serve(l) }

// Shutdown stops accepting connections, ends every ATM (each logs out and
// its terminal gets a goodbye), waits for them within ctx, and closes every
// connection. It returns ctx's error if an ATM had not ended by then.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shut = true
	for a := range s.live {
		a.end(ErrClosing)
	}
	s.mu.Unlock()
	ended := make(chan struct{})
	go func() { s.wg.Wait(); close(ended) }()
	var err error
	select {
	case <-ended:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Clients close their connection once the session is over; give them
	// a moment before closing what is left.
	gctx, cancel := context.WithTimeout(ctx, closeGrace)
	defer cancel()
	if s.ssh.Shutdown(gctx) != nil {
		_ = s.ssh.Close()
	}
	return err
}

// authorized lets in the configured public keys only.
func (s *Server) authorized(ctx ssh.Context, key ssh.PublicKey) bool {
	for _, k := range s.cfg.AuthorizedKeys {
		if ssh.KeysEqual(key, k) {
			return true
		}
	}
	s.log.Warn(fmt.Sprintf("ssh: refused key %s of %s@%s: not an authorized key", Fingerprint(key), ctx.User(), ctx.RemoteAddr()))
	return false
}

// admit registers a new session ended by end, or says why it cannot
// start.
func (s *Server) admit(end context.CancelCauseFunc) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.shut:
		return nil, ErrClosing
	case len(s.live) >= s.cfg.MaxSessions:
		return nil, fmt.Errorf("all %d ATMs of this bank are in use", s.cfg.MaxSessions)
	}
	n := s.seq.Add(1)
	if s.cfg.OnSession != nil {
		s.cfg.OnSession(n)
	}
	a := &session{proc: fmt.Sprintf("%s%d", s.cfg.ProcessPrefix, n), end: end}
	s.live[a] = struct{}{}
	s.wg.Add(1)
	return a, nil
}

func (s *Server) release(a *session) {
	s.mu.Lock()
	delete(s.live, a)
	s.mu.Unlock()
	s.wg.Done()
}

// refuse tells the person why there is no ATM for them and ends the
// session.
func refuse(sess ssh.Session, text string) {
	_, _ = fmt.Fprintf(sess.Stderr(), "%s\r\n", text)
	_ = sess.Exit(1)
}

// serve admits a session, runs its ATM with the Bubble Tea middleware (the
// program that program makes), and ends the session once the ATM is gone
// and the session no longer counts against MaxSessions: on its terminal, a
// goodbye says why when the server ended it. A panic on the way, which the
// recover middleware logs, still ends the ATM and frees its place.
func (s *Server) serve(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		// The session speaks the language of the client's environment, as
		// far as the client sends it (OpenSSH: SendEnv LANG LC_*).
		lang := i18n.FromEnviron(sess.Environ())
		tr := i18n.For(lang)
		pty, _, ok := sess.Pty()
		if !ok {
			refuse(sess, tr.T(i18n.SSHNeedsTerminal))
			return
		}
		if len(sess.Command()) > 0 {
			refuse(sess, tr.T(i18n.SSHNoCommand))
			return
		}
		who := fmt.Sprintf("%s@%s", sess.User(), sess.RemoteAddr())
		ctx, end := context.WithCancelCause(sess.Context())
		defer end(nil)
		a, err := s.admit(end)
		if err != nil {
			s.log.Warn(fmt.Sprintf("ssh: refused a session of %s: %v", who, err))
			if errors.Is(err, ErrClosing) {
				refuse(sess, tr.T(i18n.SSHRefusedClosing))
			} else {
				refuse(sess, tr.T(i18n.SSHAllInUse, s.cfg.MaxSessions))
			}
			return
		}
		a.ctx, a.lang, a.pty = ctx, lang, pty
		a.in = newIdleInput(sess, s.cfg.IdleTimeout, func() { end(ErrIdle) })
		s.log.Info(fmt.Sprintf("ssh: %s for %s (%s, %d×%d)", a.proc, who, pty.Term, pty.Window.Width, pty.Window.Height))
		ran := false
		defer func() {
			status := 1
			defer func() {
				s.release(a)
				_ = sess.Exit(status)
			}()
			if !ran {
				end(errFault)
			}
			var how string
			how, status = s.leave(sess, a)
			s.log.Info(fmt.Sprintf("ssh: %s for %s ended: %s", a.proc, who, how))
		}()
		bm.MiddlewareWithProgramHandler(func(sess ssh.Session) *tea.Program { return s.program(sess, a) })(next)(sess)
		ran = true
	}
}

// program makes the ATM of session a, for the Bubble Tea middleware to
// run on the session's terminal (and to resize with its window) until the
// person quits, the session drops, it is idle for too long, the server
// shuts down, or the ATM fails: the program quits once a.ctx ends.
func (s *Server) program(sess ssh.Session, a *session) *tea.Program {
	env := append(sess.Environ(), "TERM="+a.pty.Term)
	a.atm = ui.New(ui.Config{Addr: s.cfg.BankAddr, TLS: s.cfg.BankTLS, ProcessID: a.proc, Lang: a.lang})
	var m tea.Model = a.atm
	if s.wrapModel != nil {
		m = s.wrapModel(a.proc, m)
	}
	g := &guard{m: m, proc: a.proc, log: s.log, fail: func() { a.end(errFault) }}
	p := tea.NewProgram(g, append(bm.MakeOptions(sess),
		tea.WithInput(a.in),
		tea.WithColorProfile(colorprofile.Env(env)),
		tea.WithEnvironment(env),
		tea.WithWindowSize(a.pty.Window.Width, a.pty.Window.Height),
		tea.WithoutSignalHandler(),
	)...)
	a.stopQuit = context.AfterFunc(a.ctx, p.Quit)
	return p
}

// leave ends the ATM of a session whose program is over (or never ran):
// it logs out and leaves the bank, and the terminal gets a goodbye when
// the server ended the session. It says how the session ended, and its
// exit status.
func (s *Server) leave(sess ssh.Session, a *session) (string, int) {
	a.in.stop()
	if a.stopQuit != nil {
		a.stopQuit()
	}
	cause := context.Cause(a.ctx)
	var closeErr error
	if a.atm != nil {
		closeErr = a.atm.Close() // logs out and leaves the bank
	}
	tr := i18n.For(a.lang)
	how, status := "the person quit", 0
	switch {
	case errors.Is(cause, errFault):
		how, status = "a fault of the server (logged with its stack)", 1
		goodbye(sess, tr.T(i18n.SSHFault))
	case errors.Is(cause, ErrClosing):
		how = "the bank is closing"
		goodbye(sess, tr.T(i18n.SSHClosing, s.cfg.BankName))
	case errors.Is(cause, ErrIdle):
		how = fmt.Sprintf("no key for %s", s.cfg.IdleTimeout)
		goodbye(sess, tr.T(i18n.SSHIdle, s.cfg.IdleTimeout))
	case cause != nil:
		how = "the connection dropped"
	}
	if closeErr != nil {
		how += fmt.Sprintf(" (leaving the bank: %v)", closeErr)
	}
	return how, status
}

// goodbye writes a line on the terminal after the ATM has left it.
func goodbye(sess ssh.Session, text string) {
	_, _ = fmt.Fprintf(sess, "\r\n%s\r\n", text)
}

// panicLog is the recover middleware's logger: a panic of a session,
// with its stack, as an error of the server's log.
type panicLog struct{ log *slog.Logger }

func (l panicLog) Printf(format string, v ...any) {
	l.log.Error("ssh: " + fmt.Sprintf(format, v...))
}
