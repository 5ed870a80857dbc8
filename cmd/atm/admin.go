package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"atm/cmd/atm/internal/cli"
	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/wire"
	"atm/ui/i18n"

	"atm/bank/boltstore"
	"atm/bank/outcome"

	"golang.org/x/term"

	"atm/bank"
)

// openExisting opens the database at path for an offline tool. Unless
// write, it is opened read-only: a missing file is an error, and nothing is
// ever created or written (accounts list, log and verify). With write
// (accounts add) the file and its directory are created if needed. A file
// held by a running server gets a message saying so.
func openExisting(path string, write bool) (*boltstore.Bank, error) {
	if path == "" {
		return nil, errors.New("no database given: use --db PATH")
	}
	var b *boltstore.Bank
	var err error
	if write {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create the database's directory: %w", err)
		}
		b, err = boltstore.Open(path, boltstore.Options{})
	} else {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no database at %s (check --db): %w", path, errors.Unwrap(err))
		}
		b, err = boltstore.OpenReadOnly(path, boltstore.Options{})
	}
	if errors.Is(err, outcome.ErrDatabaseBusy) {
		return nil, fmt.Errorf("%s is held by a running server (atm serve, or an ATM running the bank inside it): "+
			"stop that first (Ctrl+C) and run this again, or read the log from the server with atm log --server ADDR", path)
	}
	return b, err
}

func fail(name string, err error) int {
	fmt.Fprintf(os.Stderr, "atm %s: %v\n", name, err)
	return 1
}

func runAccounts(args []string) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "add") {
		w, code := os.Stderr, 2
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			w, code = os.Stdout, 0
		}
		fmt.Fprintln(w, "usage: atm accounts list --db PATH\n       atm accounts add --db PATH --id ID --name NAME [--pin PIN]\n\n"+
			"Without --pin, add asks for the PIN without showing it (or reads one line from standard input\n"+
			"when that is not a terminal), so that it does not stay in the shell's history.")
		return code
	}
	sub := args[0]
	fs := cli.NewFlagSet("atm accounts " + sub)
	db := fs.String("db", defaultDBPath(), "database file")
	id := fs.String("id", "", "account id: the holder's RG, 1 to 20 digits")
	name := fs.String("name", "", "holder name")
	pin := fs.String("pin", "", "PIN, 4 to 12 digits (default: asked for without echo, or read from standard input; a PIN given here stays in the shell's history)")
	if code, ok := cli.ParseFlags(fs, args[1:]); !ok {
		return code
	}
	if sub == "add" {
		for _, f := range []struct{ name, value string }{{"id", *id}, {"name", *name}} {
			if f.value == "" {
				return fail("accounts add", fmt.Errorf("--%s is required", f.name))
			}
		}
		if *pin == "" {
			p, err := readPIN(*id)
			if err != nil {
				return fail("accounts add", err)
			}
			*pin = p
		}
	}
	b, err := openExisting(*db, sub == "add")
	if err != nil {
		return fail("accounts "+sub, err)
	}
	defer b.Close()
	switch sub {
	case "add":
		a, err := b.CreateAccount(context.Background(), *id, *name, *pin)
		if err != nil {
			return fail("accounts add", err)
		}
		fmt.Printf("account %s (%s) opened with %s\n", a.ID, a.Name, a.Balance)
	case "list":
		accts, err := b.Accounts(context.Background())
		if err != nil {
			return fail("accounts list", err)
		}
		slices.SortFunc(accts, func(a, b bank.Account) int {
			return cmp.Or(cmp.Compare(len(a.ID), len(b.ID)), cmp.Compare(a.ID, b.ID))
		})
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "ACCOUNT\tHOLDER\tBALANCE\t")
		for _, a := range accts {
			holder := a.Name
			if b.Locked(a) {
				holder += " (locked)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", a.ID, holder, a.Balance)
		}
		tw.Flush()
	}
	return 0
}

func runLog(args []string) int {
	fs := cli.NewFlagSet("atm log")
	db := fs.String("db", defaultDBPath(), "database file")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	serverAddr := fs.String("server", "", "read the log from the running server at HOST:PORT (tls://HOST:PORT over TLS), as its operator, instead of the file")
	trust := cli.TLSFlags(fs, i18n.For(i18n.English))
	etcd := fs.String("etcd", "", "read the log of the bank kept in this etcd cluster (HOST:PORT[,HOST:PORT…]) instead of the file")
	token := fs.String("operator-token", os.Getenv("ATM_OPERATOR_TOKEN"), "with --server: the server's operator token (default $ATM_OPERATOR_TOKEN, else operator.token beside --db)")
	archiveDir := fs.String("archive", "", "read the archived history in this directory first (atm serve --archive, atm archive), then the live log")
	follow := fs.Bool("follow", false, "with --server: after the log, print the new events as the bank commits them, until interrupted (Ctrl+C)")
	var d diagramFlags
	d.register(fs)
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if err := d.check(*asJSON); err != nil {
		fmt.Fprintf(os.Stderr, "atm log: %v\n", err)
		return 2
	}
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	print := func(e bank.Event) error {
		if d.on() {
			d.collect(e)
			return nil
		}
		if *asJSON {
			return enc.Encode(e)
		}
		// Strings in the log came from clients: one event, one line.
		_, err := fmt.Fprintln(w, server.EscapeControl(formatEvent(e)))
		return err
	}
	if *etcd != "" && *serverAddr != "" {
		fmt.Fprintln(os.Stderr, "atm log: --etcd and --server together: read the log from one of them")
		return 2
	}
	if *follow && *serverAddr == "" {
		fmt.Fprintln(os.Stderr, "atm log: --follow follows a running bank: give --server HOST:PORT")
		return 2
	}
	if *follow && d.on() {
		fmt.Fprintln(os.Stderr, "atm log: --follow prints events as they come; --diagram, --svg and --shiviz draw a log that is complete: leave out one or the other")
		return 2
	}
	if *archiveDir != "" {
		live, err := readArchive(*archiveDir, archiveCodec(*etcd != ""), print)
		if err != nil {
			return fail("log", err)
		}
		print = live
	}
	var err error
	switch {
	case *etcd != "":
		l, closeLedger, oerr := openEtcdReadOnly(*etcd)
		if oerr != nil {
			return fail("log", oerr)
		}
		defer closeLedger()
		err = l.Events(context.Background(), print)
	case *serverAddr != "":
		tok := *token
		if tok == "" { // the token kept beside the database, if this machine runs that bank
			tok, _ = readToken(tokenFile(*db))
		}
		if *follow {
			err = followFromServer(*serverAddr, tok, *trust, print, w.Flush)
		} else {
			err = logFromServer(*serverAddr, tok, *trust, print)
		}
	default:
		var b *boltstore.Bank
		b, err = openExisting(*db, false)
		if err != nil {
			return fail("log", err)
		}
		defer b.Close()
		err = b.Events(context.Background(), print)
	}
	if err == nil && d.on() {
		err = d.write(w)
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return fail("log", err)
	}
	return 0
}

// readPIN asks for a new account's PIN without echoing it, twice, when
// standard input is a terminal; otherwise it reads one line from it.
func readPIN(id string) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", errors.New("no PIN: give --pin, or type it when asked, or pass it on standard input")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(os.Stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		return string(b), err
	}
	first, err := ask(fmt.Sprintf("PIN for account %s (4 to 12 digits, not shown): ", id))
	if err != nil {
		return "", fmt.Errorf("read the PIN: %w", err)
	}
	again, err := ask("The same PIN again: ")
	if err != nil {
		return "", fmt.Errorf("read the PIN: %w", err)
	}
	if first != again {
		return "", errors.New("the two PINs differ; nothing was changed")
	}
	return first, nil
}

// logFromServer reads the whole log of the server at addr, page by page,
// as its operator.
func logFromServer(addr, token string, trust client.TLSOptions, fn func(bank.Event) error) error {
	ctx := context.Background()
	c, err := dialOperator(ctx, addr, token, client.Options{ProcessID: "atm-log", TLS: trust})
	if err != nil {
		return err
	}
	defer c.Close()
	var after wire.Cursor
	for {
		page, err := c.Log(ctx, token, after, wire.MaxLogLimit)
		if err != nil {
			return tokenRefused(addr, err)
		}
		if len(page.Events) == 0 {
			return nil
		}
		for _, e := range page.Events {
			if err := fn(server.EventOf(e)); err != nil {
				return err
			}
		}
		after = page.Next
	}
}

// followFromServer prints the log of the bank at addr (one server, or
// several to fail over between) and then its new events as they commit,
// flushing after each page, until SIGINT or SIGTERM: the bank sends them
// (a log subscription), nothing is asked while nothing happens.
func followFromServer(addr, token string, trust client.TLSOptions, fn func(bank.Event) error, flush func() error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := dialOperator(ctx, addr, token, client.Options{ProcessID: "atm-log", TLS: trust, Reconnect: true})
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := c.FollowLog(ctx, token, "", wire.MaxLogLimit)
	if err != nil {
		return tokenRefused(addr, err)
	}
	for page := range f.Pages() {
		for _, e := range page.Events {
			if err := fn(server.EventOf(e)); err != nil {
				return err
			}
		}
		if err := flush(); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted: the end the person asked for
	}
	return tokenRefused(addr, f.Err())
}

// dialOperator connects to the server at addr to read its log as its
// operator with token.
func dialOperator(ctx context.Context, addr, token string, opts client.Options) (*client.Client, error) {
	if token == "" {
		return nil, errors.New("reading the log from a server needs its operator token: --operator-token, $ATM_OPERATOR_TOKEN, or operator.token beside --db (the server keeps it there)")
	}
	c, err := client.Dial(ctx, addr, opts)
	if errors.Is(err, wire.ErrStarting) {
		return nil, fmt.Errorf("the server at %s is still starting (opening its bank) and cannot answer yet; run this again in a few seconds", addr)
	}
	if err != nil {
		return nil, err
	}
	cli.NoteFirstUse(i18n.For(i18n.English), "atm log", c.Hello())
	return c, nil
}

// tokenRefused words a refusal of the operator token by the server at
// addr; other errors are returned as they are.
func tokenRefused(addr string, err error) error {
	if errors.Is(err, wire.ErrForbidden) {
		return fmt.Errorf("the server at %s refused the operator token", addr)
	}
	return err
}

// formatEvent renders one event as a readable line.
func formatEvent(e bank.Event) string {
	var s strings.Builder
	fmt.Fprintf(&s, "L=%-6d %s %-12s", e.TS, e.Wall.Local().Format("2006-01-02 15:04:05.000"), e.Kind)
	if e.Account != "" {
		fmt.Fprintf(&s, " %s", e.Account)
	}
	switch e.Kind {
	case bank.KindDeposit, bank.KindWithdraw:
		sign := "+"
		if e.Kind == bank.KindWithdraw {
			sign = "-"
		}
		fmt.Fprintf(&s, " %s%s → %s", sign, e.Amount, e.Balance)
	case bank.KindTransfer:
		fmt.Fprintf(&s, " → %s %s", e.To, e.Amount)
		if e.Outcome == outcome.OutcomeOK {
			fmt.Fprintf(&s, " (balances %s / %s)", e.Balance, e.ToBalance)
		}
	case bank.KindPush:
		// What the push told: money from another account, or a change
		// another session made on this one (its detail names it).
		what := "from " + e.To
		switch {
		case strings.HasPrefix(e.Detail, "deposit "):
			what = "deposit at another ATM"
		case strings.HasPrefix(e.Detail, "withdrawal "):
			what = "withdrawal at another ATM"
		case strings.HasPrefix(e.Detail, "transfer out "):
			what = "transfer to " + e.To + " at another ATM"
		}
		fmt.Fprintf(&s, " %s %s → %s", e.Amount, what, e.Balance)
	case bank.KindBalance:
		fmt.Fprintf(&s, " = %s", e.Balance)
	case bank.KindOpen:
		if e.Outcome == outcome.OutcomeOK { // a refusal's detail is its error, shown below
			fmt.Fprintf(&s, " %q", e.Detail)
		}
	case bank.KindLock: // who is locked out, or the throttle, and until when
		fmt.Fprintf(&s, " %s", e.Detail)
	case bank.KindCheckpoint: // what it records, state and chain hashes included
		if e.Outcome == outcome.OutcomeOK {
			fmt.Fprintf(&s, " %s", e.Detail)
		}
	}
	fmt.Fprintf(&s, " %s", e.Outcome)
	if e.Client != "" {
		fmt.Fprintf(&s, " client=%s", e.Client)
	}
	if e.ReqID != "" {
		fmt.Fprintf(&s, " req=%s", e.ReqID)
	}
	switch {
	case e.Origin != "":
		fmt.Fprintf(&s, " [%s's change at L=%d, received here at L=%d]", e.Origin, e.OrigTS, e.RecvTS)
	case e.RecvTS != 0:
		fmt.Fprintf(&s, " [sent L=%d recv L=%d apply L=%d reply L=%d]", e.ClientTS, e.RecvTS, e.TS, e.ReplyTS)
	}
	if e.OrigTS != 0 && e.Origin == "" {
		fmt.Fprintf(&s, " first=L%d", e.OrigTS)
	}
	if e.Detail != "" && e.Outcome != outcome.OutcomeOK {
		fmt.Fprintf(&s, " (%s)", e.Detail)
	}
	return s.String()
}

func runVerify(args []string) int {
	fs := cli.NewFlagSet("atm verify")
	db := fs.String("db", defaultDBPath(), "database file")
	etcd := fs.String("etcd", "", "verify the bank kept in this etcd cluster (HOST:PORT[,HOST:PORT…]) instead of the file")
	full := fs.Bool("full", false, "check the whole log, from its first event, instead of from the newest checkpoint")
	archiveDir := fs.String("archive", "", "check the whole history: the archived segments in this directory (atm archive, atm serve --archive), from the first event, then the live log after them")
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	var l *bank.Ledger
	where := *db
	if *etcd != "" {
		where = "etcd " + *etcd
		e, closeLedger, oerr := openEtcdReadOnly(*etcd)
		if oerr != nil {
			return fail("verify", oerr)
		}
		defer closeLedger()
		l = e.Ledger
	} else {
		b, oerr := openExisting(*db, false)
		if oerr != nil {
			return fail("verify", oerr)
		}
		defer b.Close()
		l = b.Ledger
	}
	verify := l.Verify
	if *full {
		verify = l.VerifyFull
	}
	if *archiveDir != "" {
		verify = func(ctx context.Context) (bank.VerifyReport, error) {
			return l.VerifyArchived(ctx, func(r *bank.Replay) error { return replayArchive(*archiveDir, archiveCodec(*etcd != ""), r) })
		}
	}
	rep, err := verify(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "atm verify: FAILED: %s: %v\n", where, err)
		return 1
	}
	from := "from the first event"
	if rep.FromTS != 0 {
		from = fmt.Sprintf("from the checkpoint at L=%d (process %s)", rep.FromTS, rep.FromProc)
	}
	fmt.Printf("ok: %s replayed %s up to L=%d, %s of the log's chain checked; %d accounts; balances %s = deposits %s − withdrawals %s\n",
		count(rep.Events, "event"), from, rep.LastTS, count(rep.Records, "record"), rep.Accounts, rep.Total, rep.Deposits, rep.Withdrawals)
	if rep.Unchained > 0 {
		fmt.Printf("note: %s written before the log was chained (by an older atm): replayed, but their bytes are not checked; the chain starts after them\n",
			count(rep.Unchained, "record"))
	}
	return 0
}

// count says n things: "1 event", "2 events".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
