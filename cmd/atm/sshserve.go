package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"atm/cmd/atm/internal/sshatm"
	"atm/netproto/client"

	gossh "golang.org/x/crypto/ssh"
)

// sshFlags are the flags of atm serve's ATM over SSH.
type sshFlags struct {
	addr, hostKey, authKeys string
	noAuth                  bool
	maxSessions             int
	idle                    time.Duration

	// keys are the public keys of authKeys, read by check.
	keys []gossh.PublicKey
}

func (f *sshFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "ssh", "", "also serve the ATM over SSH on `HOST:PORT` (e.g. 127.0.0.1:2222): every session gets an ATM of its own on this bank (students run: ssh -p 2222 HOST)")
	fs.StringVar(&f.hostKey, "ssh-host-key", "", "the SSH host key `FILE` (default "+sshatm.HostKeyFile+" beside the database, made on first start, mode 0600)")
	fs.StringVar(&f.authKeys, "ssh-authorized-keys", "", "let in over SSH only the public keys of this authorized_keys `FILE` (default: no SSH authentication, which only a loopback --ssh address allows)")
	fs.BoolVar(&f.noAuth, "ssh-no-auth", false, "serve --ssh on an address other machines reach without --ssh-authorized-keys: anyone who reaches it gets an ATM (the ATM still asks for the PIN)")
	fs.IntVar(&f.maxSessions, "ssh-max-sessions", sshatm.DefaultMaxSessions, "most SSH sessions at once; more are told to try again later")
	fs.DurationVar(&f.idle, "ssh-idle-timeout", sshatm.DefaultIdleTimeout, "log out and close an SSH session after this long without a key (0: never)")
}

// check validates the SSH flags, given the names of the flags set on the
// command line in lexical order, and reads the authorized keys. An SSH
// address other machines can reach needs keys, or --ssh-no-auth to say
// that anyone may connect.
func (f *sshFlags) check(given []string) error {
	if f.addr == "" {
		for _, name := range given {
			if strings.HasPrefix(name, "ssh-") {
				return fmt.Errorf("--%s is for the ATM over SSH: add --ssh HOST:PORT", name)
			}
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(f.addr); err != nil {
		return fmt.Errorf("--ssh must be HOST:PORT, such as 127.0.0.1:2222: %v", err)
	}
	switch {
	case f.maxSessions < 1:
		return errors.New("--ssh-max-sessions must be at least 1")
	case f.idle < 0:
		return errors.New("--ssh-idle-timeout must be a duration such as 15m, or 0 for never")
	case f.noAuth && f.authKeys != "":
		return errors.New("--ssh-no-auth and --ssh-authorized-keys together: choose keys, or no authentication")
	case f.authKeys == "" && !f.noAuth && !sshatm.Loopback(f.addr):
		return fmt.Errorf("--ssh %s is reachable from other machines, and without --ssh-authorized-keys anyone who reaches it "+
			"would get an ATM on this bank; give --ssh-authorized-keys FILE with the public keys to let in, "+
			"or --ssh-no-auth to serve everyone anyway (the ATM still asks for the PIN), or a loopback address such as 127.0.0.1:2222", f.addr)
	case f.authKeys == "":
		return nil
	}
	var err error
	f.keys, err = sshatm.AuthorizedKeys(f.authKeys)
	return err
}

// sshFront is the ATM over SSH of a running atm serve.
type sshFront struct {
	srv  *sshatm.Server
	l    net.Listener
	says string // the start line
}

// listenSSH listens on the --ssh address and prepares the SSH server; it
// serves once serve is called. It returns nil when --ssh is not given.
// The ATMs dial bankAddr trusting bankTLS (for a tls:// address); the host
// key is kept beside dbPath unless --ssh-host-key says where, and the count
// of sessions ever opened beside the host key. proc, for one of several
// servers of a bank, goes into the sessions' process ids ("" for a bank of
// one server).
func listenSSH(f *sshFlags, bankAddr string, bankTLS client.TLSOptions, dbPath, proc string, logger *slog.Logger) (*sshFront, error) {
	if f.addr == "" {
		return nil, nil
	}
	path := f.hostKey
	if path == "" {
		path = filepath.Join(filepath.Dir(dbPath), sshatm.HostKeyFile)
	}
	key, created, err := sshatm.HostKey(path)
	if err != nil {
		return nil, err
	}
	prefix, countFile := "atm-ssh-", filepath.Join(filepath.Dir(path), sessionsFile)
	if proc != "" {
		prefix, countFile = "atm-ssh-"+proc+"-", countFile+"."+proc
	}
	opened, err := readSessions(countFile)
	if err != nil {
		return nil, err
	}
	idle := f.idle
	if idle == 0 {
		idle = -1 // never
	}
	srv, err := sshatm.New(sshatm.Config{
		BankAddr:       bankAddr,
		BankTLS:        bankTLS,
		HostKey:        key,
		AuthorizedKeys: f.keys,
		MaxSessions:    f.maxSessions,
		IdleTimeout:    idle,
		Logger:         logger,
		ProcessPrefix:  prefix,
		Sessions:       opened,
		OnSession: func(n uint64) {
			if err := os.WriteFile(countFile, []byte(strconv.FormatUint(n, 10)+"\n"), 0o600); err != nil {
				logger.Warn(fmt.Sprintf("ssh: keep the count of sessions in %s: %v (after a restart, process ids may repeat)", countFile, err))
			}
		},
	})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, fmt.Errorf("listen for SSH on %s: %w", f.addr, err)
	}
	return &sshFront{srv: srv, l: l, says: f.startLine(l.Addr(), key.PublicKey(), path, created)}, nil
}

// startLine is what atm serve says of its ATM over SSH, listening at a
// with the host key kept in path (made now if created).
func (f *sshFlags) startLine(a net.Addr, key gossh.PublicKey, path string, created bool) string {
	kept := "kept in " + path
	if created {
		kept = "made now, kept in " + path
	}
	auth := "no SSH authentication (loopback only)"
	switch {
	case len(f.keys) > 0:
		auth = fmt.Sprintf("public keys of %s (%d)", f.authKeys, len(f.keys))
	case f.noAuth && !sshatm.Loopback(f.addr):
		auth = "no SSH authentication (--ssh-no-auth: anyone who reaches it)"
	}
	limits := fmt.Sprintf("at most %d sessions", f.maxSessions)
	if f.idle > 0 {
		limits += fmt.Sprintf(", closed after %s without a key", f.idle)
	}
	host := "HOST"
	if sshatm.Loopback(f.addr) {
		host = "localhost"
	}
	return fmt.Sprintf("serving the ATM over SSH on %s (ssh -p %s %s), host key %s (%s), %s, %s",
		a, port(a), host, sshatm.Fingerprint(key), kept, auth, limits)
}

// sessionsFile keeps, beside the host key, how many SSH sessions a
// server ever opened, so that a restarted server numbers its ATMs on
// instead of reusing their process ids.
const sessionsFile = "ssh_sessions"

// readSessions reads the count of sessions kept in path (0 if there is
// none yet).
func readSessions(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the count of SSH sessions: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the count of SSH sessions in %s is damaged (%q): delete the file to count from 1 again", path, strings.TrimSpace(string(b)))
	}
	return n, nil
}

// serve starts serving; the channel gets Serve's error.
func (s *sshFront) serve(logger *slog.Logger) <-chan error {
	errc := make(chan error, 1)
	logger.Info(s.says)
	go func() { errc <- s.srv.Serve(s.l) }()
	return errc
}

// close releases the listener of a front that never served (nil: none).
func (s *sshFront) close() {
	if s != nil {
		_ = s.l.Close()
	}
}

// dialable is an address to reach a listener at from this machine: its
// own, or localhost for all interfaces (0.0.0.0, ::).
func dialable(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok || !t.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("localhost", port(a))
}

func port(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return fmt.Sprint(t.Port)
	}
	return a.String()
}

// shutdownSSH ends the ATMs over SSH, each with a goodbye, within ctx.
func shutdownSSH(ctx context.Context, s *sshFront, logger *slog.Logger) int {
	if s == nil {
		return 0
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		logger.Error(fmt.Sprintf("shut the ATMs over SSH down: %v", err))
		return 1
	}
	return 0
}
