package server_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank/boltstore"
	"atm/bank/lamport"

	"golang.org/x/crypto/bcrypt"

	"atm/bank"
)

// heldServer is a server started as atm serve starts one: it listens
// through a Gate at once, then opens its bbolt file, which another handle
// holds (bbolt locks the file with flock), so the open waits until the
// test releases it: a bank slow to open, for real.
type heldServer struct {
	t      *testing.T
	addr   string // HOST:PORT
	db     string
	gate   *server.Gate
	srv    *server.Server
	log    *syncBuffer
	hold   io.Closer
	opened chan error // the open's result, once the hold is released
	served chan error // Serve's result
	bank   *boltstore.Bank
}

// startHeld listens on addr ("127.0.0.1:0": any port), over TLS with cfg
// if it is not nil, and opens db, held by hold, in the background.
func startHeld(t *testing.T, addr, db string, hold io.Closer, cfg *tls.Config) *heldServer {
	t.Helper()
	h := &heldServer{t: t, db: db, log: &syncBuffer{}, hold: hold, opened: make(chan error, 1), served: make(chan error, 1)}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	h.addr = l.Addr().String()
	if cfg != nil {
		l = server.NewTLSListener(l, cfg)
	}
	logger := slog.New(slog.NewJSONHandler(h.log, nil))
	h.gate = server.NewGate(l, logger)
	h.srv = &server.Server{Logger: logger, OperatorToken: opToken}
	go func() {
		b, err := boltstore.Open(db, boltstore.Options{OpenTimeout: time.Minute,
			Options: bank.Options{PINCost: bcrypt.MinCost, OnEvent: h.srv.LogEvent}})
		if err != nil {
			h.gate.Close()
			h.opened <- err
			return
		}
		h.bank = b
		h.srv.Ledger = b
		h.gate.Ready()
		h.opened <- nil
		h.served <- h.srv.Serve(h.gate)
	}()
	t.Cleanup(h.stop)
	return h
}

// release lets the open go on and waits until the bank is open.
func (h *heldServer) release() {
	h.t.Helper()
	if h.hold == nil {
		return
	}
	if err := h.hold.Close(); err != nil {
		h.t.Fatalf("release the database: %v", err)
	}
	h.hold = nil
	select {
	case err := <-h.opened:
		if err != nil {
			h.t.Fatalf("open the bank: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Fatal("the bank did not open within 30 s of its release")
	}
}

// stop shuts the server down and closes its bank, once.
func (h *heldServer) stop() {
	if h.hold != nil { // the test ended early: the open goes on, then stops
		h.hold.Close()
		h.hold = nil
		if err := <-h.opened; err != nil {
			return
		}
	}
	if h.bank == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		h.t.Errorf("shutdown: %v", err)
	}
	if err := <-h.served; !errors.Is(err, server.ErrServerClosed) {
		h.t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	if _, err := h.bank.Verify(context.Background()); err != nil {
		h.t.Errorf("verify: %v", err)
	}
	h.bank.Close()
	h.bank = nil
}

// stillOpening fails the test if the bank opened: the hold must keep it
// waiting.
func (h *heldServer) stillOpening() {
	h.t.Helper()
	select {
	case err := <-h.opened:
		h.t.Fatalf("the bank opened (%v) while its file was held", err)
	default:
	}
}

// newHeldDB makes a bank file in a temporary directory and returns it held
// by an open handle.
func newHeldDB(t *testing.T) (string, *boltstore.Bank) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "bank.db")
	hold, err := boltstore.Open(db, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	return db, hold
}

// readAll reads what the server writes on c until it closes it.
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read until the server closes: %v (got %q)", err, b)
	}
	return string(b)
}

// checkStartingLine checks got is the starting answer and nothing else, as
// PROTOCOL.md describes it: one error line with code starting, no ts, no
// proc.
func checkStartingLine(t *testing.T, got string) {
	t.Helper()
	if got != server.StartingLine {
		t.Fatalf("before the bank is open the server said %q, want exactly %q", got, server.StartingLine)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatal(err)
	}
	if m["type"] != "error" || m["code"] != "starting" || m["message"] == "" {
		t.Errorf("starting answer: %v", m)
	}
	for _, k := range []string{"ts", "proc", "id"} {
		if _, ok := m[k]; ok {
			t.Errorf("the starting answer carries %q: %s", k, got)
		}
	}
}

// noClockRecords fails if the server's log holds a clock change (a record
// with L) before its bank is open.
func noClockRecords(t *testing.T, log []byte) (told int) {
	t.Helper()
	for line := range strings.SplitSeq(strings.TrimSpace(string(log)), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if _, ok := rec["L"]; ok {
			t.Errorf("a clock change before the bank is open: %s", line)
		}
		if rec["code"] == wire.CodeStarting {
			told++
		}
	}
	return told
}

// TestStartingUntilTheBankIsOpen: while the bank's file is still being
// opened, the port answers every connection with the starting line (no
// timestamp, no process id, nothing on either clock) and closes it; the
// client library returns it as wire.ErrStarting. Once the bank is open the
// same port greets as usual and serves.
func TestStartingUntilTheBankIsOpen(t *testing.T) {
	t.Parallel()
	db, hold := newHeldDB(t)
	h := startHeld(t, "127.0.0.1:0", db, hold, nil)

	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	checkStartingLine(t, readAll(t, c))
	c.Close()

	var events clockLog
	clock := lamport.NewClock(0)
	_, err = client.Dial(context.Background(), h.addr, client.Options{ProcessID: "atm-early", Clock: clock, OnEvent: events.add})
	if !errors.Is(err, wire.ErrStarting) {
		t.Fatalf("Dial before the bank is open: %v, want an error matching wire.ErrStarting", err)
	}
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeStarting || pe.TS != 0 {
		t.Fatalf("Dial's error: %#v", err)
	}
	if clock.Now() != 0 || len(events.all()) != 0 {
		t.Errorf("the starting answer moved the client's clock to %d (%d events); it is no Lamport event", clock.Now(), len(events.all()))
	}

	// A client that writes before the greeting, against the protocol,
	// still reads the line (the server reads what it sent before closing).
	c, err = net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(`{"type":"balance","id":"x1","ts":5}` + "\n")); err != nil {
		t.Fatal(err)
	}
	checkStartingLine(t, readAll(t, c))
	c.Close()

	h.stillOpening()
	if told := noClockRecords(t, h.log.Bytes()); told != 3 || h.gate.Told() != 3 {
		t.Errorf("the log says %d connections were told the bank is starting, the gate %d; want 3", told, h.gate.Told())
	}

	h.release()
	r, hello := rawAt(t, h.addr)
	if hello["type"] != "hello" || hello["proc"] != "bank" || hello["ts"].(float64) <= 0 {
		t.Fatalf("greeting once the bank is open: %v", hello)
	}
	if m := r.req(map[string]any{"type": "login", "id": "r1", "account": "123", "pin": "1234"}); m["type"] != "reply" {
		t.Fatalf("login once open: %v", m)
	}
	cl, err := client.Dial(context.Background(), h.addr, client.Options{ProcessID: "atm-late", Clock: clock, OnEvent: events.add})
	if err != nil {
		t.Fatalf("Dial once the bank is open: %v", err)
	}
	defer cl.Close()
	if _, err := cl.Login(ctx(t), "456", "1234"); err != nil {
		t.Fatalf("login once open: %v", err)
	}
	t.Logf("FIGURES: %d connections told the bank is starting while its file was held; then greeted at L=%v", h.gate.Told(), hello["ts"])
}

// TestStartingOverTLS: on a TLS port the starting line comes inside TLS
// to a TLS client, and in clear to a client of the plain protocol.
func TestStartingOverTLS(t *testing.T) {
	t.Parallel()
	db, hold := newHeldDB(t)
	cfg, _ := selfSigned(t)
	h := startHeld(t, "127.0.0.1:0", db, hold, cfg)
	trust := client.TLSOptions{KnownServers: filepath.Join(t.TempDir(), "known_servers")}

	_, err := client.Dial(context.Background(), client.TLSScheme+h.addr, client.Options{TLS: trust})
	if !errors.Is(err, wire.ErrStarting) {
		t.Fatalf("TLS Dial before the bank is open: %v, want an error matching wire.ErrStarting", err)
	}
	tc, err := tls.Dial("tcp", h.addr, &tls.Config{InsecureSkipVerify: true}) // the fingerprint is not what is tested here
	if err != nil {
		t.Fatal(err)
	}
	checkStartingLine(t, readAll(t, tc))
	tc.Close()

	// A plain client that speaks first (it would otherwise wait
	// server.PlainClientWait for the server to see it is not TLS).
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(`{"type":"balance","id":"x1","ts":1}` + "\n")); err != nil {
		t.Fatal(err)
	}
	checkStartingLine(t, readAll(t, c))
	c.Close()
	h.stillOpening()
	noClockRecords(t, h.log.Bytes())

	h.release()
	cl, err := client.Dial(context.Background(), client.TLSScheme+h.addr, client.Options{TLS: trust})
	if err != nil {
		t.Fatalf("TLS Dial once the bank is open: %v", err)
	}
	defer cl.Close()
	if _, err := cl.Login(ctx(t), "123", "1234"); err != nil {
		t.Fatalf("login over TLS once open: %v", err)
	}
}

// TestReconnectWaitsForAStartingBank: a client with Reconnect on, logged
// in, loses its server; the server comes back on the same port but its
// file is held, so it answers starting. The client keeps trying (its
// reconnection statuses carry wire.ErrStarting) and, once the bank is
// open, reconnects, logs in again by itself and is served.
func TestReconnectWaitsForAStartingBank(t *testing.T) {
	t.Parallel()
	db, hold := newHeldDB(t)
	first := startHeld(t, "127.0.0.1:0", db, hold, nil)
	first.release()

	cl, err := client.Dial(context.Background(), first.addr, client.Options{ProcessID: "atm-r", Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Login(ctx(t), "123", "1234"); err != nil {
		t.Fatal(err)
	}
	first.stop()

	// The file is held again (a reader's shared lock keeps a writer out)
	// before the server is started again on the same address.
	reader, err := boltstore.OpenReadOnly(db, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	second := startHeld(t, first.addr, db, reader, nil)

	wait := func(what string, ok func(client.ConnStatus) bool) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case s, open := <-cl.Status():
				if !open {
					t.Fatalf("the client closed while waiting for %s", what)
				}
				if ok(s) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s within 30 s", what)
			}
		}
	}
	startingSeen := 0
	wait("reconnection attempt refused as starting", func(s client.ConnStatus) bool {
		if s.State == client.StateReconnected {
			t.Fatal("the client reconnected while the bank was still opening")
		}
		if s.State == client.StateReconnecting && errors.Is(s.Err, wire.ErrStarting) {
			startingSeen++
		}
		return startingSeen >= 2
	})
	second.stillOpening()

	second.release()
	cl.RetryNow()
	wait("reconnection once open", func(s client.ConnStatus) bool {
		if s.State == client.StateReconnected && s.Err != nil {
			t.Fatalf("reconnected without the session: %v", s.Err)
		}
		return s.State == client.StateReconnected
	})
	if _, err := cl.Balance(ctx(t)); err != nil {
		t.Fatalf("balance after the bank opened: %v", err)
	}
	t.Logf("FIGURES: %d reconnection attempts answered starting, then reconnected and logged in again", startingSeen)
}
