package main

import (
	"os"
	"strings"
	"testing"
)

// TestMain runs the tests, and the atm they start, in English whatever the
// locale of the machine: they read what atm says. TestCommandsSpeakTheLanguage
// sets the locale of the atm it starts itself. At the end it removes the
// atm the tests built.
func TestMain(m *testing.M) {
	os.Setenv("LC_ALL", "C.UTF-8")
	code := m.Run()
	removeATMBuild()
	os.Exit(code)
}

// The commands speak the environment's language ($LC_ALL, then
// $LC_MESSAGES, then $LANG), --lang overrides it, and a language the
// catalog lacks is a usage error.
func TestCommandsSpeakTheLanguage(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	cases := []struct {
		name               string
		lcAll, lcMsg, lang string
		args               []string
		code               int
		wantOut, wantErr   string
	}{
		{"C", "", "", "C", []string{"help"}, 0, "usage: atm [command]", ""},
		{"unset", "", "", "", []string{"help"}, 0, "usage: atm [command]", ""},
		{"pt_BR", "", "", "pt_BR.UTF-8", []string{"help"}, 0, "uso: atm [comando]", ""},
		{"pt_BR summaries", "", "", "pt_BR.UTF-8", []string{"help"}, 0, "o caixa eletrônico, em tela cheia", ""},
		{"LC_MESSAGES first", "", "pt_BR.UTF-8", "C", []string{"help"}, 0, "uso: atm", ""},
		{"LC_ALL first", "C", "pt_BR.UTF-8", "pt_BR.UTF-8", []string{"help"}, 0, "usage: atm", ""},
		{"--lang over LANG", "", "", "pt_BR.UTF-8", []string{"-h", "--lang", "en"}, 0, "usage: atm [--server", ""},
		{"--lang=pt-BR", "", "", "C", []string{"--lang=pt-BR", "-h"}, 0, "idioma das telas: pt-BR ou en", ""},
		{"watch in Portuguese", "", "", "pt_BR.UTF-8", []string{"watch", "-h"}, 0, "Um diagrama espaço-tempo ao vivo", ""},
		{"watch --lang", "", "", "C", []string{"watch", "--lang", "pt-BR", "-h"}, 0, "uso: atm watch", ""},
		{"TLS flags in English", "", "", "C", []string{"-h"}, 0, "-ca FILE", ""},
		{"TLS flags in Portuguese", "", "", "pt_BR.UTF-8", []string{"-h"}, 0, "confiar nos certificados assinados", ""},
		{"watch TLS flags in Portuguese", "", "", "pt_BR.UTF-8", []string{"watch", "-h"}, 0, "-known-servers ARQUIVO", ""},
		{"watch usage names tls://", "", "", "pt_BR.UTF-8", []string{"watch", "-h"}, 0, "uso: atm watch [--server [tls://]HOST:PORTA[,...]] [--ca ARQUIVO]", ""},
		{"unknown command", "", "", "pt_BR.UTF-8", []string{"nosuch"}, 2, "", "atm: comando desconhecido \"nosuch\""},
		{"unexpected argument", "", "", "pt_BR.UTF-8", []string{"watch", "extra"}, 2, "", "atm watch: argumento inesperado \"extra\""},
		{"unsupported", "", "", "C", []string{"--lang", "fr"}, 2, "", "choose pt-BR or en"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := []string{"LC_ALL=" + c.lcAll, "LC_MESSAGES=" + c.lcMsg, "LANG=" + c.lang}
			code, out, errOut := runATMEnv(t, bin, env, c.args...)
			if code != c.code || !strings.Contains(out, c.wantOut) || !strings.Contains(errOut, c.wantErr) {
				t.Fatalf("atm %v: exit %d (want %d)\nstdout: %s\nstderr: %s", c.args, code, c.code, out, errOut)
			}
		})
	}
}
