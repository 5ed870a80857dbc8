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
	"atm/ui/i18n"
)

func runTUI(args []string) int {
	tr := i18n.For(cli.Language(args))
	fs := cli.NewFlagSet("atm")
	server := fs.String("server", "", tr.T(i18n.ATMServerFlag, wire.DefaultAddr))
	db := fs.String("db", defaultDBPath(), tr.T(i18n.ATMDBFlag))
	trust := cli.TLSFlags(fs, tr)
	lang := cli.LangFlag(fs, args, tr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), tr.T(i18n.ATMUsage))
		fmt.Fprintln(fs.Output(), tr.T(i18n.ATMAbout))
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), tr.T(i18n.ATMOthers))
	}
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	cfg := ui.Config{Addr: *server, Embedded: *server == "", DBPath: *db, StartServer: startLocalServer, TLS: *trust, Lang: *lang}
	if err := ui.Run(context.Background(), cfg); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		fmt.Fprintf(os.Stderr, "atm: %v\n", err)
		return 1
	}
	return 0
}
