// Command atm is the ATM terminal, the bank server and the tools around them.
//
//	atm [--server HOST:PORT]          the ATM (full-screen terminal app)
//	atm serve --addr ADDR --db PATH   the bank server, headless
//	atm serve --etcd URLS --proc ID   one of several servers of a bank kept in etcd
//	atm accounts list|add --db PATH   manage accounts (server not running)
//	atm log --db PATH [--json]        print the event log in Lamport order (or --etcd URLS,
//	                                  or --server ADDR [--follow] to follow it; --archive DIR first)
//	atm verify --db PATH              check the log's chain and replay it from the newest checkpoint (or --etcd URLS; --full)
//	atm checkpoint --db PATH          record the bank's state in its log (or --etcd URLS)
//	atm archive --db PATH --to DIR    move the oldest events into an archive (server not running)
//	atm watch [--server HOST:PORT]    a live space-time diagram of the bank
//	atm bench ...                     load-test a server
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"atm/cmd/atm/internal/bench"
	"atm/cmd/atm/internal/cli"
	"atm/ui/i18n"
)

// command is one subcommand; run gets the arguments after its name and
// returns the process exit code.
type command struct {
	name    string
	summary i18n.Key
	run     func(args []string) int
}

// commands are the subcommands in the order atm help lists them. "atm" is
// the one run without a command name, listed as "(none)".
var commands = []command{
	{"accounts", i18n.SumAccounts, runAccounts},
	{"archive", i18n.SumArchive, runArchive},
	{"compact", i18n.SumCompact, runCompact},
	{"atm", i18n.SumATM, runTUI},
	{"bench", i18n.SumBench, bench.Run},
	{"checkpoint", i18n.SumCheckpoint, runCheckpoint},
	{"log", i18n.SumLog, runLog},
	{"serve", i18n.SumServe, runServe},
	{"verify", i18n.SumVerify, runVerify},
	{"watch", i18n.SumWatch, runWatch},
}

// lookup finds the command called name.
func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func main() {
	args := os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name := args[0]
		tr := i18n.For(cli.Language(args))
		if name == "help" {
			usage(os.Stdout, tr)
			os.Exit(0)
		}
		cmd, ok := lookup(name)
		if !ok {
			fmt.Fprintln(os.Stderr, tr.T(i18n.CmdUnknown, name)+"\n")
			usage(os.Stderr, tr)
			os.Exit(2)
		}
		os.Exit(cmd.run(args[1:]))
	}
	os.Exit(runTUI(args))
}

// usage lists the commands on w, in tr's language: standard output when
// asked for (atm help), standard error after a mistake.
func usage(w io.Writer, tr *i18n.Printer) {
	fmt.Fprintln(w, tr.T(i18n.CmdUsage))
	for _, c := range commands {
		label := c.name
		if c.name == "atm" {
			label = tr.T(i18n.CmdNone)
		}
		fmt.Fprintf(w, "  %-10s %s\n", label, tr.T(c.summary))
	}
	fmt.Fprintln(w, tr.T(i18n.CmdMore))
}
