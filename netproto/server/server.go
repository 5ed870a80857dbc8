package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"atm/netproto/retry"
	"atm/netproto/wire"

	"atm/bank"
)

// Server defaults.
const (
	DefaultIdleTimeout  = 5 * time.Minute
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxConns     = 10000
	DefaultLoginBackoff = 500 * time.Millisecond
	maxLoginBackoff     = 30 * time.Second
	// DefaultMaxPushQueue bounds the pushes waiting for one connection;
	// beyond it the oldest are dropped (and counted in the log).
	DefaultMaxPushQueue = 256
	// DefaultMaxFollowQueue bounds the log entries waiting for one
	// connection that follows the log; beyond it the subscription ends
	// with log_behind.
	DefaultMaxFollowQueue = 4 * wire.MaxLogLimit
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Server serves a bank over the line protocol described in wire/PROTOCOL.md. Its
// zero value is usable once Ledger is set.
//
// Guarantees:
//   - Each connection is served by one goroutine that handles its requests
//     one at a time, so replies leave in request order even when requests
//     are pipelined. Money changes are serialised by the bank.
//   - Every field from the wire is checked before it is used, stored or
//     printed (see validate.go): a line is one I-JSON object; ts, proc, id
//     and account ids have documented ranges and characters.
//   - Every answer is a receive then a send. Receiving a request observes
//     its timestamp on the bank's clock, unless the timestamp is refused
//     (above wire.MaxTS, or further above the clock than MaxJumpLoggedOut or
//     MaxJump): then the receive observes nothing and the answer is
//     invalid_timestamp. For an operation the bank ticks for the apply
//     event and reserves the reply's timestamp, all recorded in one event.
//   - Timestamps rise strictly along each connection: one lock orders every
//     write, messages of the server's own are stamped as they are written
//     (with Bank.SendTick, so that a crash never lets the clock resume
//     below them), and pushes wait while a request of the connection is at
//     the ledger. A push carries no balance older than one already sent on
//     the connection. At most MaxPushQueue pushes wait for a connection.
//   - A session is bound to the account it logged in to; operations act on
//     that account only and any account id they carry is checked against it.
//   - Malformed, oversized or unknown input gets an error reply; it never
//     stops the server or reaches the ledger.
//   - Logging never holds up the ledger when Logger's handler does not
//     block: atm serve wraps its output in an AsyncHandler.
//   - With a ledger that other servers share (a ChangeFeed), the money
//     changes they commit are received on the clock, then pushed to this
//     server's sessions as its own changes are.
//   - On a listener from NewTLSListener, the TLS handshake runs on the
//     connection's own goroutine, within HandshakeTimeout, never in the
//     accept loop; a connection whose handshake fails never reaches the
//     bank (no connect event) and is logged as a warning. On a plain
//     listener, a client that opens with a TLS handshake is closed at once.
//   - A panic in a goroutine of a connection (serving its requests, or
//     sending its pushes) is logged with its stack and closes that
//     connection at once, without a word: no answer is sent to the request
//     in hand, whose outcome is then unknown to the client (it resends it
//     with the same id). Every other connection, and the server, go on.
//   - Shutdown stops accepting, lets every connection finish the request it
//     is handling, sends each one a "bye", waits for them and records
//     the server's stop; if its context ends first it closes them and
//     returns at once.
type Server struct {
	Ledger        Ledger        // the bank it serves (a *bank.Ledger on one of its stores)
	IdleTimeout   time.Duration // default 5m; the connection is closed after this long without a request
	WriteTimeout  time.Duration // default 10s per write
	MaxConns      int           // default 10000; excess get a "server_busy" error line then close
	MaxLineBytes  int           // default 64 KiB
	OperatorToken string        // enables operator ops (audit, open_account) when non-empty
	// Logger receives one record per clock change: receives and protocol
	// replies from here, committed events through LogEvent (wire it as
	// bank.Options.OnEvent). Nil means no output, but for a panic's
	// report, which goes to slog.Default.
	Logger *slog.Logger
	// LoginBackoff is the wait imposed on a connection after its first
	// failed login; it doubles with each further failure (up to 30s) and
	// resets on success. Default 500ms.
	LoginBackoff time.Duration
	// Now is the wall clock, for the login backoff; default time.Now.
	Now func() time.Time
	// MinDelay and MaxDelay, when MaxDelay is set, make every message the
	// server sends wait a random time in [MinDelay, MaxDelay] before it is
	// written (in order on each connection), so that messages to different
	// clients cross: a mode for teaching logical time. The greeting says so.
	MinDelay, MaxDelay time.Duration
	// MaxPushQueue bounds the pushes waiting for one connection (a client
	// that does not read, or reads slowly); beyond it the oldest are
	// dropped and the drop is logged. Default 256.
	MaxPushQueue int
	// MaxFollowQueue bounds the log entries read for a connection that
	// follows the log and not yet written to it (a page always fits when
	// none wait); when a page does not fit, the subscription ends with a
	// log_behind message. Default 4000.
	MaxFollowQueue int

	initOnce  sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	mu        sync.Mutex
	shutting  atomic.Bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	sessions  map[string]map[*conn]struct{}
	wg        sync.WaitGroup
	started   atomic.Bool
	stopOnce  sync.Once
	feedDone  chan struct{} // closed when the change feed's goroutine ends

	// For tests, to make a fault where one must stay within its
	// connection: onReply is called with each request the bank has run,
	// before its reply is built; onPush with each batch of pushes of a
	// connection, before it is recorded.
	onReply func(req *wire.Message)
	onPush  func(events []bank.Event)
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		s.sessions = make(map[string]map[*conn]struct{})
	})
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return DefaultIdleTimeout
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return DefaultMaxConns
}

func (s *Server) maxLine() int {
	if s.MaxLineBytes > 0 {
		return s.MaxLineBytes
	}
	return wire.DefaultMaxLineBytes
}

func (s *Server) maxFollowQueue() int {
	if s.MaxFollowQueue > 0 {
		return s.MaxFollowQueue
	}
	return DefaultMaxFollowQueue
}

func (s *Server) maxPushQueue() int {
	if s.MaxPushQueue > 0 {
		return s.MaxPushQueue
	}
	return DefaultMaxPushQueue
}

// delay is the wait before the next message, 0 when delays are off.
func (s *Server) delay() time.Duration {
	if s.MaxDelay <= 0 {
		return 0
	}
	lo := min(s.MinDelay, s.MaxDelay)
	return lo + rand.N(s.MaxDelay-lo+1)
}

// greeting is the text of the greeting.
func (s *Server) greeting() string {
	if s.MaxDelay <= 0 {
		return "connection established"
	}
	return fmt.Sprintf("connection established; this server delays each message by %s to %s, so that messages cross (teaching mode)",
		min(s.MinDelay, s.MaxDelay), s.MaxDelay)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) loginDelay(fails int) time.Duration {
	d := s.LoginBackoff
	if d <= 0 {
		d = DefaultLoginBackoff
	}
	for i := 1; i < fails && d < maxLoginBackoff; i++ {
		d *= 2
	}
	return min(d, maxLoginBackoff)
}

// Serve accepts connections on l until Shutdown and serves each in its own
// goroutine. The first call records the server's start event. It returns
// ErrServerClosed after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if s.Ledger == nil {
		return errors.New("server: Server.Ledger is nil")
	}
	s.init()
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	if s.started.CompareAndSwap(false, true) {
		_, err := s.Ledger.Record(s.ctx, bank.Event{Kind: bank.KindServerStart, Client: s.Ledger.ProcessID(),
			Detail: "listening on " + l.Addr().String()})
		if err != nil {
			return fmt.Errorf("record the server start: %w", err)
		}
		s.startFeed()
	}
	backoff := retry.Backoff{Min: 5 * time.Millisecond, Max: time.Second}
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				time.Sleep(backoff.Next())
				continue
			}
			return fmt.Errorf("accept on %s: %w", l.Addr(), err)
		}
		backoff.Reset()
		s.mu.Lock()
		if s.shutting.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		if len(s.conns) >= s.maxConns() {
			s.mu.Unlock()
			go s.reject(nc)
			continue
		}
		c := newConn(s, nc)
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// reject tells an excess client the server is busy and closes it.
func (s *Server) reject(nc net.Conn) {
	defer s.wg.Done()
	defer nc.Close()
	defer s.recoverPanic("refusing a connection from " + nc.RemoteAddr().String())
	ctx, cancel := context.WithTimeout(s.ctx, s.writeTimeout())
	defer cancel()
	ts, err := s.Ledger.SendTick(ctx)
	if err != nil {
		return
	}
	s.logf(ts, "send", fmt.Sprintf("send error server_busy to %s (at the limit of %d connections)", nc.RemoteAddr(), s.maxConns()),
		slog.String("code", wire.CodeServerBusy), slog.String("remote", nc.RemoteAddr().String()))
	m := &wire.Message{Type: wire.TypeError, Proc: s.Ledger.ProcessID(), TS: ts, Code: wire.CodeServerBusy,
		Message: "the bank is serving too many ATMs right now; try again in a moment"}
	b, _ := json.Marshal(m)
	_ = nc.SetDeadline(time.Now().Add(s.writeTimeout())) // over TLS, the write runs the handshake
	_, _ = nc.Write(append(b, '\n'))
}

// Shutdown stops the server gracefully: it closes the listeners, lets each
// connection finish the request in hand, sends it a "bye" and closes it,
// waits for all of them, then records the stop event. If ctx ends first,
// Shutdown closes the remaining connections, cancels the bank operations
// they are waiting for, and returns ctx's error at once, without waiting
// for them or recording the stop. It does not close the Bank.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.shutting.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0)) // wake a blocked read
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		s.cancel()
		s.stopFeed()
		return ctx.Err()
	}
	var err error
	s.stopOnce.Do(func() {
		if s.started.Load() {
			if _, rerr := s.Ledger.Record(ctx, bank.Event{Kind: bank.KindServerStop, Client: s.Ledger.ProcessID(),
				Detail: "graceful shutdown"}); rerr != nil {
				err = fmt.Errorf("record the server stop: %w", rerr)
			}
		}
	})
	s.cancel()
	s.stopFeed()
	return err
}
