package main

import (
	"context"
	"flag"
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
	"atm/bank/boltstore"
	"atm/bank/etcdstore"
	"atm/bank/money"
)

func runServe(args []string) int {
	fs := cli.NewFlagSet("atm serve")
	addr := fs.String("addr", wire.DefaultAddr, "TCP address to listen on")
	db := fs.String("db", defaultDBPath(), "bank database file (created with the default accounts if new)")
	etcd := fs.String("etcd", "", "serve the bank kept in this etcd cluster instead of a file: endpoints HOST:PORT[,HOST:PORT…] (several servers, each with its own --proc, serve one bank)")
	proc := fs.String("proc", "", "with --etcd: this server's process id, different on every server (e.g. bank-1)")
	logFormat := fs.String("log-format", "text", "output format: text (one line per clock change) or json")
	token := fs.String("operator-token", os.Getenv("ATM_OPERATOR_TOKEN"), "token of the operator operations (audit, open_account, log): default $ATM_OPERATOR_TOKEN, else the one kept in operator.token beside the database, made on first start (mode 0600); with --etcd, none: operator operations are off")
	delay := fs.String("delay", "", "teaching mode: each message waits a random time in MIN-MAX (e.g. 50ms-300ms) before it is sent, so that messages to different ATMs cross")
	idle := fs.Duration("idle-timeout", server.DefaultIdleTimeout, "close a connection after this long without a request")
	maxConns := fs.Int("max-conns", server.DefaultMaxConns, "maximum simultaneous connections; more get a server_busy error")
	maxAmount := fs.Int64("max-amount", 0, "per-operation limit in cents (0: the bank's default, 10000000 = R$ 100.000,00)")
	shutdownWait := fs.Duration("shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long to wait for connections to finish")
	sshf := addSSHFlags(fs)
	var tf tlsFlags
	tf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: atm serve [--addr HOST:PORT] [--db PATH] [--tls] [--ssh HOST:PORT] [--log-format text|json]\n       atm serve --etcd HOST:PORT[,HOST:PORT…] --proc NAME [--addr HOST:PORT] [--tls --tls-dir DIR] [--ssh HOST:PORT] [--log-format text|json]")
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
	dbGiven := false
	fs.Visit(func(f *flag.Flag) { dbGiven = dbGiven || f.Name == "db" })
	switch {
	case *etcd != "" && dbGiven:
		fmt.Fprintln(os.Stderr, "atm serve: --db and --etcd together: a server serves either a database file or an etcd cluster, not both")
		return 2
	case *etcd != "" && !wire.ValidProc(*proc):
		fmt.Fprintln(os.Stderr, "atm serve: --etcd needs --proc NAME, this server's process id (1 to 64 letters, digits or . _ : @ -), different on every server of the bank")
		return 2
	case *etcd == "" && *proc != "":
		fmt.Fprintln(os.Stderr, "atm serve: --proc is for --etcd (a server on a database file is process \"bank\")")
		return 2
	}
	if err := tf.check(*etcd != ""); err != nil {
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 2
	}
	if *etcd != "" {
		if _, err := etcdEndpoints(*etcd); err != nil {
			fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
			return 2
		}
	}
	sshKeys, err := sshf.check(fs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 2
	}
	ssh := sshSetup{flags: sshf, keys: sshKeys}
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
	if *etcd != "" {
		return serveEtcd(srv, logger, *etcd, *proc, *addr, &tf, *token, money.Cents(*maxAmount), *shutdownWait, minDelay, maxDelay, ssh)
	}
	// Listen first: a busy or refused address must not touch the
	// database.
	l, tlsNote, err := tf.listen(*addr, *db)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return listenExit(err)
	}
	if dir := filepath.Dir(*db); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			l.Close()
			fmt.Fprintf(os.Stderr, "atm serve: create the database directory: %v\n", err)
			return 1
		}
	}
	srv.OperatorToken, err = operatorToken(*db, *token)
	if err != nil {
		l.Close()
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 1
	}
	bankAddr, bankTLS := tf.dialBack(l.Addr())
	front, err := listenSSH(ssh.flags, ssh.keys, bankAddr, bankTLS, *db, "", logger)
	if err != nil {
		l.Close()
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 1
	}
	b, err := boltstore.Open(*db, boltstore.Options{Options: bank.Options{OnEvent: srv.LogEvent, MaxAmount: money.Cents(*maxAmount)}})
	if err != nil {
		l.Close()
		front.close()
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 1
	}
	srv.Ledger = b
	extra := tlsNote
	if *token == "" {
		extra += ", operator token in " + tokenFile(*db)
	}
	if maxDelay > 0 {
		extra += fmt.Sprintf(", each message delayed %s to %s (teaching mode)", minDelay, maxDelay)
	}
	logger.Info(fmt.Sprintf("serving %s on %s (protocol v%d), process id %s%s", *db, l.Addr(), wire.Version, b.ProcessID(), extra))
	code := serveUntilSignal(srv, l, front, logger, *shutdownWait)
	if err := b.Close(); err != nil {
		logger.Error(fmt.Sprintf("close the database: %v", err))
		code = 1
	}
	if code == 0 {
		logger.Info("stopped cleanly")
	}
	return code
}

// serveUntilSignal serves l, and the ATM over SSH if front is not nil,
// until SIGINT or SIGTERM (or a failure of Serve), then shuts down
// gracefully, within shutdownWait: first the ATMs over SSH (each logs out
// and says goodbye on its terminal), then the server. It returns the exit
// code so far; the caller closes the ledger.
func serveUntilSignal(srv *server.Server, l net.Listener, front *sshFront, logger *slog.Logger, shutdownWait time.Duration) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	var sshErr <-chan error
	if front != nil {
		sshErr = front.serve(logger)
	}

	code := 0
	select {
	case sig := <-sigs:
		logger.Info(fmt.Sprintf("received %s, shutting down", sig))
	case err := <-serveErr:
		logger.Error(fmt.Sprintf("server stopped: %v", err))
		code = 1
	case err := <-sshErr:
		logger.Error(fmt.Sprintf("the ATM over SSH stopped: %v", err))
		code = 1
	}
	signal.Stop(sigs)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	code = max(code, shutdownSSH(ctx, front, logger))
	if err := srv.Shutdown(ctx); err != nil {
		logger.Error(fmt.Sprintf("shutdown: %v", err))
		code = 1
	}
	return code
}

// serveEtcd serves the bank kept in the etcd cluster at endpoints as
// process proc: it listens, opens the ledger (its clock resumes from
// proc's lease), serves until a signal, then closes the ledger (storing
// the clock) and the etcd client.
func serveEtcd(srv *server.Server, logger *slog.Logger, endpoints, proc, addr string, tf *tlsFlags, token string, maxAmount money.Cents,
	shutdownWait, minDelay, maxDelay time.Duration, ssh sshSetup) int {
	srv.OperatorToken = token
	l, tlsNote, err := tf.listen(addr, "")
	if err != nil {
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return listenExit(err)
	}
	bankAddr, bankTLS := tf.dialBack(l.Addr())
	front, err := listenSSH(ssh.flags, ssh.keys, bankAddr, bankTLS, defaultDBPath(), proc, logger)
	if err != nil {
		l.Close()
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 1
	}
	cli, err := dialEtcd(endpoints)
	if err != nil {
		l.Close()
		front.close()
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 1
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	led, err := etcdstore.Open(ctx, cli, etcdstore.Options{Options: bank.Options{ProcessID: proc, OnEvent: srv.LogEvent, MaxAmount: maxAmount}})
	cancel()
	if err != nil {
		l.Close()
		front.close()
		fmt.Fprintf(os.Stderr, "atm serve: etcd at %s: %v\n", endpoints, err)
		return 1
	}
	srv.Ledger = led
	extra := tlsNote
	if token == "" {
		extra += ", operator operations off (no --operator-token or $ATM_OPERATOR_TOKEN)"
	}
	if maxDelay > 0 {
		extra += fmt.Sprintf(", each message delayed %s to %s (teaching mode)", minDelay, maxDelay)
	}
	logger.Info(fmt.Sprintf("serving etcd %s on %s (protocol v%d), process id %s%s", endpoints, l.Addr(), wire.Version, led.ProcessID(), extra))
	code := serveUntilSignal(srv, l, front, logger, shutdownWait)
	if err := led.Close(); err != nil {
		logger.Error(fmt.Sprintf("close the etcd ledger: %v", err))
		code = 1
	}
	if code == 0 {
		logger.Info("stopped cleanly")
	}
	return code
}
