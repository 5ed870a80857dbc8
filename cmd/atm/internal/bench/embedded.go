package bench

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"atm/bank/boltstore"
	"atm/netproto/server"

	"atm/bank"

	"golang.org/x/crypto/bcrypt"
)

// embeddedServer is a bank and its server in this process.
type embeddedServer struct {
	bank *boltstore.Bank
	srv  *server.Server
	addr string
	dir  string
	errc chan error
}

func startEmbedded(cfg *benchConfig) (*embeddedServer, error) {
	e := &embeddedServer{errc: make(chan error, 1)}
	path := cfg.db
	if path == "" {
		dir, err := os.MkdirTemp("", "atm-bench-")
		if err != nil {
			return nil, err
		}
		e.dir = dir
		path = filepath.Join(dir, "bench.db")
	}
	// The temporary database hashes PINs at bcrypt's minimum cost so that
	// logging in hundreds of sessions does not dominate the run; the
	// measured operations never hash.
	b, err := boltstore.Open(path, boltstore.Options{Options: bank.Options{PINCost: bcrypt.MinCost, ProcessID: "bank-bench"}, MaxBatch: cfg.maxBatch})
	if err != nil {
		e.cleanup()
		return nil, err
	}
	e.bank = b
	if cfg.token == "" {
		cfg.token = randomToken()
	}
	e.srv = &server.Server{Ledger: b, OperatorToken: cfg.token, MaxConns: max(server.DefaultMaxConns, cfg.idleConns+cfg.clients+16)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		e.cleanup()
		return nil, err
	}
	e.addr = l.Addr().String()
	go func() { e.errc <- e.srv.Serve(l) }()
	return e, nil
}

func (e *embeddedServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	_ = e.bank.Close()
	e.cleanup()
}

func (e *embeddedServer) cleanup() {
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

// randomToken is the embedded server's operator token: 26 random
// characters (130 bits), lower case.
func randomToken() string { return strings.ToLower(rand.Text()) }
