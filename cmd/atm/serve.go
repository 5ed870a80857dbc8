package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"atm/cmd/atm/internal/cli"
	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/etcdstore"
	"atm/bank/money"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// serveConfig is the command line of atm serve: flagSet binds every flag
// to a field, and Validate checks them together, once, before anything
// starts.
type serveConfig struct {
	addr         string        // --addr
	db           string        // --db, the database file (without --etcd)
	etcd         string        // --etcd, the cluster's endpoints ("" for a database file)
	proc         string        // --proc, this server's process id (with --etcd)
	logFormat    string        // --log-format
	token        string        // --operator-token
	delay        string        // --delay, MIN-MAX
	idle         time.Duration // --idle-timeout
	maxConns     int           // --max-conns
	maxAmount    int64         // --max-amount, cents
	checkpoints  int           // --checkpoint-every, events
	shutdownWait time.Duration // --shutdown-timeout
	archiveDir   string        // --archive, "" for none
	keepLog      int           // --keep-log
	tls          tlsFlags
	ssh          sshFlags

	// given are the names of the flags set on the command line, in
	// lexical order.
	given []string

	// minDelay and maxDelay are --delay, read by Validate.
	minDelay, maxDelay time.Duration
}

const serveUsage = "usage: atm serve [--addr HOST:PORT] [--db PATH] [--tls] [--ssh HOST:PORT] [--log-format text|json] [--checkpoint-every N]\n" +
	"       atm serve --etcd HOST:PORT[,HOST:PORT…] --proc NAME [--addr HOST:PORT] [--tls --tls-dir DIR] [--ssh HOST:PORT] [--log-format text|json] [--checkpoint-every N]"

// flagSet binds the flags of atm serve to c.
func (c *serveConfig) flagSet() *flag.FlagSet {
	fs := cli.NewFlagSet("atm serve")
	fs.StringVar(&c.addr, "addr", wire.DefaultAddr, "TCP address to listen on")
	fs.StringVar(&c.db, "db", defaultDBPath(), "bank database file (created with the default accounts if new)")
	fs.StringVar(&c.etcd, "etcd", "", "serve the bank kept in this etcd cluster instead of a file: endpoints HOST:PORT[,HOST:PORT…] (several servers, each with its own --proc, serve one bank)")
	fs.StringVar(&c.proc, "proc", "", "with --etcd: this server's process id, different on every server (e.g. bank-1)")
	fs.StringVar(&c.logFormat, "log-format", "text", "output format: text (one line per clock change) or json")
	fs.StringVar(&c.token, "operator-token", os.Getenv("ATM_OPERATOR_TOKEN"), "token of the operator operations (audit, open_account, log): default $ATM_OPERATOR_TOKEN, else the one kept in operator.token beside the database, made on first start (mode 0600); with --etcd, none: operator operations are off")
	fs.StringVar(&c.delay, "delay", "", "teaching mode: each message waits a random time in MIN-MAX (e.g. 50ms-300ms) before it is sent, so that messages to different ATMs cross")
	fs.DurationVar(&c.idle, "idle-timeout", server.DefaultIdleTimeout, "close a connection after this long without a request")
	fs.IntVar(&c.maxConns, "max-conns", server.DefaultMaxConns, "maximum simultaneous connections; more get a server_busy error")
	fs.Int64Var(&c.maxAmount, "max-amount", 0, "per-operation limit in cents (0: the bank's default, 10000000 = R$ 100.000,00)")
	fs.IntVar(&c.checkpoints, "checkpoint-every", defaultCheckpointEvery, "write a checkpoint (the bank's state, in its log: atm verify starts from the newest) every this many events; 0: none")
	fs.DurationVar(&c.shutdownWait, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long to wait for connections to finish")
	fs.StringVar(&c.archiveDir, "archive", "", "move the oldest events of the log into segment files in this directory (it must exist), keeping --keep-log live; read them with atm log --archive DIR")
	fs.IntVar(&c.keepLog, "keep-log", defaultKeepLog, "with --archive: events that stay in the live log at least")
	c.ssh.register(fs)
	c.tls.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	return fs
}

// parse reads the command line into c. When atm serve must stop there
// (help, a bad flag) it returns false and the exit code.
func (c *serveConfig) parse(args []string) (code int, ok bool) {
	fs := c.flagSet()
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code, false
	}
	fs.Visit(func(f *flag.Flag) { c.given = append(c.given, f.Name) })
	return 0, true
}

// Validate checks the flags together, reporting the first mistake. It
// reads --delay, and the SSH authorized keys, so that a bad file stops the
// server before it listens.
func (c *serveConfig) Validate() error {
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("--log-format must be text or json, not %q", c.logFormat)
	}
	if c.maxAmount < 0 {
		return errors.New("--max-amount must be positive (cents), or 0 for the default")
	}
	if c.checkpoints < 0 {
		return errors.New("--checkpoint-every must be a number of events, or 0 for no checkpoints")
	}
	var err error
	if c.minDelay, c.maxDelay, err = parseDelay(c.delay); err != nil {
		return err
	}
	if err := c.checkStore(); err != nil {
		return err
	}
	if err := c.checkArchive(); err != nil {
		return err
	}
	if err := c.tls.check(c.onEtcd()); err != nil {
		return err
	}
	if c.onEtcd() {
		if _, err := etcdEndpoints(c.etcd); err != nil {
			return err
		}
	}
	return c.ssh.check(c.given)
}

// checkStore checks where the bank is kept: a database file, or an etcd
// cluster with this server's process id.
func (c *serveConfig) checkStore() error {
	switch {
	case c.onEtcd() && slices.Contains(c.given, "db"):
		return errors.New("--db and --etcd together: a server serves either a database file or an etcd cluster, not both")
	case c.onEtcd() && !wire.ValidProc(c.proc):
		return errors.New("--etcd needs --proc NAME, this server's process id (1 to 64 letters, digits or . _ : @ -), different on every server of the bank")
	case !c.onEtcd() && c.proc != "":
		return errors.New("--proc is for --etcd (a server on a database file is process \"bank\")")
	}
	return nil
}

// onEtcd reports whether the bank served is kept in etcd.
func (c *serveConfig) onEtcd() bool { return c.etcd != "" }

// handler is the output of --log-format.
func (c *serveConfig) handler() slog.Handler {
	if c.logFormat == "json" {
		return slog.NewJSONHandler(os.Stdout, nil)
	}
	return server.NewLineHandler(os.Stdout, nil)
}

func runServe(args []string) int {
	var c serveConfig
	if code, ok := c.parse(args); !ok {
		return code
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return 2
	}
	// The output never holds up the bank: records go through a bounded
	// queue, and what a stalled terminal makes it drop is counted.
	async := server.NewAsyncHandler(c.handler(), 0)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = async.Close(ctx)
	}()
	return c.serve(slog.New(async))
}

// serve starts the server, serves until a signal, then stops it and
// closes the ledger; it returns the exit code.
func (c *serveConfig) serve(logger *slog.Logger) int {
	srv := &server.Server{
		IdleTimeout: c.idle,
		MaxConns:    c.maxConns,
		Logger:      logger,
		MinDelay:    c.minDelay,
		MaxDelay:    c.maxDelay,
	}
	st, err := c.start(srv, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atm serve: %v\n", err)
		return listenExit(err)
	}
	// Only now: the bank answers every connection from here on.
	logger.Info(c.startLine(st))
	code := serveUntilSignal(srv, st.l, st.front, logger, c.shutdownWait)
	code = max(code, c.stop(st, logger))
	if code == 0 {
		logger.Info("stopped cleanly")
	}
	return code
}

// started is what start took: the listener (a gate, that tells
// connections the bank is starting until the ledger is open), the ATM over
// SSH (nil without --ssh), the ledger, and the etcd client under it (nil
// for a database file).
type started struct {
	l       *server.Gate
	tlsNote string // what the start line says of the listener
	front   *sshFront
	ledger  servedLedger
	etcd    *clientv3.Client
	archive *archiver // nil without --archive
}

// servedLedger is a ledger atm serve opens, serves and closes.
type servedLedger interface {
	server.Ledger
	Close() error
}

// start listens, prepares the ATM over SSH and opens the ledger, in that
// order: a busy or refused address must not touch the bank. From the
// listen on, connections are accepted and told that the bank is starting
// (so that nobody takes the open port for a bank that answers) until the
// ledger is open: then the gate lets them through to the server. When a
// step fails, what the earlier ones took is released here, once.
func (c *serveConfig) start(srv *server.Server, logger *slog.Logger) (_ *started, err error) {
	st := &started{}
	defer func() {
		if err != nil {
			st.release()
		}
	}()
	l, tlsNote, err := c.tls.listen(c.addr, c.certDB())
	if err != nil {
		return nil, err
	}
	st.l, st.tlsNote = server.NewGate(l, logger), tlsNote
	logger.Info(c.openingLine(st))
	if srv.OperatorToken, err = c.operatorToken(); err != nil {
		return nil, err
	}
	bankAddr, bankTLS := c.tls.dialBack(st.l.Addr())
	if st.front, err = listenSSH(&c.ssh, bankAddr, bankTLS, c.sshDB(), c.proc, logger); err != nil {
		return nil, err
	}
	if st.ledger, err = c.openLedger(st, srv); err != nil {
		return nil, err
	}
	srv.Ledger = st.ledger
	if c.archiveDir != "" {
		st.archive = startArchiver(st.ledger, c.archiveDir, c.keepLog, logger)
	}
	st.l.Ready()
	return st, nil
}

// openLedger opens the ledger to serve: the database file, or the bank
// kept in etcd, whose client it keeps in st (closed after the ledger).
func (c *serveConfig) openLedger(st *started, srv *server.Server) (servedLedger, error) {
	opts := bank.Options{OnEvent: srv.LogEvent, MaxAmount: money.Cents(c.maxAmount), CheckpointEvery: c.checkpoints}
	if !c.onEtcd() {
		return openFileLedger(c.db, opts)
	}
	var err error
	if st.etcd, err = dialEtcd(c.etcd); err != nil {
		return nil, err
	}
	opts.ProcessID = c.proc
	l, err := openEtcdLedger(st.etcd, opts)
	if err != nil {
		return nil, fmt.Errorf("etcd at %s: %w", c.etcd, err)
	}
	return l, nil
}

// release frees what a failed start took.
func (st *started) release() {
	if st.l != nil {
		st.l.Close()
	}
	st.front.close()
	if st.etcd != nil {
		st.etcd.Close()
	}
}

// stop closes the ledger (an etcd ledger stores its clock), then the etcd
// client, once the server has stopped. It returns 1 if the ledger did not
// close cleanly.
func (c *serveConfig) stop(st *started, logger *slog.Logger) int {
	code := 0
	st.archive.stop()
	if err := st.ledger.Close(); err != nil {
		what := "close the database"
		if c.onEtcd() {
			what = "close the etcd ledger"
		}
		logger.Error(fmt.Sprintf("%s: %v", what, err))
		code = 1
	}
	if st.etcd != nil {
		st.etcd.Close()
	}
	return code
}

// certDB is the database beside which a self-signed certificate is kept
// ("" on etcd: --tls-dir says where).
func (c *serveConfig) certDB() string {
	if c.onEtcd() {
		return ""
	}
	return c.db
}

// sshDB is the database beside which the SSH host key is kept by default.
func (c *serveConfig) sshDB() string {
	if c.onEtcd() {
		return defaultDBPath()
	}
	return c.db
}

// operatorToken is the server's operator token: on a database file, the
// one given or else the one kept beside it (the database's directory is
// made first); on etcd, the one given, or none.
func (c *serveConfig) operatorToken() (string, error) {
	if c.onEtcd() {
		return c.token, nil
	}
	if err := os.MkdirAll(filepath.Dir(c.db), 0o700); err != nil {
		return "", fmt.Errorf("create the database directory: %w", err)
	}
	return operatorToken(c.db, c.token)
}

// openingLine is the line that says the server has taken its address and
// is opening the bank: until the start line, connections are told the bank
// is starting.
func (c *serveConfig) openingLine(st *started) string {
	what := "the database " + c.db
	if c.onEtcd() {
		what = fmt.Sprintf("the bank in etcd %s as process %s", c.etcd, c.proc)
	}
	return fmt.Sprintf("opening %s; until it is open, connections to %s are told the bank is starting", what, st.l.Addr())
}

// startLine is the line that says the server is up: what it serves, where,
// and how (TLS, operator token, teaching delays).
func (c *serveConfig) startLine(st *started) string {
	what, extra := c.db, st.tlsNote
	switch {
	case c.onEtcd():
		what = "etcd " + c.etcd
		if c.token == "" {
			extra += ", operator operations off (no --operator-token or $ATM_OPERATOR_TOKEN)"
		}
	case c.token == "":
		extra += ", operator token in " + tokenFile(c.db)
	}
	if c.maxDelay > 0 {
		extra += fmt.Sprintf(", each message delayed %s to %s (teaching mode)", c.minDelay, c.maxDelay)
	}
	return fmt.Sprintf("serving %s on %s (protocol v%d), process id %s%s", what, st.l.Addr(), wire.Version, st.ledger.ProcessID(), extra)
}

// defaultCheckpointEvery is how many events a server logs between two
// checkpoints, unless --checkpoint-every says otherwise.
const defaultCheckpointEvery = 100_000

// openFileLedger opens the bank's database file for the server (created
// with the default accounts if new).
func openFileLedger(path string, opts bank.Options) (servedLedger, error) {
	b, err := boltstore.Open(path, boltstore.Options{Options: opts})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// openEtcdLedger opens the bank kept in etcd as process opts.ProcessID:
// its clock resumes from that process id's lease.
func openEtcdLedger(cli *clientv3.Client, opts bank.Options) (servedLedger, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := etcdstore.Open(ctx, cli, etcdstore.Options{Options: opts})
	if err != nil {
		return nil, err
	}
	return l, nil
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
