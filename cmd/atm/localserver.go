package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/ui"

	"atm/netproto/server"
	"atm/netproto/wire"
)

// localServer is a bank server running inside an ATM process: started
// when `atm` finds nobody answering on the default address. Its log goes to
// a file next to the database, never to the terminal the ATM draws on. It is
// the ui's LocalServer.
type localServer struct {
	addr    string // where it listens
	dbPath  string
	logPath string

	bank *boltstore.Bank
	srv  *server.Server
	log  *os.File
	done chan error
}

// startLocalServer opens the database at dbPath (created with the default
// accounts when new) and serves it on addr: the ui's Config.StartServer. It
// fails when addr is taken or another process holds the database.
func startLocalServer(addr, dbPath string) (ui.LocalServer, error) {
	e, err := openLocalServer(addr, dbPath, boltstore.Options{Options: bank.Options{CheckpointEvery: defaultCheckpointEvery}})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// openLocalServer is startLocalServer with bank options (OnEvent is replaced
// by the server's log).
func openLocalServer(addr, dbPath string, opts boltstore.Options) (*localServer, error) {
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return nil, fmt.Errorf("create the database directory: %w", err)
	}
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(filepath.Dir(dbPath), "server.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("open the server log: %w", err)
	}
	logger := slog.New(server.NewLineHandler(lf, nil))
	// Other ATMs that find the address taken are told the bank is
	// starting until the database is open.
	l := server.NewGate(nl, logger)
	tok, err := operatorToken(dbPath, "")
	if err != nil {
		l.Close()
		lf.Close()
		return nil, err
	}
	srv := &server.Server{Logger: logger, OperatorToken: tok}
	opts.OnEvent = srv.LogEvent
	b, err := boltstore.Open(dbPath, opts)
	if err != nil {
		l.Close()
		lf.Close()
		return nil, err
	}
	srv.Ledger = b
	l.Ready()
	logger.Info(fmt.Sprintf("serving %s on %s inside an ATM (protocol v%d), process id %s", dbPath, l.Addr(), wire.Version, b.ProcessID()))
	e := &localServer{addr: l.Addr().String(), dbPath: dbPath, logPath: logPath, bank: b, srv: srv, log: lf, done: make(chan error, 1)}
	go func() { e.done <- srv.Serve(l) }()
	return e, nil
}

// Addr is where the server listens.
func (e *localServer) Addr() string { return e.addr }

// DBPath is the server's database.
func (e *localServer) DBPath() string { return e.dbPath }

// Close stops the server (connected ATMs get a goodbye and reconnect
// elsewhere), then closes the database and the log.
func (e *localServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	if serr := <-e.done; serr != nil && !errors.Is(serr, server.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	err = errors.Join(err, e.bank.Close(), e.log.Close())
	return err
}
