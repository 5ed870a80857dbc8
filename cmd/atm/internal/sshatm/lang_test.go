package sshatm_test

import (
	"errors"
	"strings"
	"testing"

	"atm/cmd/atm/internal/sshatm"

	gossh "golang.org/x/crypto/ssh"
)

// Each session speaks the language of the SSH client's environment (the
// variables it sends, as OpenSSH's SendEnv does): a client with
// LANG=pt_BR.UTF-8 gets an ATM in Portuguese that logs in and deposits,
// one whose LC_ALL=C overrides LANG gets English, and the lines written on
// the terminal outside the ATM (a refusal, the goodbye) follow the same
// language.
func TestSessionSpeaksTheClientsLanguage(t *testing.T) {
	t.Parallel()
	tb := startBank(t, 0)
	f := startSSH(t, tb, sshatm.Config{MaxSessions: 2})
	pt := map[string]string{"LANG": "pt_BR.UTF-8"}

	ana := f.dial(t, "ana", dialOpts{env: pt})
	ana.waitFor("Bem-vindo! Faça seu login.", "atm-ssh-1")
	ana.typeKeys("123\r1234\r")
	ana.waitFor("O que você deseja fazer?", "Ana Souza")
	ana.typeKeys("2")
	ana.waitFor("Valor a depositar")
	ana.typeKeys("10\r")
	ana.waitFor("Tecle s para confirmar")
	ana.typeKeys("s")
	ana.waitFor("Depósito realizado", "R$ 1.010,00")
	if n := tb.deposits(t, "atm-ssh-1"); n != 1 {
		t.Fatalf("the bank applied %d deposits of atm-ssh-1, want 1", n)
	}

	bruno := f.dial(t, "bruno", dialOpts{env: map[string]string{"LANG": "pt_BR.UTF-8", "LC_ALL": "C"}})
	bruno.waitFor("Welcome! Please log in.", "atm-ssh-2")

	full := f.dial(t, "carla", dialOpts{env: pt})
	var exit *gossh.ExitError
	if err := full.wait(); !errors.As(err, &exit) || exit.ExitStatus() != 1 {
		t.Fatalf("the third session ended with %v, want exit status 1", err)
	}
	if got := full.stderr.String(); !strings.Contains(got, "Desculpe, todos os 2 caixas deste banco estão em uso; tente de novo mais tarde.") {
		t.Fatalf("the third session was told %q", got)
	}
	pipe := f.dial(t, "pipe", dialOpts{env: pt, noPty: true})
	if err := pipe.wait(); !errors.As(err, &exit) || exit.ExitStatus() != 1 {
		t.Fatalf("a session without a pty ended with %v, want exit status 1", err)
	}
	if got := pipe.stderr.String(); !strings.Contains(got, "O caixa precisa de um terminal: conecte-se com ssh -t.") {
		t.Fatalf("a session without a pty was told %q", got)
	}

	f.shutdown(t)
	for _, tm := range []*terminal{ana, bruno} {
		if err := tm.wait(); err != nil {
			t.Errorf("%s: the session ended with %v, want exit status 0", tm.name, err)
		}
	}
	ana.waitFor("O Banco Lamport está fechando: este caixa encerrou a sessão. Até logo!")
	bruno.waitFor("Banco Lamport is closing: this ATM has logged out. Goodbye!")
}
