package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"atm/bank"
	"atm/bank/archive"
	"atm/bank/boltstore"
	"atm/bank/etcdstore"
	"atm/bank/outcome"
	"atm/cmd/atm/internal/cli"
	"atm/netproto/wire"
)

// defaultKeepLog is how many events archiving keeps live at least, and
// defaultSegmentEvents how many a segment file holds.
const (
	defaultKeepLog       = 100_000
	defaultSegmentEvents = 20_000
)

// runArchive moves the oldest events of a bank's log into an archive
// directory: of a bank kept in a file, offline (the server not running);
// of a bank kept in etcd, beside its servers, then compacting etcd's
// history (and, with --defrag, defragmenting its members).
func runArchive(args []string) int {
	fs := cli.NewFlagSet("atm archive")
	db := fs.String("db", defaultDBPath(), "database file (the server must not be running)")
	etcd := fs.String("etcd", "", "archive the bank kept in this etcd cluster (HOST:PORT[,HOST:PORT…]) instead of the file; its servers may run")
	proc := fs.String("proc", "atm-checkpoint", "with --etcd: the process id the checkpoint archiving goes up to is written as, which no running server has")
	defrag := fs.Bool("defrag", false, "with --etcd: after compacting, defragment every member, giving the freed space back (each member is blocked meanwhile)")
	to := fs.String("to", "", "the archive directory: it must exist; segments are added to it")
	keep := fs.Int("keep-log", defaultKeepLog, "events that stay in the live log at least")
	per := fs.Int("segment-events", defaultSegmentEvents, "records per segment file (events; on etcd, segments of events)")
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if *to == "" {
		fmt.Fprintln(os.Stderr, "atm archive: no archive directory given: use --to DIR")
		return 2
	}
	if *keep < 1 || *per < 1 {
		fmt.Fprintln(os.Stderr, "atm archive: --keep-log and --segment-events must be at least 1")
		return 2
	}
	if *etcd == "" && *defrag {
		fmt.Fprintln(os.Stderr, "atm archive: --defrag is for a bank kept in etcd (--etcd)")
		return 2
	}
	if err := archive.CheckDir(*to); err != nil {
		return fail("archive", fmt.Errorf("%w; nothing was archived", err))
	}
	o := archiveOptions(*to, *keep)
	o.Per = *per
	if *etcd != "" {
		return archiveEtcd(*etcd, *proc, *defrag, o)
	}
	if _, err := os.Stat(*db); err != nil {
		return fail("archive", fmt.Errorf("no database at %s (check --db): %w", *db, errors.Unwrap(err)))
	}
	b, err := openExisting(*db, true)
	if err != nil {
		return fail("archive", err)
	}
	defer b.Close()
	// Verify starts from the newest checkpoint: archiving goes up to one.
	if _, _, err := b.Checkpoint(context.Background()); err != nil {
		return fail("archive", fmt.Errorf("write a checkpoint to archive up to: %w; nothing was archived", err))
	}
	res, err := archive.Run(context.Background(), b, o)
	if err != nil {
		return fail("archive", fmt.Errorf("%v; %d events were archived before it, and nothing is lost", err, res.Records))
	}
	marks, err := b.Live(context.Background())
	if err != nil {
		return fail("archive", err)
	}
	fmt.Printf("archived %d events in %d segments to %s; the live log starts after L=%d\n",
		res.Records, len(res.Segments), *to, marks[boltstore.ChainName].Through)
	return 0
}

// archiveEtcd archives the bank kept in etcd: a checkpoint first, as
// process proc, then the log up to it, then etcd's history compacted.
func archiveEtcd(list, proc string, defrag bool, o archive.Options) int {
	if !wire.ValidProc(proc) {
		fmt.Fprintln(os.Stderr, "atm archive: --proc must be 1 to 64 letters, digits or . _ : @ -")
		return 2
	}
	if _, err := checkpointEtcd(list, proc); err != nil {
		return fail("archive", fmt.Errorf("write a checkpoint to archive up to: %w; nothing was archived", err))
	}
	l, closeLedger, err := openEtcdReadOnly(list)
	if err != nil {
		return fail("archive", err)
	}
	defer closeLedger()
	ctx := context.Background()
	res, err := archive.Run(ctx, l, o)
	if err != nil {
		return fail("archive", fmt.Errorf("%v; %d segments were archived before it, and nothing is lost", err, res.Records))
	}
	fmt.Printf("archived %d segments of events in %d segment files to %s\n", res.Records, len(res.Segments), o.Dir)
	rev, err := l.Compact(ctx)
	if err != nil {
		return fail("archive", fmt.Errorf("compact etcd's history: %w (the archive is complete; compact later)", err))
	}
	fmt.Printf("compacted etcd's history to revision %d\n", rev)
	if defrag {
		before, after, err := l.Defragment(ctx)
		if err != nil {
			return fail("archive", fmt.Errorf("%w (the archive is complete; defragment later)", err))
		}
		fmt.Printf("defragmented every member: %.1f MiB → %.1f MiB in all\n", float64(before)/(1<<20), float64(after)/(1<<20))
	}
	return 0
}

// archiveOptions are the options of every archive run.
func archiveOptions(dir string, keep int) archive.Options {
	return archive.Options{Dir: dir, Keep: keep, Per: defaultSegmentEvents}
}

// checkArchive checks --archive and --keep-log.
func (c *serveConfig) checkArchive() error {
	if c.archiveDir == "" {
		if slices.Contains(c.given, "keep-log") {
			return errors.New("--keep-log is for --archive DIR")
		}
		return nil
	}
	if c.keepLog < 1 {
		return errors.New("--keep-log must be at least 1")
	}
	if err := archive.CheckDir(c.archiveDir); err != nil {
		return fmt.Errorf("--archive: %w", err)
	}
	return nil
}

// archiveEvery is how often a server with --archive archives.
const archiveEvery = 10 * time.Second

// archiver archives a served bank now and then, until stopped.
type archiver struct {
	quit, done chan struct{}
}

// startArchiver archives l's log into dir at once, then every
// archiveEvery, keeping keep events live. A failure is logged, and the
// server goes on serving the live bank.
func startArchiver(l servedLedger, dir string, keep int, logger *slog.Logger) *archiver {
	a := &archiver{quit: make(chan struct{}), done: make(chan struct{})}
	st, ok := l.(archive.Store)
	if !ok {
		close(a.done)
		logger.Error("this bank's store cannot be archived")
		return a
	}
	cp, canCheckpoint := l.(checkpointer)
	go func() {
		defer close(a.done)
		t := time.NewTicker(archiveEvery)
		defer t.Stop()
		var checkpointed uint64 // the clock at this archiver's last checkpoint
		for {
			// Archiving goes up to the newest checkpoint: write one once
			// keep ticks have passed since the last, so that archiving
			// keeps pace however short each run of the server is.
			if now := l.Clock().Now(); canCheckpoint && now-checkpointed > uint64(keep) {
				if _, _, err := cp.Checkpoint(context.Background()); err != nil {
					logger.Error(fmt.Sprintf("checkpoint before archiving: %v; the server goes on with the live log", err))
				} else {
					checkpointed = now
				}
			}
			res, err := archive.Run(context.Background(), st, archiveOptions(dir, keep))
			switch {
			case err != nil:
				logger.Error(fmt.Sprintf("archive to %s: %v; the server goes on with the live log, nothing is lost", dir, err))
			case res.Records > 0:
				logger.Info(fmt.Sprintf("archived %d records in %d segments to %s", res.Records, len(res.Segments), dir))
				// On etcd, the deleted segments' space is reused once the
				// history is compacted.
				if c, ok := st.(interface {
					Compact(context.Context) (int64, error)
				}); ok {
					if _, err := c.Compact(context.Background()); err != nil {
						logger.Error(fmt.Sprintf("compact etcd's history after archiving: %v", err))
					}
				}
			}
			select {
			case <-t.C:
			case <-a.quit:
				return
			}
		}
	}()
	return a
}

// checkpointer writes a checkpoint (bank.Ledger).
type checkpointer interface {
	Checkpoint(ctx context.Context) (bank.Checkpoint, bank.Event, error)
}

// stop stops the archiver and waits for a run in progress; a nil archiver
// is nothing to stop.
func (a *archiver) stop() {
	if a == nil {
		return
	}
	close(a.quit)
	<-a.done
}

// readArchive calls fn for every archived event in dir, in (ts, proc)
// order (the chains of a bank kept in etcd merged), and returns fn for
// the live log that follows: it skips the live events the archive already
// holds (a crash may leave a segment written whose events are still
// live). codec reads the store's records.
func readArchive(dir string, codec archive.Codec, fn func(bank.Event) error) (func(bank.Event) error, error) {
	end := map[string]uint64{} // per process, its last archived event
	_, err := archive.Merge(dir, codec, nil, func(e bank.Event) error {
		end[e.Proc] = max(end[e.Proc], e.TS)
		return fn(e)
	})
	if err != nil {
		return nil, err
	}
	return func(e bank.Event) error {
		if e.TS <= end[e.Proc] {
			return nil
		}
		return fn(e)
	}, nil
}

// archiveCodec reads the archive of a bank kept in etcd (onEtcd) or in a
// file.
func archiveCodec(onEtcd bool) archive.Codec {
	if onEtcd {
		return etcdstore.Codec
	}
	return boltstore.Codec
}

// runCompact copies a database file without its free pages.
func runCompact(args []string) int {
	fs := cli.NewFlagSet("atm compact")
	db := fs.String("db", defaultDBPath(), "database file (the server must not be running)")
	to := fs.String("to", "", "the new, compact file (it must not exist); put it in place of --db yourself, with the server stopped")
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if *to == "" {
		fmt.Fprintln(os.Stderr, "atm compact: no new file given: use --to PATH")
		return 2
	}
	if err := boltstore.Compact(*db, *to); err != nil {
		if errors.Is(err, outcome.ErrDatabaseBusy) {
			err = fmt.Errorf("%s is held by a running server: stop it first", *db)
		}
		return fail("compact", err)
	}
	from, _ := os.Stat(*db)
	into, _ := os.Stat(*to)
	fmt.Printf("compacted %s (%.1f MiB) into %s (%.1f MiB)\n", *db, mib(from), *to, mib(into))
	return 0
}

func mib(fi os.FileInfo) float64 {
	if fi == nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

// replayArchive checks the archive in dir (every segment whole, chained,
// in order) and feeds its records and events to r, oldest first, its
// chains merged in (ts, proc) order.
func replayArchive(dir string, codec archive.Codec, r *bank.Replay) error {
	_, err := archive.Merge(dir, codec, r.Link, r.Event)
	return err
}
