package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"atm/netproto/tlscert"
)

// TestServePlaintextRefusedOffLoopback: atm serve on an address other
// machines can reach, without TLS, refuses to start, says why and what to
// do, and touches nothing beside the database.
func TestServePlaintextRefusedOffLoopback(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "bank.db")
	code, out, errOut := runATM(t, bin, "serve", "--addr", "0.0.0.0:0", "--db", db)
	if code != 2 || out != "" {
		t.Fatalf("plain serve on 0.0.0.0: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, want := range []string{"PINs and the operator token would cross the network in clear", "--tls", "--insecure-plaintext", "127.0.0.1"} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("the refusal does not say %q:\n%s", want, errOut)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused start left files: %v", entries)
	}
	for _, args := range [][]string{
		{"--tls-cert", "c.pem"},                                // without its key
		{"--tls-dir", dir},                                     // without --tls
		{"--tls", "--insecure-plaintext"},                      // both
		{"--tls", "--etcd", "127.0.0.1:1", "--proc", "bank-1"}, // nowhere to keep a certificate
	} {
		if code, _, errOut := runATM(t, bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...); code != 2 {
			t.Fatalf("atm serve %v: exit %d, want 2\n%s", args, code, errOut)
		}
	}
}

var fingerprintRE = regexp.MustCompile(`certificate (SHA256:[A-Za-z0-9+/]{43})`)

// TestServeTLSKeepsItsCertificate: atm serve --tls makes a certificate
// beside the database (key mode 0600), prints its fingerprint in the start
// line, and reuses it on the next start; atm log --server tls://… trusts
// it on first use and remembers it. After the certificate is swapped, the
// same client refuses the server, naming both fingerprints.
func TestServeTLSKeepsItsCertificate(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "bank.db")
	known := filepath.Join(t.TempDir(), "known_servers")
	knownEnv := []string{"ATM_KNOWN_SERVERS=" + known} // for each atm log

	srv := startServe(t, bin, db, "127.0.0.1:0", 1, "--tls")
	start := startLine(t, srv)
	fp := fingerprintRE.FindStringSubmatch(start)
	if fp == nil || !strings.Contains(start, "tls://"+srv.addr) || !strings.Contains(start, "made now") {
		t.Fatalf("start line without a new certificate's fingerprint and tls:// address:\n%s", start)
	}
	certFile, keyFile := tlscert.Paths(dir)
	if _, onDisk, err := tlscert.Load(certFile, keyFile); err != nil || onDisk != fp[1] {
		t.Fatalf("the kept certificate %v has fingerprint %s; the start line says %s", err, onDisk, fp[1])
	}
	if st, err := os.Stat(keyFile); err != nil || runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode())
	}
	addr := "tls://" + srv.addr
	code, out, errOut := runATMEnv(t, bin, knownEnv, "log", "--server", addr, "--operator-token", crashToken)
	if code != 0 || !strings.Contains(out, "server_start") {
		t.Fatalf("atm log --server %s: exit %d\n%s%s", addr, code, out, errOut)
	}
	if !strings.Contains(errOut, "first connection to "+addr+": its TLS certificate "+fp[1]+" is now remembered in "+known) {
		t.Fatalf("atm log did not say it remembered the certificate:\n%s", errOut)
	}
	if b, err := os.ReadFile(known); err != nil || !strings.Contains(string(b), srv.addr+" "+fp[1]+"\n") {
		t.Fatalf("known_servers after the first use: %v\n%s", err, b)
	}

	stopServe(t, srv)
	srv = startServe(t, bin, db, srv.addr, 2, "--tls")
	if again := fingerprintRE.FindStringSubmatch(startLine(t, srv)); again == nil || again[1] != fp[1] {
		t.Fatalf("restart: certificate %v, want the kept %s", again, fp[1])
	}
	if code, _, errOut := runATMEnv(t, bin, knownEnv, "log", "--server", addr, "--operator-token", crashToken); code != 0 || strings.Contains(errOut, "first connection") {
		t.Fatalf("atm log after the restart: exit %d\n%s", code, errOut)
	}

	stopServe(t, srv)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	srv = startServe(t, bin, db, srv.addr, 3, "--tls")
	swapped := fingerprintRE.FindStringSubmatch(startLine(t, srv))
	if swapped == nil || swapped[1] == fp[1] {
		t.Fatalf("a new certificate was not made: %v", swapped)
	}
	code, _, errOut = runATMEnv(t, bin, knownEnv, "log", "--server", addr, "--operator-token", crashToken)
	if code != 1 {
		t.Fatalf("atm log against a swapped certificate: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"WARNING", fp[1], swapped[1], known} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("the refusal does not say %q:\n%s", want, errOut)
		}
	}
}

// startLine is the server's start line ("serving …").
func startLine(t *testing.T, c *child) string {
	t.Helper()
	b, err := os.ReadFile(c.out)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"serving `) {
			return line
		}
	}
	t.Fatalf("no start line:\n%s", b)
	return ""
}

// stopServe stops a server started by startServe and waits for it.
func stopServe(t *testing.T, c *child) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	<-c.exited
}

// TestWatchRefusesAChangedCertificateInItsLanguage: atm watch at a TLS
// bank whose certificate is not the one remembered does not connect, and
// says so in the language it speaks, naming both fingerprints.
func TestWatchRefusesAChangedCertificateInItsLanguage(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	db := filepath.Join(t.TempDir(), "bank.db")
	srv := startServe(t, bin, db, "127.0.0.1:0", 1, "--tls")
	fp := fingerprintRE.FindStringSubmatch(startLine(t, srv))
	if fp == nil {
		t.Fatal("no fingerprint in the start line")
	}
	const old = "SHA256:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
	known := filepath.Join(t.TempDir(), "known_servers")
	if err := os.WriteFile(known, []byte(srv.addr+" "+old+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for lang, want := range map[string]string{
		"en":    "atm watch: WARNING: the bank's certificate has changed. The ATM did not connect. Someone may be intercepting the connection",
		"pt-BR": "atm watch: ATENÇÃO: o certificado do banco mudou. O caixa não se conectou. Alguém pode estar interceptando a conexão",
	} {
		code, out, errOut := runATM(t, bin, "watch", "--server", "tls://"+srv.addr, "--known-servers", known,
			"--operator-token", crashToken, "--lang", lang)
		if code != 1 || out != "" || !strings.Contains(errOut, want) || !strings.Contains(errOut, old) || !strings.Contains(errOut, fp[1]) {
			t.Fatalf("atm watch --lang %s at a changed certificate: exit %d\nstdout: %s\nstderr: %s", lang, code, out, errOut)
		}
	}
}

// TestWatchSaysWhyItCannotConnect: atm watch at an address nobody listens
// on says so in a sentence of its language, never with the Go error.
func TestWatchSaysWhyItCannotConnect(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	for lang, want := range map[string]string{
		"en":    "atm watch: The bank is not answering. Nothing is listening at " + addr + ".",
		"pt-BR": "atm watch: O banco não está respondendo. Nenhum programa atende em " + addr + ".",
	} {
		code, out, errOut := runATM(t, bin, "watch", "--server", addr, "--operator-token", crashToken, "--lang", lang)
		if code != 1 || out != "" || !strings.Contains(errOut, want) || strings.Contains(errOut, "dial tcp") {
			t.Fatalf("atm watch --lang %s at a closed port: exit %d\nstdout: %s\nstderr: %s", lang, code, out, errOut)
		}
	}
}
