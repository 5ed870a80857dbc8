// Package i18n is the message catalog of the ATM, atm watch and the atm
// command: every sentence they show a person, in English and in Brazilian
// Portuguese, with plural forms chosen by the language's rules and numbers
// written the language's way.
//
// A message is a Key made by def or defPlural, which take both languages at
// once: a message cannot exist in one language only, and the catalog's test
// checks that both have the same placeholders. A Printer says messages in
// one language. The wire protocol, the server's log and error codes are not
// here: they stay in English.
package i18n

import (
	"sync"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// Key names one message of the catalog.
type Key struct{ id string }

// ID is the key's name in the catalog, e.g. "login.title".
func (k Key) ID() string { return k.id }

// form is a message in one language: a plain text, or plural cases chosen
// by the number in argument arg.
type form struct {
	text  string
	arg   int      // plural: the argument (from 1) that chooses the case
	cases []string // plural: selector, text, selector, text...
}

// Texts is a message's texts in one language: the plain text, or each
// plural case. The catalog's test compares their placeholders.
func (f form) Texts() []string {
	if f.cases == nil {
		return []string{f.text}
	}
	var out []string
	for i := 1; i < len(f.cases); i += 2 {
		out = append(out, f.cases[i])
	}
	return out
}

func (f form) message() catalog.Message {
	if f.cases == nil {
		return catalog.String(f.text)
	}
	cases := make([]any, len(f.cases))
	for i, c := range f.cases {
		cases[i] = c
	}
	return plural.Selectf(f.arg, "%d", cases...)
}

// entry is one message in both languages.
type entry struct {
	key    Key
	en, pt form
}

var registry []entry

// def defines a message by its id, its English and its Portuguese text
// (fmt verbs allowed; they must match).
func def(id, en, pt string) Key {
	k := Key{id}
	registry = append(registry, entry{key: k, en: form{text: en}, pt: form{text: pt}})
	return k
}

// defPlural defines a message whose text depends on the number in argument
// arg (from 1): en and pt are selector/text pairs as plural.Selectf takes
// them ("one", "…", "other", "…"; "=0" for an exact value).
func defPlural(id string, arg int, en, pt []string) Key {
	k := Key{id}
	registry = append(registry, entry{key: k, en: form{arg: arg, cases: en}, pt: form{arg: arg, cases: pt}})
	return k
}

// Entry is one message of the catalog as the tests see it.
type Entry struct {
	Key    Key
	En, Pt interface{ Texts() []string }
}

// Entries lists every message of the catalog, in the order defined.
func Entries() []Entry {
	out := make([]Entry, len(registry))
	for i, e := range registry {
		out[i] = Entry{Key: e.key, En: e.en, Pt: e.pt}
	}
	return out
}

var (
	buildOnce sync.Once
	cat       *catalog.Builder
)

// theCatalog builds the catalog once, after every message is defined.
func theCatalog() *catalog.Builder {
	buildOnce.Do(func() {
		cat = catalog.NewBuilder(catalog.Fallback(language.English))
		for _, e := range registry {
			// Set fails only on a malformed message, which the catalog's
			// test would catch.
			_ = cat.Set(English.Tag(), e.key.id, e.en.message())
			_ = cat.Set(Portuguese.Tag(), e.key.id, e.pt.message())
		}
	})
	return cat
}

// Printer says the catalog's messages in one language. It is safe for
// concurrent use.
type Printer struct {
	lang Lang
	p    *message.Printer
}

var printers sync.Map // Lang → *Printer

// For returns the printer of lang (English for an unknown Lang).
func For(lang Lang) *Printer {
	if lang != Portuguese {
		lang = English
	}
	if p, ok := printers.Load(lang); ok {
		return p.(*Printer)
	}
	p := &Printer{lang: lang, p: message.NewPrinter(lang.Tag(), message.Catalog(theCatalog()))}
	actual, _ := printers.LoadOrStore(lang, p)
	return actual.(*Printer)
}

// Lang is the printer's language.
func (p *Printer) Lang() Lang { return p.lang }

// T says message k with args. Integers are written the language's way
// (1,234 or 1.234): pass identifiers and timestamps as strings.
func (p *Printer) T(k Key, args ...any) string { return p.p.Sprintf(k.id, args...) }
