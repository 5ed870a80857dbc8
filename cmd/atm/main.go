// Command atm is the ATM terminal, the bank server and the tools around them.
//
//	atm [--server HOST:PORT]          the ATM (full-screen terminal app)
//	atm serve --addr ADDR --db PATH   the bank server, headless
//	atm accounts list|add --db PATH   manage accounts (server not running)
//	atm log --db PATH [--json]        print the event log in Lamport order
//	atm verify --db PATH              replay the log and check the ledger
//	atm bench ...                     load-test a server
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one subcommand; run gets the arguments after its name and
// returns the process exit code.
type command struct {
	summary string
	run     func(args []string) int
}

// commands is filled by the init functions of the files beside this one.
var commands = map[string]command{}

func main() {
	args := os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name := args[0]
		if name == "help" {
			usage()
			os.Exit(0)
		}
		cmd, ok := commands[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "atm: unknown command %q\n\n", name)
			usage()
			os.Exit(2)
		}
		os.Exit(cmd.run(args[1:]))
	}
	tui, ok := commands["atm"]
	if !ok {
		fmt.Fprintln(os.Stderr, "atm: the terminal is not built into this binary")
		os.Exit(2)
	}
	os.Exit(tui.run(args))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: atm [command] [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		label := n
		if n == "atm" {
			label = "(none)"
		}
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", label, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'atm COMMAND -h' for a command's flags.")
}

// parseFlags parses a command's arguments, which take no positional ones.
// When the command must stop there it returns false and the exit code: 0
// after -h, 2 after a bad flag or a stray argument.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}
