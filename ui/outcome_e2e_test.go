package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"atm/netproto/client"
)

// heldReplies is a TCP proxy in front of the server that holds back the
// replies to money requests until release, as a congested network would.
type heldReplies struct {
	l    net.Listener
	open chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	mu   sync.Mutex
	cs   []net.Conn
}

func newHeldReplies(t *testing.T, target string) *heldReplies {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &heldReplies{l: l, open: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			h.mu.Lock()
			h.cs = append(h.cs, c, s)
			h.mu.Unlock()
			h.wg.Add(2)
			go func() {
				defer h.wg.Done()
				defer s.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, err := s.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer h.wg.Done()
				defer c.Close()
				br := bufio.NewReader(s)
				for {
					line, err := br.ReadBytes('\n')
					if err != nil {
						return
					}
					var m struct{ Type, Op string }
					_ = json.Unmarshal(line, &m)
					if m.Type == "reply" && (m.Op == "deposit" || m.Op == "withdraw" || m.Op == "transfer") {
						<-h.open
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		h.release()
		l.Close()
		h.mu.Lock()
		for _, c := range h.cs {
			c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

func (h *heldReplies) release() { h.once.Do(func() { close(h.open) }) }

// A withdrawal whose answer is held past the ATM's deadline shows as an
// unknown outcome, not a refusal; no other money operation can start; when
// the answer gets through the ATM shows it, and the money moved once.
func TestEndToEndOutcomeUnknown(t *testing.T) {
	t.Parallel()
	addr, stop := startServer(t)
	proxy := newHeldReplies(t, addr)
	a := startATMConfig(t, Config{Addr: proxy.l.Addr().String(), ProcessID: "atm-slow1", RequestTimeout: time.Second})
	a.waitFor("Please log in")
	a.typeKeys("789\r1234\r")
	a.waitFor("Carla Dias", "What would you like to do?", "R$ 1.000,00")

	a.typeKeys("3")
	a.waitFor("Amount to withdraw")
	a.typeKeys("25\r")
	a.waitFor("Confirm the withdrawal", "Press y to confirm")
	a.typeKeys("y")
	s := a.waitFor("Outcome unknown — checking with the bank", "withdrawal of R$ 25,00", "R$ 1.000,00")
	mustNotContain(t, s, "refused", "R$ 975,00")

	a.typeKeys("\r")
	a.waitFor("What would you like to do?", "Outcome unknown: asking the bank")
	a.typeKeys("3")
	s = a.waitFor("The outcome of your withdrawal")
	mustNotContain(t, s, "Amount to withdraw")

	proxy.release()
	a.waitFor("✓ Withdrawal done", "New balance", "R$ 975,00")

	c, err := client.Dial(context.Background(), addr, client.Options{ProcessID: "atm-check"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Login(ctx, "789", "1234"); err != nil {
		t.Fatal(err)
	}
	r, err := c.Balance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Balance != 97500 {
		t.Fatalf("balance %v after one withdrawal of R$ 25,00 from R$ 1.000,00", r.Balance)
	}
	a.quit()
	stop()
}
