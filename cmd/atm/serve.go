package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"atm/cmd/atm/internal/cli"
	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/money"
)

func runServe(args []string) int {
	fs := cli.NewFlagSet("atm serve")
	addr := fs.String("addr", wire.DefaultAddr, "TCP address to listen on")
	db := fs.String("db", defaultDBPath(), "bank database file (created with the default accounts if new)")
	logFormat := fs.String("log-format", "text", "output format: text (one line per clock change) or json")
	token := fs.String("operator-token", os.Getenv("ATM_OPERATOR_TOKEN"), "token of the operator operations (audit, open_account, log): default $ATM_OPERATOR_TOKEN, else the one kept in operator.token beside the database, made on first start (mode 0600)")
	delay := fs.String("delay", "", "teaching mode: each message waits a random time in MIN-MAX (e.g. 50ms-300ms) before it is sent, so that messages to different ATMs cross")
	idle := fs.Duration("idle-timeout", server.DefaultIdleTimeout, "close a connection after this long without a request")
	maxConns := fs.Int("max-conns", server.DefaultMaxConns, "maximum simultaneous connections; more get a server_busy error")
	maxAmount := fs.Int64("max-amount", 0, "per-operation limit in cents (0: the bank's default, 10000000 = R$ 100.000,00)")
	shutdownWait := fs.Duration("shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long to wait for connections to finish")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: atm serve [--addr HOST:PORT] [--db PATH] [--log-format text|json]")
		fs.PrintDefaults()
	}
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}

	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = server.NewLineHandler(os.Stdout, nil)
	case "json":
		handler = slog.NewJSONHandler(os.Stdout, nil)
	default:
		fmt.Fprintf(os.Stderr, "atm serve: --log-format must be text or json, not %q\n", *logFormat)
		return 2
	}
	if *maxAmount < 0 {
		fmt.Fprintln(os.Stderr, "atm serve: --max-amount must be positive (cents), or 0 for the default")
		return 2
	}
	minDelay, maxDelay, err := parseDelay(*delay)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 2
	}
	// The output never holds up the bank: records go through a bounded
	// queue, and what a stalled terminal makes it drop is counted.
	async := server.NewAsyncHandler(handler, 0)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = async.Close(ctx)
	}()
	logger := slog.New(async)

	srv := &server.Server{
		IdleTimeout: *idle,
		MaxConns:    *maxConns,
		Logger:      logger,
		MinDelay:    minDelay,
		MaxDelay:    maxDelay,
	}
	if dir := filepath.Dir(*db); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fmt.Fprintf(os.Stderr, "atm serve: create the database directory: %v\n", err)
			return 1
		}
	}
	srv.OperatorToken, err = operatorToken(*db, *token)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 1
	}
	// Listen first: a busy address must not touch the database.
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atm serve: listen on %s: %v\n", *addr, err)
		return 1
	}
	b, err := bank.Open(*db, bank.Options{OnEvent: srv.LogEvent, MaxAmount: money.Cents(*maxAmount)})
	if err != nil {
		l.Close()
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 1
	}
	srv.Ledger = b
	extra := ""
	if *token == "" {
		extra += ", operator token in " + tokenFile(*db)
	}
	if maxDelay > 0 {
		extra += fmt.Sprintf(", each message delayed %s to %s (teaching mode)", minDelay, maxDelay)
	}
	logger.Info(fmt.Sprintf("serving %s on %s (protocol v%d), process id %s%s", *db, l.Addr(), wire.Version, b.ProcessID(), extra))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()

	code := 0
	select {
	case sig := <-sigs:
		logger.Info(fmt.Sprintf("received %s, shutting down", sig))
	case err := <-serveErr:
		logger.Error(fmt.Sprintf("server stopped: %v", err))
		code = 1
	}
	signal.Stop(sigs)
	ctx, cancel := context.WithTimeout(context.Background(), *shutdownWait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Error(fmt.Sprintf("shutdown: %v", err))
		code = 1
	}
	if err := b.Close(); err != nil {
		logger.Error(fmt.Sprintf("close the database: %v", err))
		code = 1
	}
	if code == 0 {
		logger.Info("stopped cleanly")
	}
	return code
}
