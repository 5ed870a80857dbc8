package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"atm/cmd/atm/internal/cli"
	"atm/netproto/wire"

	tea "charm.land/bubbletea/v2"

	"atm/ui"
)

func runTUI(args []string) int {
	fs := cli.NewFlagSet("atm")
	server := fs.String("server", "", "bank server HOST:PORT (tls://HOST:PORT over TLS), or several servers of one bank HOST:PORT,HOST:PORT,... to fail over between (default "+wire.DefaultAddr+"; without this flag, a server is started inside the ATM when none answers there)")
	db := fs.String("db", defaultDBPath(), "database of the server started inside the ATM (not used with --server)")
	trust := cli.TLSFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: atm [--server [tls://]HOST:PORT[,...]] [--ca FILE] [--db PATH]")
		fmt.Fprintln(fs.Output(), "\nThe ATM. Keys are shown at the bottom of every screen; q or ctrl+c quits.")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\nRun 'atm help' for the other commands.")
	}
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	cfg := ui.Config{Addr: *server, Embedded: *server == "", DBPath: *db, StartServer: startLocalServer, TLS: *trust}
	if err := ui.Run(context.Background(), cfg); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		fmt.Fprintf(os.Stderr, "atm: %v\n", err)
		return 1
	}
	return 0
}
