package i18n_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"atm/ui/i18n"
)

var verb = regexp.MustCompile(`%(\[(\d+)\])?[-+# 0]*\d*(\.\d+)?([a-zA-Z%])`)

// placeholders maps each argument a text uses (from 1) to its verb.
func placeholders(t *testing.T, text string) map[int]string {
	t.Helper()
	out := map[int]string{}
	n := 0
	for _, m := range verb.FindAllStringSubmatch(text, -1) {
		if m[4] == "%" {
			continue
		}
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		} else {
			n++
		}
		v := m[4]
		if prev, ok := out[n]; ok && prev != v {
			t.Errorf("%q uses argument %d as %%%s and %%%s", text, n, prev, v)
		}
		out[n] = v
	}
	return out
}

// Every message has a text in both languages, with the same placeholders
// in every form: a message cannot be missing in one language.
func TestCatalogComplete(t *testing.T) {
	entries := i18n.Entries()
	if len(entries) < 100 {
		t.Fatalf("only %d messages in the catalog", len(entries))
	}
	ids := map[string]bool{}
	for _, e := range entries {
		id := e.Key.ID()
		if ids[id] {
			t.Errorf("message %s defined twice", id)
		}
		ids[id] = true
		en, pt := e.En.Texts(), e.Pt.Texts()
		if len(en) == 0 || len(pt) == 0 {
			t.Errorf("%s: no text in English (%d forms) or Portuguese (%d forms)", id, len(en), len(pt))
			continue
		}
		want := fmt.Sprint(placeholders(t, en[0]))
		for _, texts := range [][]string{en, pt} {
			for _, text := range texts {
				if strings.TrimSpace(text) == "" {
					t.Errorf("%s: empty text", id)
				}
				if got := fmt.Sprint(placeholders(t, text)); got != want {
					t.Errorf("%s: %q has placeholders %s, the English %s", id, text, got, want)
				}
			}
		}
	}
}

// The Portuguese catalog is really Portuguese: a message whose two texts are
// the same must be a symbol, a format or a command's name, not an
// untranslated sentence.
func TestPortugueseTranslated(t *testing.T) {
	letters := regexp.MustCompile(`[A-Za-z]{3,}`)
	command := regexp.MustCompile(`\batm( watch)?\b`)
	for _, e := range i18n.Entries() {
		en, pt := e.En.Texts(), e.Pt.Texts()
		for i := range min(len(en), len(pt)) {
			if en[i] == pt[i] && letters.MatchString(command.ReplaceAllString(verb.ReplaceAllString(en[i], ""), "")) {
				t.Errorf("%s: %q is not translated", e.Key.ID(), en[i])
			}
		}
	}
}

func TestPrinterSaysEachLanguage(t *testing.T) {
	en, pt := i18n.For(i18n.English), i18n.For(i18n.Portuguese)
	if got := en.T(i18n.LoginTitle); got != "Welcome! Please log in." {
		t.Errorf("English login title %q", got)
	}
	if got := pt.T(i18n.LoginTitle); got != "Bem-vindo! Faça seu login." {
		t.Errorf("Portuguese login title %q", got)
	}
	if got := pt.T(i18n.BusyLookup, "456"); got != "Procurando a conta 456…" {
		t.Errorf("Portuguese with an argument %q", got)
	}
}

// Plural forms follow each language's rules, and numbers are written the
// language's way.
func TestPlurals(t *testing.T) {
	en, pt := i18n.For(i18n.English), i18n.For(i18n.Portuguese)
	cases := []struct {
		p    *i18n.Printer
		n    int
		want string
	}{
		{en, 1, "Wrong PIN: 1 attempt left before this ATM is locked out of the account."},
		{en, 2, "Wrong PIN: 2 attempts left before this ATM is locked out of the account."},
		{pt, 1, "Senha incorreta: resta 1 tentativa antes de este caixa ser bloqueado nesta conta."},
		{pt, 3, "Senha incorreta: restam 3 tentativas antes de este caixa ser bloqueado nesta conta."},
	}
	for _, c := range cases {
		if got := c.p.T(i18n.LoginWrongPINLeft, c.n); got != c.want {
			t.Errorf("%v, %d: %q, want %q", c.p.Lang(), c.n, got, c.want)
		}
	}
	if got := pt.T(i18n.KeysDropped, 1234); got != "1.234 teclas digitadas durante a espera não foram usadas." {
		t.Errorf("Portuguese 1234 keys: %q", got)
	}
	if got := en.T(i18n.KeysDropped, 1234); got != "1,234 keys typed while waiting were not used." {
		t.Errorf("English 1234 keys: %q", got)
	}
	if got := pt.T(i18n.WaitFraction, 0.4); got != "0,4 s" {
		t.Errorf("Portuguese 0.4 s: %q", got)
	}
}

func TestFromEnv(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want i18n.Lang
	}{
		{map[string]string{}, i18n.English},
		{map[string]string{"LANG": "pt_BR.UTF-8"}, i18n.Portuguese},
		{map[string]string{"LANG": "pt_BR"}, i18n.Portuguese},
		{map[string]string{"LANG": "pt_PT.UTF-8"}, i18n.Portuguese},
		{map[string]string{"LANG": "C"}, i18n.English},
		{map[string]string{"LANG": "POSIX"}, i18n.English},
		{map[string]string{"LANG": "C.UTF-8"}, i18n.English},
		{map[string]string{"LANG": "en_US.UTF-8"}, i18n.English},
		{map[string]string{"LANG": "de_DE.UTF-8"}, i18n.English},
		{map[string]string{"LANG": "pt_BR.UTF-8", "LC_MESSAGES": "C"}, i18n.English},
		{map[string]string{"LANG": "C", "LC_MESSAGES": "pt_BR.UTF-8"}, i18n.Portuguese},
		{map[string]string{"LANG": "C", "LC_MESSAGES": "C", "LC_ALL": "pt_BR.UTF-8"}, i18n.Portuguese},
		{map[string]string{"LANG": "pt_BR.UTF-8", "LC_ALL": "C"}, i18n.English},
		{map[string]string{"LANG": "pt_BR.ISO-8859-1@latin"}, i18n.Portuguese},
	}
	for _, c := range cases {
		if got := i18n.FromEnv(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("FromEnv(%v) = %v, want %v", c.env, got, c.want)
		}
	}
}

func TestFromEnviron(t *testing.T) {
	cases := []struct {
		env  []string
		want i18n.Lang
	}{
		{nil, i18n.English},
		{[]string{"TERM=xterm", "LANG=pt_BR.UTF-8"}, i18n.Portuguese},
		{[]string{"LANG=pt_BR.UTF-8", "LC_ALL=C"}, i18n.English},
		{[]string{"LANG=C", "LANG=pt_BR.UTF-8"}, i18n.Portuguese},
		{[]string{"LC_MESSAGES=pt_BR", "bogus"}, i18n.Portuguese},
	}
	for _, c := range cases {
		if got := i18n.FromEnviron(c.env); got != c.want {
			t.Errorf("FromEnviron(%q) = %v, want %v", c.env, got, c.want)
		}
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]i18n.Lang{"pt-BR": i18n.Portuguese, "pt": i18n.Portuguese, "pt_BR.UTF-8": i18n.Portuguese, "en": i18n.English, "en-US": i18n.English, "EN": i18n.English} {
		if got, err := i18n.Parse(s); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "fr", "xx-YY", "klingon"} {
		if _, err := i18n.Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
	if i18n.Portuguese.String() != "pt-BR" || i18n.English.String() != "en" {
		t.Errorf("tags %q %q", i18n.Portuguese, i18n.English)
	}
}

func TestDates(t *testing.T) {
	at := time.Date(2026, 11, 29, 14, 5, 3, 0, time.FixedZone("-03", -3*3600))
	if got := i18n.For(i18n.Portuguese).DateTime(at); got != "29/11/2026 14:05:03 -03" {
		t.Errorf("Portuguese date %q", got)
	}
	if got := i18n.For(i18n.English).DateTime(at); got != "2026-11-29 14:05:03 -03" {
		t.Errorf("English date %q", got)
	}
}

func TestFit(t *testing.T) {
	cases := []struct {
		s    string
		w    int
		want string
	}{
		{"this ATM and the bank", 30, "this ATM and the bank"},
		{"this ATM and the bank", 21, "this ATM and the bank"},
		{"this ATM and the bank", 20, "this ATM and the …"},
		{"this ATM and the bank", 18, "this ATM and the …"},
		{"this ATM and the bank", 17, "this ATM and …"},
		{"Transferência realizada", 16, "Transferência …"},
		{"Transferência", 8, "Transfe…"},
	}
	for _, c := range cases {
		got := i18n.Fit(c.s, c.w)
		if got != c.want {
			t.Errorf("Fit(%q, %d) = %q, want %q", c.s, c.w, got, c.want)
		}
		if n := len([]rune(got)); n > c.w {
			t.Errorf("Fit(%q, %d) is %d wide", c.s, c.w, n)
		}
	}
}
