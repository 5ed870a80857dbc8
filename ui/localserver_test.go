package ui

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/netproto/server"
)

// testLocalServer is a real bank server in the test's process, on a real
// bbolt file and real TCP, as atm starts one inside an ATM (with cheap PIN
// hashing).
type testLocalServer struct {
	addr, db string
	bank     *boltstore.Bank
	srv      *server.Server
	done     chan error
}

// startTestServer serves the database at db on addr: the Config.StartServer
// of the end-to-end tests.
func startTestServer(addr, db string) (LocalServer, error) {
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &server.Server{}
	b, err := boltstore.Open(db, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost}})
	if err != nil {
		l.Close()
		return nil, err
	}
	srv.Ledger = b
	s := &testLocalServer{addr: l.Addr().String(), db: db, bank: b, srv: srv, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(l) }()
	return s, nil
}

func (s *testLocalServer) Addr() string   { return s.addr }
func (s *testLocalServer) DBPath() string { return s.db }

func (s *testLocalServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; serr != nil && !errors.Is(serr, server.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, s.bank.Close())
}

// stubLocal stands for a started server in screen tests, which never dial.
type stubLocal struct{ addr, db string }

func (s stubLocal) Addr() string   { return s.addr }
func (s stubLocal) DBPath() string { return s.db }
func (s stubLocal) Close() error   { return nil }
