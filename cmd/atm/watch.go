package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"atm/cmd/atm/internal/cli"
	"atm/netproto/client"
	"atm/netproto/wire"
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
	fs := cli.NewFlagSet("atm watch")
	addr := fs.String("server", wire.DefaultAddr, "the bank server's HOST:PORT (tls://HOST:PORT over TLS), or several servers of one bank HOST:PORT,HOST:PORT,... to fail over between")
	token := fs.String("operator-token", os.Getenv("ATM_OPERATOR_TOKEN"),
		"the server's operator token (default $ATM_OPERATOR_TOKEN, else the file "+tokenFile(defaultDBPath())+")")
	trust := cli.TLSFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: atm watch [--server HOST:PORT[,HOST:PORT...]] [--operator-token TOKEN]")
		fmt.Fprintln(fs.Output(), "\nA live space-time diagram of every process of the bank: one lane per process,\n"+
			"time going down, messages from send to receive. It reads the server's event log\n"+
			"as its operator. Keys are shown at the bottom; q quits.")
		fs.PrintDefaults()
	}
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	tok := watchToken(*token)
	if tok == "" {
		fmt.Fprintf(os.Stderr, "atm watch: no operator token. The watcher reads the bank's event log as its operator:\n"+
			"  pass the token the server was started with, --operator-token TOKEN (or set $ATM_OPERATOR_TOKEN),\n"+
			"  e.g. for a server started with 'atm serve --operator-token TOKEN'.\n"+
			"  A server (atm serve, or one started inside an ATM) keeps its token in operator.token\n"+
			"  beside its database; none is at %s.\n", tokenFile(defaultDBPath()))
		return 2
	}
	ctx := context.Background()
	c, err := client.Dial(ctx, *addr, client.Options{ProcessID: "atm-watch", Reconnect: true, TLS: *trust})
	if err != nil {
		return fail("watch", err)
	}
	defer c.Close()
	cli.NoteFirstUse("atm watch", c.Hello())
	// One read before the screen opens, so that a wrong token is said
	// plainly.
	if _, err := c.Log(ctx, tok, 0, 1); errors.Is(err, wire.ErrForbidden) {
		return fail("watch", fmt.Errorf("the server at %s refused the operator token", c.Addr()))
	}
	m := watch.New(watch.Config{Source: c, Token: tok, Addr: *addr})
	if _, err := tea.NewProgram(m, tea.WithContext(ctx)).Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		return fail("watch", err)
	}
	return 0
}
