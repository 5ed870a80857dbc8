package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"atm/netproto/wire"
)

// TLS on the server: a TLS listener's connections carry the same protocol
// inside TLS. The handshake runs on the connection's own goroutine, never
// in the accept loop.

// Handshake limits.
const (
	// HandshakeTimeout bounds a TLS handshake.
	HandshakeTimeout = 10 * time.Second
	// PlainClientWait is how long a TLS port waits for a client's first
	// byte. A TLS client sends its hello at once; a client of the plain
	// protocol waits for the bank to greet first, so a silent client is
	// told, in a plain line, that this port speaks TLS.
	PlainClientWait = 2 * time.Second
	// tlsRecordHandshake is the first byte of a TLS client's hello.
	tlsRecordHandshake = 0x16
)

// NewTLSListener returns a listener for Serve whose connections speak TLS
// with config (which must hold a certificate). A client that does not
// start a TLS handshake within PlainClientWait, or starts with anything
// else, gets one plain error line with code tls_required, saying to connect
// with tls://, and is closed.
func NewTLSListener(l net.Listener, config *tls.Config) net.Listener {
	return &tlsListener{Listener: l, config: config}
}

type tlsListener struct {
	net.Listener
	config *tls.Config
}

func (l *tlsListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc := &peekConn{Conn: nc, br: bufio.NewReaderSize(nc, 512)}
	return tls.Server(pc, l.config), nil
}

// peekConn is a connection whose first bytes can be looked at before TLS
// reads them.
type peekConn struct {
	net.Conn
	br *bufio.Reader
}

func (p *peekConn) Read(b []byte) (int, error) { return p.br.Read(b) }

// errPlainOnTLS is why a plain client's connection to a TLS port closed.
var errPlainOnTLS = errors.New("a plain client on the TLS port (told to use tls://)")

// handshake runs the TLS handshake of a connection from a TLS listener. A
// client that speaks the plain protocol is told so in a plain line; the
// returned error is the reason the connection closes.
func (c *conn) handshake(tc *tls.Conn) error {
	s := c.s
	pc, _ := tc.NetConn().(*peekConn)
	if pc != nil {
		_ = pc.SetReadDeadline(time.Now().Add(PlainClientWait))
		first, err := pc.br.Peek(1)
		if err != nil && !isTimeout(err) {
			return fmt.Errorf("closed before the TLS handshake: %w", err)
		}
		if err != nil || first[0] != tlsRecordHandshake {
			c.tellPlainClient(pc)
			return errPlainOnTLS
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, HandshakeTimeout)
	defer cancel()
	_ = tc.SetDeadline(time.Now().Add(HandshakeTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake failed: %w", err)
	}
	_ = tc.SetDeadline(time.Time{})
	return nil
}

// tellPlainClient writes, in clear, the error line that tells a client of
// the plain protocol to connect with TLS. It carries nothing secret.
func (c *conn) tellPlainClient(raw net.Conn) {
	s := c.s
	ctx, cancel := context.WithTimeout(s.ctx, s.writeTimeout())
	defer cancel()
	ts, err := s.Ledger.SendTick(ctx)
	if err != nil {
		return
	}
	s.logf(ts, "send", fmt.Sprintf("send error %s to %s (a plain client on the TLS port)", wire.CodeTLSRequired, c.remote),
		slog.String("code", wire.CodeTLSRequired), slog.String("remote", c.remote))
	m := &wire.Message{Type: wire.TypeError, Proc: s.Ledger.ProcessID(), TS: ts, Code: wire.CodeTLSRequired,
		Message: "this bank's port speaks TLS only: connect with tls://" + raw.LocalAddr().String()}
	b, _ := json.Marshal(m)
	_ = raw.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	_, _ = raw.Write(append(b, '\n'))
}

// tlsOnPlain reports whether the first byte a client sent on a plain port
// starts a TLS handshake: a TLS client at a port without TLS. Its hello is
// not a line, so the connection is closed instead of waiting for one.
func (c *conn) tlsOnPlain() bool {
	first, err := c.br.Peek(1)
	return err == nil && first[0] == tlsRecordHandshake
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
