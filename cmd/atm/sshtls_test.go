package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"
)

// atm serve --tls --ssh: the ATMs over SSH reach their own bank over TLS,
// trusting the certificate the server serves (pinned, not remembered in
// a known-servers file), and speak the language the SSH client sends.
func TestServeSSHOnATLSBank(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	dir := t.TempDir()
	known := filepath.Join(dir, "known_servers")
	srv, m := startServeSSH(t, bin, filepath.Join(dir, "serve.log"), []string{"ATM_KNOWN_SERVERS=" + known},
		"--tls", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "bank.db"), "--ssh", "127.0.0.1:0")
	srv.waitLog(t, regexp.MustCompile(`TLS \(ATMs connect with tls://127\.0\.0\.1:\d+\), certificate SHA256:`))

	client, err := gossh.Dial("tcp", m[1], &gossh.ClientConfig{User: "ana", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, stdin, out := sshShell(t, client, map[string]string{"LANG": "pt_BR.UTF-8"})
	waitOutput(t, out, "Faça seu login")
	if _, err := stdin.Write([]byte("123\r1234\r")); err != nil {
		t.Fatal(err)
	}
	srv.waitLog(t, regexp.MustCompile(`apply login 123 ok`))
	waitOutput(t, out, "O que você deseja fazer?")
	if _, err := os.Stat(known); !os.IsNotExist(err) {
		t.Errorf("the ATM over SSH wrote a known-servers file (%v): it should pin the certificate its server serves", err)
	}
	if s := ansi.Strip(out.String()); strings.Contains(s, "Primeira conexão") {
		t.Errorf("the ATM over SSH shows a first-use notice for its own server's certificate")
	}
}
