package ui

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
	"atm/netproto"
)

// EmbeddedServer is a bank server running inside an ATM process: started
// when `atm` finds nobody answering on the default address. Its log goes to
// a file next to the database, never to the terminal the ATM draws on.
type EmbeddedServer struct {
	Addr    string // where it listens
	DBPath  string
	LogPath string

	bank *bank.Bank
	srv  *netproto.Server
	log  *os.File
	done chan error
}

// StartEmbedded opens the database at dbPath (created with the default
// accounts when new) and serves it on addr. It fails when addr is taken or
// another process holds the database.
func StartEmbedded(addr, dbPath string) (*EmbeddedServer, error) {
	return startEmbedded(addr, dbPath, bank.Options{})
}

// startEmbedded is StartEmbedded with bank options (OnEvent is replaced by
// the server's log).
func startEmbedded(addr, dbPath string, opts bank.Options) (*EmbeddedServer, error) {
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return nil, fmt.Errorf("create the database directory: %w", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(filepath.Dir(dbPath), "server.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("open the server log: %w", err)
	}
	logger := slog.New(netproto.NewLineHandler(lf, nil))
	srv := &netproto.Server{Logger: logger}
	opts.OnEvent = srv.LogEvent
	b, err := bank.Open(dbPath, opts)
	if err != nil {
		l.Close()
		lf.Close()
		return nil, err
	}
	srv.Bank = b
	logger.Info(fmt.Sprintf("serving %s on %s inside an ATM (protocol v%d), process id %s", dbPath, l.Addr(), netproto.Version, b.ProcessID()))
	e := &EmbeddedServer{Addr: l.Addr().String(), DBPath: dbPath, LogPath: logPath, bank: b, srv: srv, log: lf, done: make(chan error, 1)}
	go func() { e.done <- srv.Serve(l) }()
	return e, nil
}

// Close stops the server (connected ATMs get a goodbye and reconnect
// elsewhere), then closes the database and the log.
func (e *EmbeddedServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	if serr := <-e.done; serr != nil && !errors.Is(serr, netproto.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	err = errors.Join(err, e.bank.Close(), e.log.Close())
	return err
}
