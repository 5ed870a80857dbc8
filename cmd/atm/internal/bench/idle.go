package bench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// idleConns opens cfg.idleConns connections that only read the greeting and
// stay idle, and reports what each costs the process.
func idleConns(cfg benchConfig, addr string, res *benchResult, prog progress) error {
	n := cfg.idleConns
	settle := func() (heap uint64, rss int64) {
		runtime.GC()
		runtime.GC()
		time.Sleep(200 * time.Millisecond)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, _ = rssKiB(os.Getpid())
		return ms.HeapInuse + ms.StackInuse, rss * 1024
	}
	heap0, rss0 := settle()
	// The idle clients live in a child process: the server alone is then
	// in this one, and each process stays within the open-file limit.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "bench", "--hold-conns", strconv.Itoa(n), "--addr", addr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("the process holding the idle connections failed: %q %v", line, err)
	}
	heap1, rss1 := settle()
	prog.done()
	res.IdleConns = n
	res.IdleBytesPerCn = float64(int64(heap1)-int64(heap0)) / float64(n)
	res.IdleRSSPerCn = float64(rss1-rss0) / float64(n)
	res.RSSMaxMiB = float64(rss1) / (1 << 20)
	res.RSSNote = "the server's process; the idle clients are in another"
	if !rssMeasured {
		res.RSSNote = rssMissing
	}
	res.Conserved = true
	return nil
}

// holdConns opens n connections to addr, reads each greeting, says "ready"
// on stdout and keeps them open until stdin closes.
func holdConns(addr string, n int) int {
	raiseFileLimit()
	conns := make([]net.Conn, 0, n)
	buf := make([]byte, 512)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "atm bench: connection %d: %v\n", i+1, err)
			return 1
		}
		conns = append(conns, c)
		// Wait for the greeting, so the server has set the connection up.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(buf); err != nil {
			fmt.Fprintf(os.Stderr, "atm bench: connection %d: greeting: %v\n", i+1, err)
			return 1
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return 0
}
