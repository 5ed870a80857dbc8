package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"atm/netproto/retry"
	"atm/netproto/wire"
)

// StartingLine is the one line a Gate sends on a connection it accepts
// before the bank is open, instead of the greeting. It is not a Lamport
// event and carries neither ts nor proc: the server's clock is restored
// from the store that is still being opened, so any timestamp stamped now
// could be below one the server already sent before it stopped; and
// nothing of it is recorded in the log.
const StartingLine = `{"type":"error","code":"` + wire.CodeStarting + `","message":"the bank is starting; try again in a few seconds"}` + "\n"

// maxStarting bounds the connections a Gate is telling at once that the
// bank is starting; beyond it a connection is closed without a word.
const maxStarting = 256

// Gate is the listener of a server whose bank is still opening (a bbolt
// file replaying its clock, an etcd cluster being reached). The address is
// taken at once, so a mistake such as an address in use shows before the
// long open, but until Ready is called each connection gets StartingLine
// and is closed: a port check, or an ATM, never takes a server that cannot
// answer yet for one that can. After Ready, connections go to Accept, for
// Serve, which greets them as usual.
//
// A connection from a TLS listener (NewTLSListener) gets the line inside
// TLS; a client of the plain protocol at that TLS port gets it in clear
// (it carries nothing secret).
type Gate struct {
	l      net.Listener
	logger *slog.Logger
	ready  atomic.Bool
	conns  chan net.Conn
	done   chan struct{} // closed by Close
	ended  chan struct{} // closed when the accept loop ends; err is then set
	err    error

	closeOnce sync.Once
	mu        sync.Mutex
	telling   map[net.Conn]struct{} // connections being told, closed by Close
	closed    bool
	wg        sync.WaitGroup
	told      atomic.Int64
}

// NewGate starts accepting on l, answering every connection with
// StartingLine until Ready. logger (nil: no output) gets one line, without
// L (it is no clock change), per connection told.
func NewGate(l net.Listener, logger *slog.Logger) *Gate {
	g := &Gate{l: l, logger: logger, conns: make(chan net.Conn), done: make(chan struct{}),
		ended: make(chan struct{}), telling: make(map[net.Conn]struct{})}
	go g.loop()
	return g
}

// Ready says the bank is open: from now on connections go to Accept. Call
// it once Server.Ledger is set, before or after Serve starts on the gate.
func (g *Gate) Ready() { g.ready.Store(true) }

// Told returns the number of connections told that the bank is starting.
func (g *Gate) Told() int64 { return g.told.Load() }

// Accept returns the next connection accepted after Ready.
func (g *Gate) Accept() (net.Conn, error) {
	select {
	case nc := <-g.conns:
		return nc, nil
	case <-g.ended:
		return nil, g.err
	}
}

// Addr is the address of the listener.
func (g *Gate) Addr() net.Addr { return g.l.Addr() }

// Close closes the listener and the connections being told, and waits
// for them.
func (g *Gate) Close() error {
	var err error
	g.closeOnce.Do(func() {
		close(g.done)
		err = g.l.Close()
		g.mu.Lock()
		g.closed = true
		for nc := range g.telling {
			nc.Close()
		}
		g.mu.Unlock()
		<-g.ended
		g.wg.Wait()
	})
	return err
}

// loop accepts until the listener fails or closes: each connection is told
// the bank is starting, or, once ready, handed to Accept.
func (g *Gate) loop() {
	defer close(g.ended)
	backoff := retry.Backoff{Min: 5 * time.Millisecond, Max: time.Second}
	for {
		nc, err := g.l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				t := time.NewTimer(backoff.Next())
				select {
				case <-t.C:
					continue
				case <-g.done:
					t.Stop()
				}
			}
			g.err = err
			return
		}
		backoff.Reset()
		if !g.ready.Load() {
			g.tell(nc)
			continue
		}
		select {
		case g.conns <- nc:
		case <-g.done:
			nc.Close()
			g.err = net.ErrClosed
			return
		}
	}
}

// tell sends StartingLine on nc, in its own goroutine, and closes it.
func (g *Gate) tell(nc net.Conn) {
	g.mu.Lock()
	if g.closed || len(g.telling) >= maxStarting {
		g.mu.Unlock()
		nc.Close()
		return
	}
	g.telling[nc] = struct{}{}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		defer func() {
			g.mu.Lock()
			delete(g.telling, nc)
			g.mu.Unlock()
			nc.Close()
		}()
		defer func() {
			if r := recover(); r != nil && g.logger != nil {
				g.logger.Error(fmt.Sprintf("panic telling %s the bank is starting: %v\n%s", nc.RemoteAddr(), r, debug.Stack()))
			}
		}()
		w, how := g.writer(nc)
		if w == nil {
			return
		}
		_ = nc.SetWriteDeadline(time.Now().Add(DefaultWriteTimeout))
		if _, err := io.WriteString(w, StartingLine); err != nil {
			return
		}
		g.told.Add(1)
		if g.logger != nil {
			remote := nc.RemoteAddr().String()
			g.logger.LogAttrs(context.Background(), slog.LevelInfo,
				fmt.Sprintf("told %s the bank is starting%s (no greeting, connection closed)", remote, how),
				slog.String("code", wire.CodeStarting), slog.String("remote", remote))
		}
		linger(w)
	}()
}

// linger half-closes a TCP connection whose line is written and reads
// what the client sent, for a moment, before the connection is closed: a
// socket closed with unread input is reset, and the reset could reach the
// client before the line does.
func linger(w io.Writer) {
	tc, ok := w.(*net.TCPConn)
	if !ok || tc.CloseWrite() != nil {
		return
	}
	_ = tc.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(tc, 64<<10))
}

// writer is where the line goes on nc: nc itself on a plain listener; on a
// TLS listener, the TLS connection once its handshake is done, or the raw
// connection for a client that does not start one (within PlainClientWait).
// It is nil when the connection fails first.
func (g *Gate) writer(nc net.Conn) (io.Writer, string) {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nc, ""
	}
	pc, _ := tc.NetConn().(*peekConn)
	if pc != nil {
		_ = pc.SetReadDeadline(time.Now().Add(PlainClientWait))
		first, err := pc.br.Peek(1)
		if err != nil && !isTimeout(err) {
			return nil, ""
		}
		if err != nil || first[0] != tlsRecordHandshake {
			return pc.Conn, " (in clear: a plain client on the TLS port)"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
	defer cancel()
	go func() {
		select {
		case <-g.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	_ = tc.SetDeadline(time.Now().Add(HandshakeTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, ""
	}
	return tc, ""
}
