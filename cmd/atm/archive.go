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
	"atm/bank/outcome"
	"atm/cmd/atm/internal/cli"
)

// defaultKeepLog is how many events archiving keeps live at least, and
// defaultSegmentEvents how many a segment file holds.
const (
	defaultKeepLog       = 100_000
	defaultSegmentEvents = 20_000
)

// runArchive moves the oldest events of a bank's log into an archive
// directory, offline (the server not running).
func runArchive(args []string) int {
	fs := cli.NewFlagSet("atm archive")
	db := fs.String("db", defaultDBPath(), "database file (the server must not be running)")
	to := fs.String("to", "", "the archive directory: it must exist; segments are added to it")
	keep := fs.Int("keep-log", defaultKeepLog, "events that stay in the live log at least")
	per := fs.Int("segment-events", defaultSegmentEvents, "events per segment file")
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
	if err := archive.CheckDir(*to); err != nil {
		return fail("archive", fmt.Errorf("%w; nothing was archived", err))
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
	o := archiveOptions(*to, *keep)
	o.Per = *per
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
	if c.onEtcd() {
		return errors.New("--archive is not available on a bank kept in etcd yet: archive a bank kept in a database file (--db)")
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
	go func() {
		defer close(a.done)
		t := time.NewTicker(archiveEvery)
		defer t.Stop()
		for {
			res, err := archive.Run(context.Background(), st, archiveOptions(dir, keep))
			switch {
			case err != nil:
				logger.Error(fmt.Sprintf("archive to %s: %v; the server goes on with the live log, nothing is lost", dir, err))
			case res.Records > 0:
				logger.Info(fmt.Sprintf("archived %d events in %d segments to %s", res.Records, len(res.Segments), dir))
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

// stop stops the archiver and waits for a run in progress; a nil archiver
// is nothing to stop.
func (a *archiver) stop() {
	if a == nil {
		return
	}
	close(a.quit)
	<-a.done
}

// readArchive calls fn for every archived event in dir, in order, and
// returns fn for the live log that follows: it skips the live events the
// archive already holds (a crash may leave a segment written whose events
// are still live). It reads the archive of a bank kept in a file: one
// chain of events.
func readArchive(dir string, fn func(bank.Event) error) (func(bank.Event) error, error) {
	segs, err := archive.List(dir)
	if err != nil {
		return nil, err
	}
	var end uint64
	for _, s := range segs {
		if _, err := archive.Read(dir, s.Name, boltstore.Codec, fn); err != nil {
			return nil, err
		}
		end = max(end, s.Last)
	}
	return func(e bank.Event) error {
		if e.TS <= end {
			return nil
		}
		return fn(e)
	}, nil
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
// in order) and feeds its records and events to r, oldest first.
func replayArchive(dir string, r *bank.Replay) error {
	_, err := archive.Check(dir, boltstore.Codec, func(k bank.Link, es []bank.Event) error {
		if err := r.Link(k); err != nil {
			return err
		}
		for _, e := range es {
			if err := r.Event(e); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}
