package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"atm/cmd/atm/internal/cli"
	"atm/netproto/client"
	"atm/netproto/wire"
	"atm/ui"
	"atm/ui/i18n"
	"atm/ui/watch"

	tea "charm.land/bubbletea/v2"
)

// watchToken is the flag's value, else $ATM_OPERATOR_TOKEN (the flag's
// default), else the token kept beside the default database ("" when
// there is none).
func watchToken(flag string) string {
	if flag != "" {
		return flag
	}
	tok, _ := readToken(tokenFile(defaultDBPath()))
	return tok
}

func runWatch(args []string) int {
	tr := i18n.For(cli.Language(args))
	fs := cli.NewFlagSet("atm watch")
	addr := fs.String("server", wire.DefaultAddr, tr.T(i18n.WatchServerFlag))
	token := fs.String("operator-token", os.Getenv("ATM_OPERATOR_TOKEN"), tr.T(i18n.WatchTokenFlag, tokenFile(defaultDBPath())))
	trust := cli.TLSFlags(fs, tr)
	lang := cli.LangFlag(fs, args, tr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), tr.T(i18n.WatchUsage))
		fmt.Fprintln(fs.Output(), tr.T(i18n.WatchAbout))
		fs.PrintDefaults()
	}
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	tok := watchToken(*token)
	if tok == "" {
		fmt.Fprint(os.Stderr, tr.T(i18n.WatchNoToken, tokenFile(defaultDBPath())))
		return 2
	}
	ctx := context.Background()
	c, err := client.Dial(ctx, *addr, client.Options{ProcessID: "atm-watch", Reconnect: true, TLS: *trust})
	if err != nil {
		return fail("watch", errors.New(ui.ConnectFailure(tr, *addr, err)))
	}
	defer c.Close()
	cli.NoteFirstUse(tr, "atm watch", c.Hello())
	// One read before the screen opens, so that a wrong token is said
	// plainly.
	if _, err := c.Log(ctx, tok, "", 1); errors.Is(err, wire.ErrForbidden) {
		return fail("watch", errors.New(tr.T(i18n.WatchTokenRefused, c.Addr())))
	}
	m := watch.New(watch.Config{Source: c, Token: tok, Addr: *addr, Lang: *lang})
	if _, err := tea.NewProgram(m, tea.WithContext(ctx)).Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		return fail("watch", err)
	}
	return 0
}
