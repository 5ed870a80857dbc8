package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank/etcdstore/etcdtest"
)

var openingRE = regexp.MustCompile(`connections to (127\.0\.0\.1:[0-9]+) are told the bank is starting`)

// serveRecords is the JSON output of a running atm serve, line by line.
type serveRecords struct {
	mu    sync.Mutex
	lines []string
	seen  chan struct{} // a token after each new line
}

func (r *serveRecords) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// waitFor returns the first line whose message matches re, waiting for it
// until exited is closed or timeout passes.
func (r *serveRecords) waitFor(t *testing.T, re *regexp.Regexp, exited <-chan struct{}, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, line := range r.all() {
			var rec struct{ Msg string }
			if json.Unmarshal([]byte(line), &rec) == nil && re.MatchString(rec.Msg) {
				return rec.Msg
			}
		}
		select {
		case <-r.seen:
		case <-exited:
			t.Fatalf("atm serve exited before saying %v:\n%s", re, strings.Join(r.all(), "\n"))
		case <-deadline:
			t.Fatalf("atm serve did not say %v within %s:\n%s", re, timeout, strings.Join(r.all(), "\n"))
		}
	}
}

// TestServeAnswersStartingUntilItsBankIsOpen runs atm serve --etcd while
// its etcd member is down: the address is taken at once, and every
// connection is told, with no timestamp, that the bank is starting; the
// client library says wire.ErrStarting and atm log --server says so in
// words and exits 1. The start line comes only once the member is back and
// the bank open, and from then on the same port greets and serves.
func TestServeAnswersStartingUntilItsBankIsOpen(t *testing.T) {
	t.Parallel()
	bin := buildATM(t)
	cluster := etcdtest.Start(t, 1)
	endpoint := cluster.Endpoints()[0]
	cluster.Stop(0)

	cmd := exec.Command(bin, "serve", "--etcd", endpoint, "--proc", "bank-1", "--addr", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = append(cmd.Environ(), "ATM_OPERATOR_TOKEN="+crashToken)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	recs := &serveRecords{seen: make(chan struct{}, 1)}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			recs.mu.Lock()
			recs.lines = append(recs.lines, sc.Text())
			recs.mu.Unlock()
			select {
			case recs.seen <- struct{}{}:
			default:
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	opening := recs.waitFor(t, openingRE, exited, 30*time.Second)
	addr := openingRE.FindStringSubmatch(opening)[1]
	if !strings.Contains(opening, "etcd "+endpoint) || !strings.Contains(opening, "bank-1") {
		t.Errorf("opening line %q", opening)
	}

	// A connection made meanwhile: the starting line, then the server
	// closes it.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != server.StartingLine {
		t.Fatalf("before the bank is open: %q (%v), want %q", got, err, server.StartingLine)
	}
	if bytes.Contains(got, []byte(`"ts"`)) || bytes.Contains(got, []byte(`"proc"`)) {
		t.Fatalf("the starting line carries a timestamp or a process id: %s", got)
	}
	if _, err := client.Dial(context.Background(), addr, client.Options{ProcessID: "atm-early"}); !errors.Is(err, wire.ErrStarting) {
		t.Fatalf("client.Dial before the bank is open: %v, want an error matching wire.ErrStarting", err)
	}
	logCmd := exec.Command(bin, "log", "--server", addr, "--operator-token", crashToken)
	var stderr bytes.Buffer
	logCmd.Stderr = &stderr
	err = logCmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 ||
		!strings.Contains(stderr.String(), "atm log: the server at "+addr+" is still starting") {
		t.Fatalf("atm log --server before the bank is open: %v, stderr %q; want exit 1 saying it is still starting", err, stderr.String())
	}

	cluster.Restart(0)
	start := recs.waitFor(t, regexp.MustCompile(`^serving etcd `), exited, 60*time.Second)
	if !strings.Contains(start, "on "+addr+" (protocol v1), process id bank-1") {
		t.Errorf("start line %q", start)
	}
	// Before the start line, the raw connection, the client's and atm
	// log's were told the bank is starting, each in a line that is no
	// clock change (the new bank's default accounts, made while it
	// opened, are).
	told := 0
	for _, line := range recs.all() {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			continue
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "serving ") {
			break
		}
		if rec["code"] == wire.CodeStarting {
			told++
			if _, ok := rec["L"]; ok {
				t.Errorf("telling a connection the bank is starting is printed as a clock change: %s", line)
			}
		}
	}
	if told != 3 {
		t.Errorf("%d connections told the bank is starting before the start line, want 3:\n%s", told, strings.Join(recs.all(), "\n"))
	}

	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	c.Close()
	var hello map[string]any
	if err != nil || json.Unmarshal(line, &hello) != nil || hello["type"] != "hello" || hello["proc"] != "bank-1" {
		t.Fatalf("greeting once the start line is out: %q (%v)", line, err)
	}
	if ts, _ := hello["ts"].(float64); ts <= 0 {
		t.Fatalf("greeting without a timestamp: %s", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, addr, client.Options{ProcessID: "atm-late"})
	if err != nil {
		t.Fatalf("client.Dial once the bank is open: %v", err)
	}
	defer cl.Close()
	if _, err := cl.Login(ctx, "123", "1234"); err != nil {
		t.Fatalf("login once the bank is open: %v", err)
	}
	t.Logf("FIGURES: %d connections told the bank is starting while etcd was down; greeted at L=%v once it was back", told, hello["ts"])
}
