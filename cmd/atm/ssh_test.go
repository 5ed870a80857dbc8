package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"atm/cmd/atm/internal/sshatm"
	"atm/netproto/polltest"
)

// An --ssh address other machines reach, without keys, is refused before
// anything is touched, with the reason and the ways out; so are SSH flags
// without --ssh and a keys file that is not one.
func TestServeSSHRefusesAnOpenAddressWithoutKeys(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "bank", "bank.db")
	notKeys := filepath.Join(dir, "keys")
	if err := os.WriteFile(notKeys, []byte("my key is the blue one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--ssh", "0.0.0.0:2222"}, []string{"--ssh 0.0.0.0:2222 is reachable from other machines", "anyone who reaches it would get an ATM",
			"--ssh-authorized-keys FILE", "--ssh-no-auth", "127.0.0.1:2222"}},
		{[]string{"--ssh", ":2222"}, []string{"--ssh :2222 is reachable from other machines"}},
		{[]string{"--ssh-max-sessions", "3"}, []string{"--ssh-max-sessions is for the ATM over SSH: add --ssh HOST:PORT"}},
		{[]string{"--ssh", "127.0.0.1:0", "--ssh-authorized-keys", notKeys}, []string{notKeys + " line 1 is not a public key"}},
		{[]string{"--ssh", "127.0.0.1:0", "--ssh-authorized-keys", notKeys, "--ssh-no-auth"}, []string{"choose keys, or no authentication"}},
	} {
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, c.args...)
		code, _, errOut := runATM(t, bin, args...)
		if code != 2 {
			t.Errorf("atm %s: exit %d, want 2\n%s", strings.Join(args, " "), code, errOut)
		}
		for _, w := range c.wants {
			if !strings.Contains(errOut, w) {
				t.Errorf("atm %s says %q, lacking %q", strings.Join(args, " "), errOut, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Dir(db)); !os.IsNotExist(err) {
		t.Errorf("a refused start touched the database directory: %v", err)
	}
}

// serveChild is atm serve run with a readable log.
type serveChild struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

// startServeSSH runs atm serve with args, and the variables of env
// ("KEY=value") added to the test's environment, and waits for its SSH
// start line.
func startServeSSH(t *testing.T, bin, logPath string, env []string, args ...string) (*serveChild, []string) {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &serveChild{cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		c.done <- nil
	})
	m := c.waitLog(t, sshStartRE)
	return c, m
}

var sshStartRE = regexp.MustCompile(`serving the ATM over SSH on (127\.0\.0\.1:\d+) \(ssh -p \d+ localhost\), host key (SHA256:\S+) \((made now, )?kept in (\S+)\)`)

// waitLog waits until the log matches re, and returns the match.
func (c *serveChild) waitLog(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	var (
		b []byte
		m []string
	)
	matched := polltest.Within(20*time.Second, func() bool {
		b, _ = os.ReadFile(c.log)
		if m = re.FindStringSubmatch(string(b)); m != nil {
			return true
		}
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("atm serve exited (%v) before its log matched %s:\n%s", err, re, b)
		default:
		}
		return false
	})
	if !matched {
		t.Fatalf("the log of atm serve never matched %s:\n%s", re, b)
	}
	return m
}

// sshShell opens a session on client with the environment env and a
// 100×30 xterm-256color pty, and starts the shell (the ATM): what
// `ssh -p PORT host` does. It returns the session, its input, and what it
// writes.
func sshShell(t *testing.T, client *gossh.Client, env map[string]string) (*gossh.Session, io.Writer, *syncBuffer) {
	t.Helper()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		if err := sess.Setenv(k, v); err != nil {
			t.Fatal(err)
		}
	}
	out := &syncBuffer{}
	sess.Stdout, sess.Stderr = out, out
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm-256color", 30, 100, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	return sess, stdin, out
}

// waitOutput waits until what a session wrote, without its escape
// sequences, holds want.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	if !polltest.Within(20*time.Second, func() bool { return strings.Contains(ansi.Strip(out.String()), want) }) {
		t.Fatalf("the terminal never showed %q: %q", want, ansi.Strip(out.String()))
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// atm serve --ssh with an authorized key: the host key is made once (mode
// 0600) and shown in the start line; a student with the key logs in; on
// SIGTERM the ATM logs out, the student's terminal says goodbye, the SSH
// session ends with status 0 and the server stops cleanly. The next start
// keeps the host key.
func TestServeSSHGoodbyeOnSIGTERM(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM is a Unix signal")
	}
	bin := buildATM(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "bank.db")
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	student, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(keys, gossh.MarshalAuthorizedKey(student.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--addr", "127.0.0.1:0", "--db", db, "--ssh", "127.0.0.1:0", "--ssh-authorized-keys", keys}
	srv, m := startServeSSH(t, bin, filepath.Join(dir, "serve-1.log"), nil, args...)
	sshAddr, fingerprint, made, keyPath := m[1], m[2], m[3], m[4]
	if made == "" || keyPath != filepath.Join(dir, sshatm.HostKeyFile) {
		t.Fatalf("first start: host key %q made %q, want one made beside the database", keyPath, made)
	}
	if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host key file: %v, mode %v", err, st)
	}

	client, err := gossh.Dial("tcp", sshAddr, &gossh.ClientConfig{
		User: "ana",
		Auth: []gossh.AuthMethod{gossh.PublicKeys(student)},
		HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error {
			if got := gossh.FingerprintSHA256(key); got != fingerprint {
				return fmt.Errorf("host key %s, the start line said %s", got, fingerprint)
			}
			return nil
		},
		Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, stdin, out := sshShell(t, client, nil)
	srv.waitLog(t, regexp.MustCompile(`ssh: atm-ssh-1 for ana@127\.0\.0\.1:\d+ \(xterm-256color, 100×30\)`))
	waitOutput(t, out, "Please log in")
	if _, err := stdin.Write([]byte("123\r1234\r")); err != nil {
		t.Fatal(err)
	}
	srv.waitLog(t, regexp.MustCompile(`apply login 123 ok`))
	// The ATM knows it is logged in (and so logs out when it ends) once
	// its menu is on the screen, not when the bank has applied the login.
	waitOutput(t, out, "Log out") // a menu item, drawn in one piece

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-srv.done:
		srv.done <- err
		if err != nil {
			b, _ := os.ReadFile(srv.log)
			t.Fatalf("atm serve after SIGTERM: %v\n%s", err, b)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("atm serve did not stop after SIGTERM")
	}
	if err := sess.Wait(); err != nil {
		t.Errorf("the SSH session ended with %v, want exit status 0", err)
	}
	if got := ansi.Strip(out.String()); !strings.Contains(got, "Banco Lamport is closing: this ATM has logged out. Goodbye!") {
		t.Errorf("the terminal got no goodbye; its last output: %q", got[max(0, len(got)-300):])
	}
	b, _ := os.ReadFile(srv.log)
	log := string(b)
	logout, stop := strings.Index(log, "logout 123 by atm-ssh-1"), strings.Index(log, "server stop")
	if logout < 0 || stop < logout || !strings.Contains(log, "ssh: atm-ssh-1 for ana@") || !strings.Contains(log, "ended: the bank is closing") ||
		!strings.HasSuffix(strings.TrimSpace(log), "stopped cleanly") {
		t.Errorf("the log of the shutdown: the ATM over SSH must log out before the server stops, then stop cleanly:\n%s", log)
	}

	srv, m = startServeSSH(t, bin, filepath.Join(dir, "serve-2.log"), nil, args...)
	if m[2] != fingerprint || m[3] != "" {
		t.Errorf("second start: host key %s (%q), want the kept %s", m[2], m[3], fingerprint)
	}
	// The restarted server numbers its ATMs on: atm-ssh-1 was the first
	// run's, and a process id is never given to two ATMs.
	client2, err := gossh.Dial("tcp", m[1], &gossh.ClientConfig{User: "bruno", Auth: []gossh.AuthMethod{gossh.PublicKeys(student)},
		HostKeyCallback: gossh.FixedHostKey(mustParseKey(t, keyPath)), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client2.Close()
	sshShell(t, client2, nil)
	srv.waitLog(t, regexp.MustCompile(`ssh: atm-ssh-2 for bruno@127\.0\.0\.1:\d+`))
}

// mustParseKey reads the public half of the host key kept at path.
func mustParseKey(t *testing.T, path string) gossh.PublicKey {
	t.Helper()
	signer, _, err := sshatm.HostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return signer.PublicKey()
}
