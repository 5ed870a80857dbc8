package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"

	"atm/bank/boltstore"
	"atm/bank/money"

	"golang.org/x/crypto/bcrypt"

	"atm/bank"
)

const opToken = "operator-secret"

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// env is a running server on 127.0.0.1:0 over a bbolt file in a temp dir.
type env struct {
	t    *testing.T
	bank *boltstore.Bank
	srv  *server.Server
	addr string
	log  *syncBuffer // the server's JSON log
	done chan error  // Serve's result
	shut bool
	// Over TLS (newTLSEnv): addr is tls://HOST:PORT, trust what e.dial's
	// clients trust (on first use, with a known-servers file of the
	// test's), fingerprint the server's certificate.
	trust       client.TLSOptions
	fingerprint string
}

func newEnv(t *testing.T, configure ...func(*server.Server)) *env {
	t.Helper()
	return startEnv(t, false, configure...)
}

// newTLSEnv is newEnv over TLS, with a self-signed certificate.
func newTLSEnv(t *testing.T, configure ...func(*server.Server)) *env {
	t.Helper()
	return startEnv(t, true, configure...)
}

// newSmallBufferEnv is newEnv whose connections have a send buffer of a
// few kilobytes, so that a client that stops reading blocks the server's
// writes soon.
func newSmallBufferEnv(t *testing.T, configure ...func(*server.Server)) *env {
	t.Helper()
	return startEnvOn(t, false, func(l net.Listener) net.Listener { return smallBuffers{l} }, configure...)
}

// smallBuffers is a listener whose connections have a 4 KiB send buffer.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func startEnv(t *testing.T, secure bool, configure ...func(*server.Server)) *env {
	t.Helper()
	return startEnvOn(t, secure, nil, configure...)
}

// startEnvOn is startEnv serving on wrap(the listener) when wrap is not nil.
func startEnvOn(t *testing.T, secure bool, wrap func(net.Listener) net.Listener, configure ...func(*server.Server)) *env {
	t.Helper()
	e := &env{t: t, log: &syncBuffer{}, done: make(chan error, 1)}
	e.srv = &server.Server{
		OperatorToken: opToken,
		Logger:        slog.New(slog.NewJSONHandler(e.log, nil)),
	}
	for _, f := range configure {
		f(e.srv)
	}
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "bank.db"), boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost, OnEvent: e.srv.LogEvent}})
	if err != nil {
		t.Fatalf("open bank: %v", err)
	}
	e.bank = b
	e.srv.Ledger = b
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	e.addr = l.Addr().String()
	if wrap != nil {
		l = wrap(l)
	}
	if secure {
		var cfg *tls.Config
		cfg, e.fingerprint = selfSigned(t)
		l = server.NewTLSListener(l, cfg)
		e.addr = client.TLSScheme + e.addr
		e.trust = client.TLSOptions{KnownServers: filepath.Join(t.TempDir(), "known_servers")}
	}
	go func() { e.done <- e.srv.Serve(l) }()
	t.Cleanup(func() {
		e.shutdown()
		if _, err := b.Verify(context.Background()); err != nil {
			t.Errorf("verify after the test: %v", err)
		}
		b.Close()
	})
	return e
}

func (e *env) shutdown() {
	if e.shut {
		return
	}
	e.shut = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		e.t.Errorf("shutdown: %v", err)
	}
	if err := <-e.done; err != server.ErrServerClosed {
		e.t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
}

// dial returns a client that is closed at the end of the test.
func (e *env) dial(opts client.Options) *client.Client {
	e.t.Helper()
	if opts.TLS == (client.TLSOptions{}) {
		opts.TLS = e.trust
	}
	c, err := client.Dial(context.Background(), e.addr, opts)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// login dials and logs in to account.
func (e *env) login(account string, opts client.Options) *client.Client {
	e.t.Helper()
	c := e.dial(opts)
	if _, err := c.Login(ctx(e.t), account, "1234"); err != nil {
		e.t.Fatalf("login %s: %v", account, err)
	}
	return c
}

func (e *env) balance(id string) money.Cents {
	e.t.Helper()
	accts, err := e.bank.Accounts(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range accts {
		if a.ID == id {
			return a.Balance
		}
	}
	e.t.Fatalf("no account %s", id)
	return 0
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// raw is a bare TCP connection speaking the protocol by hand.
type raw struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
	ts uint64
}

func (e *env) raw() (*raw, map[string]any) {
	e.t.Helper()
	return rawAt(e.t, e.addr)
}

// rawAt opens a bare TCP connection to addr and reads the greeting.
func rawAt(t *testing.T, addr string) (*raw, map[string]any) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, br: bufio.NewReader(c)}
	return r, r.read()
}

func (r *raw) writeLine(s string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(s + "\n")); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// req sends a request with the given fields and returns the answer.
func (r *raw) req(fields map[string]any) map[string]any {
	r.t.Helper()
	r.send(fields)
	return r.read()
}

func (r *raw) send(fields map[string]any) {
	r.t.Helper()
	r.ts++
	m := map[string]any{"proc": "raw", "ts": r.ts}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	r.writeLine(string(b))
}

func (r *raw) read() map[string]any {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.br.ReadBytes('\n')
	if err != nil {
		r.t.Fatalf("read: %v (got %q)", err, line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		r.t.Fatalf("reply is not JSON: %q", line)
	}
	if ts, ok := m["ts"].(float64); ok && uint64(ts) > r.ts {
		r.ts = uint64(ts)
	}
	return m
}

// clockLog collects a client's clock events.
type clockLog struct {
	mu     sync.Mutex
	events []client.ClockEvent
}

func (l *clockLog) add(e client.ClockEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *clockLog) all() []client.ClockEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]client.ClockEvent(nil), l.events...)
}
