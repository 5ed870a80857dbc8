package i18n

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/language"
)

// Lang is a language the ATM speaks. The zero value is English.
type Lang int

// The languages of the catalog.
const (
	English Lang = iota
	Portuguese
)

// Langs lists the languages of the catalog.
var Langs = []Lang{English, Portuguese}

// Tag is the language's BCP 47 tag: en or pt-BR.
func (l Lang) Tag() language.Tag {
	if l == Portuguese {
		return language.BrazilianPortuguese
	}
	return language.English
}

// String is the language's tag as --lang takes it: "en" or "pt-BR".
func (l Lang) String() string { return l.Tag().String() }

var matcher = language.NewMatcher([]language.Tag{language.English, language.BrazilianPortuguese})

// ErrUnsupported is returned by Parse for a language the catalog lacks.
var ErrUnsupported = errors.New("unsupported language")

// Parse reads a language as --lang takes it ("pt-BR", "pt", "en", "en-US")
// or as a locale names it ("pt_BR.UTF-8"). A language the catalog does
// not have is an error matching ErrUnsupported.
func Parse(s string) (Lang, error) {
	l, ok := match(s)
	if !ok {
		return English, fmt.Errorf("%w %q: choose pt-BR or en", ErrUnsupported, s)
	}
	return l, nil
}

// match finds the catalog's language for a tag or a locale name.
func match(s string) (Lang, bool) {
	s = strings.TrimSpace(s)
	// A locale name: language_TERRITORY.codeset@modifier.
	if i := strings.IndexAny(s, ".@"); i >= 0 {
		s = s[:i]
	}
	s = strings.ReplaceAll(s, "_", "-")
	if s == "" || s == "C" || s == "POSIX" {
		return English, s != ""
	}
	tag, err := language.Parse(s)
	if err != nil {
		return English, false
	}
	_, i, conf := matcher.Match(tag)
	if conf == language.No {
		return English, false
	}
	return Langs[i], true
}

// FromEnv is the language of the environment read by getenv (os.Getenv):
// the first of LC_ALL, LC_MESSAGES and LANG that is set decides, as in
// POSIX; pt_BR.UTF-8 gives Portuguese, C, POSIX, an unset environment or a
// language the catalog lacks give English.
func FromEnv(getenv func(string) string) Lang {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := getenv(v); s != "" {
			l, _ := match(s)
			return l
		}
	}
	return English
}

// FromEnviron is FromEnv of an environment given as "KEY=value" strings,
// as os.Environ or an SSH session's Environ return them (the last setting
// of a key counts).
func FromEnviron(environ []string) Lang {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return FromEnv(func(k string) string { return vars[k] })
}

// Date writes a day: 29/11/2026 in Portuguese, 2026-11-29 in English.
func (p *Printer) Date(t time.Time) string {
	if p.lang == Portuguese {
		return t.Format("02/01/2006")
	}
	return t.Format("2006-01-02")
}

// DateTime writes a day and a time of day with its zone:
// "29/11/2026 14:05:03 -03" or "2026-11-29 14:05:03 -03".
func (p *Printer) DateTime(t time.Time) string {
	return p.Date(t) + t.Format(" 15:04:05 MST")
}

// Time writes a time of day with its zone: "14:05:03 -03".
func (p *Printer) Time(t time.Time) string { return t.Format("15:04:05 MST") }

// Day writes a day for a sentence about when: "Mon 2 Jan 2006" in
// English, "02/01/2006" in Portuguese.
func (p *Printer) Day(t time.Time) string {
	if p.lang == Portuguese {
		return t.Format("02/01/2006")
	}
	return t.Format("Mon 2 Jan 2006")
}
