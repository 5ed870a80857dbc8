// Package cli holds what the commands of atm share about their command
// lines: one way to build a flag set and to parse it, and the language
// they speak.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"atm/netproto/client"
	"atm/ui/i18n"
)

// NewFlagSet is a command's flag set: errors returned, not exits, and a
// usage line in the form every command uses (a command may set its own).
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n", name)
		fs.PrintDefaults()
	}
	return fs
}

// ParseFlags parses a command's arguments, which take no positional ones.
// When the command must stop there it returns false and the exit code: 0
// after -h, 2 after a bad flag or a stray argument.
func ParseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(os.Stdout) // help asked for: standard output, exit 0
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, i18n.For(Language(args)).T(i18n.CmdUnexpected, fs.Name(), fs.Arg(0)))
		return 2, false
	}
	return 0, true
}

// TLSFlags registers the flags of a command that talks to a server about
// trusting its TLS certificate (--ca, --known-servers), their help in tr's
// language, and returns the options they set, for client.Options.TLS.
func TLSFlags(fs *flag.FlagSet, tr *i18n.Printer) *client.TLSOptions {
	var o client.TLSOptions
	def := tr.T(i18n.CmdKnownDefault)
	if dir, err := os.UserConfigDir(); err == nil {
		def = filepath.Join(dir, "atm", "known_servers")
	}
	fs.StringVar(&o.CAFile, "ca", "", tr.T(i18n.CmdCAFlag))
	fs.StringVar(&o.KnownServers, "known-servers", "", tr.T(i18n.CmdKnownFlag, client.KnownServersEnv, def))
	return &o
}

// NoteFirstUse tells, on standard error in tr's language, that the TLS
// certificate of the server a command reached was met for the first time
// and is now remembered, with its fingerprint to compare with the server's
// start line. It says nothing otherwise.
func NoteFirstUse(tr *i18n.Printer, name string, h client.Hello) {
	if h.TLS == nil || !h.TLS.FirstUse {
		return
	}
	fmt.Fprintln(os.Stderr, tr.T(i18n.CmdFirstUse, name, h.Addr, h.TLS.Fingerprint, h.TLS.File))
}

// Language is the language a command speaks to a person: the one --lang
// names among args, if it names one the catalog has, else the
// environment's (i18n.FromEnv: $LC_ALL, $LC_MESSAGES, $LANG), else
// English. It is known before the flags are parsed, so that their help is
// in that language too.
func Language(args []string) i18n.Lang {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "lang" {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				break
			}
			value = args[i+1]
		}
		if l, err := i18n.Parse(value); err == nil {
			return l
		}
	}
	return i18n.FromEnv(os.Getenv)
}

// langValue is the --lang flag: pt-BR or en.
type langValue struct{ l *i18n.Lang }

// String is empty: the default depends on the environment, which the
// flag's help explains.
func (v langValue) String() string { return "" }

func (v langValue) Set(s string) error {
	l, err := i18n.Parse(s)
	if err != nil {
		return err
	}
	*v.l = l
	return nil
}

// LangFlag adds --lang to fs, its help in tr's language, and returns the
// language: Language(args) until the flags are parsed, then what --lang
// says. A language the catalog lacks is a usage error.
func LangFlag(fs *flag.FlagSet, args []string, tr *i18n.Printer) *i18n.Lang {
	l := Language(args)
	fs.Var(langValue{&l}, "lang", tr.T(i18n.CmdLangFlag))
	return &l
}
