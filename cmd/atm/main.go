// Command atm is the ATM terminal, the bank server and the tools around them.
//
//	atm [--server HOST:PORT]          the ATM (full-screen terminal app)
//	atm serve --addr ADDR --db PATH   the bank server, headless
//	atm serve --etcd URLS --proc ID   one of several servers of a bank kept in etcd
//	atm accounts list|add --db PATH   manage accounts (server not running)
//	atm log --db PATH [--json]        print the event log in Lamport order (or --etcd URLS)
//	atm verify --db PATH              replay the log and check the ledger (or --etcd URLS)
//	atm watch [--server HOST:PORT]    a live space-time diagram of the bank
//	atm bench ...                     load-test a server
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"atm/cmd/atm/internal/bench"
)

// command is one subcommand; run gets the arguments after its name and
// returns the process exit code.
type command struct {
	name    string
	summary string
	run     func(args []string) int
}

// commands are the subcommands in the order atm help lists them. "atm" is
// the one run without a command name, listed as "(none)".
var commands = []command{
	{"accounts", "list or add accounts (server not running)", runAccounts},
	{"atm", "the ATM, full screen (default; --server HOST:PORT, else a local bank started if needed)", runTUI},
	{"bench", "load-test a bank server and report throughput and latency", bench.Run},
	{"log", "print the event log in Lamport order", runLog},
	{"serve", "run the bank server (headless)", runServe},
	{"verify", "replay the event log and check balances and conservation", runVerify},
	{"watch", "a live space-time diagram of every process of the bank (--server, --operator-token)", runWatch},
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
		if name == "help" {
			usage(os.Stdout)
			os.Exit(0)
		}
		cmd, ok := lookup(name)
		if !ok {
			fmt.Fprintf(os.Stderr, "atm: unknown command %q\n\n", name)
			usage(os.Stderr)
			os.Exit(2)
		}
		os.Exit(cmd.run(args[1:]))
	}
	os.Exit(runTUI(args))
}

// usage lists the commands on w: standard output when asked for (atm
// help), standard error after a mistake.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: atm [command] [flags]\n\ncommands:")
	for _, c := range commands {
		label := c.name
		if c.name == "atm" {
			label = "(none)"
		}
		fmt.Fprintf(w, "  %-10s %s\n", label, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'atm COMMAND -h' for a command's flags.")
}
