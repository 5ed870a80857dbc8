package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"atm/bank"
	"atm/bank/boltstore"
	"atm/bank/etcdstore"
	"atm/bank/outcome"
	"atm/cmd/atm/internal/cli"
	"atm/netproto/wire"
)

const checkpointUsage = "usage: atm checkpoint --db PATH\n" +
	"       atm checkpoint --etcd HOST:PORT[,HOST:PORT…] [--proc NAME]\n\n" +
	"Writes a checkpoint: an event of the log that records the bank's state (the totals, every\n" +
	"balance, the clock and the hash the log's chain has reached), stored in full beside the log.\n" +
	"atm verify then checks the log from the newest checkpoint on; atm verify --full from the start.\n" +
	"On a database file, the server must not be running (it writes its own, see atm serve\n" +
	"--checkpoint-every); on etcd it may, and the checkpoint is written as process --proc."

// runCheckpoint writes a checkpoint in the database file, offline, or in
// the bank kept in etcd.
func runCheckpoint(args []string) int {
	fs := cli.NewFlagSet("atm checkpoint")
	db := fs.String("db", defaultDBPath(), "database file (the server must not be running)")
	etcd := fs.String("etcd", "", "write it in the bank kept in this etcd cluster (HOST:PORT[,HOST:PORT…]) instead of the file")
	proc := fs.String("proc", "atm-checkpoint", "with --etcd: the process id the checkpoint is written as, which no running server has")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), checkpointUsage)
		fs.PrintDefaults()
	}
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if *etcd != "" && !wire.ValidProc(*proc) {
		fmt.Fprintln(os.Stderr, "atm checkpoint: --proc must be 1 to 64 letters, digits or . _ : @ -")
		return 2
	}
	var c bank.Checkpoint
	var err error
	where := *db
	if *etcd != "" {
		where = "etcd " + *etcd
		c, err = checkpointEtcd(*etcd, *proc)
	} else {
		c, err = checkpointFile(*db)
	}
	if err != nil {
		return fail("checkpoint", err)
	}
	total, _ := c.Total()
	fmt.Printf("checkpoint written in %s at L=%d (process %s): %d accounts, balances %s, deposits %s − withdrawals %s; state sha256:%x\n",
		where, c.TS, c.Proc, len(c.Balances), total, c.Totals.Deposits, c.Totals.Withdrawals, sha256.Sum256(c.Encode()))
	return 0
}

// checkpointFile writes a checkpoint in the database file at path, which
// must exist and which no server may hold.
func checkpointFile(path string) (bank.Checkpoint, error) {
	if _, err := os.Stat(path); err != nil {
		return bank.Checkpoint{}, fmt.Errorf("no database at %s (check --db): %w", path, errors.Unwrap(err))
	}
	b, err := boltstore.Open(path, boltstore.Options{Options: bank.Options{NoDefaults: true}})
	if errors.Is(err, outcome.ErrDatabaseBusy) {
		return bank.Checkpoint{}, fmt.Errorf("%s is held by a running server (atm serve, or an ATM running the bank inside it), "+
			"which writes its own checkpoints (--checkpoint-every): stop it first (Ctrl+C) to write one now", path)
	}
	if err != nil {
		return bank.Checkpoint{}, err
	}
	c, _, err := b.Checkpoint(context.Background())
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	return c, err
}

// checkpointEtcd writes a checkpoint in the bank kept in etcd, as process
// proc.
func checkpointEtcd(list, proc string) (bank.Checkpoint, error) {
	cl, err := dialEtcd(list)
	if err != nil {
		return bank.Checkpoint{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := etcdstore.Open(ctx, cl, etcdstore.Options{Options: bank.Options{ProcessID: proc, NoDefaults: true}})
	if err != nil {
		return bank.Checkpoint{}, fmt.Errorf("etcd at %s: %w", list, err)
	}
	c, _, err := l.Checkpoint(ctx)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	return c, err
}
