package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/polltest"

	"atm/bank"
	"atm/bank/lamport"
)

// checkClocks checks Lamport's rules over the server's event log, the
// server's printed output and the clients' observed clock changes:
//   - per process, timestamps strictly increase and each tick is used once;
//   - every message's receive timestamp is greater than its send timestamp;
//   - every clock change of the server is printed exactly once.
func checkClocks(t *testing.T, e *env, clients map[string][]client.ClockEvent) {
	t.Helper()
	var events []bank.Event
	if err := e.bank.Events(context.Background(), func(ev bank.Event) error { events = append(events, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	used := map[uint64]string{}
	use := func(ts uint64, what string) {
		if ts == 0 {
			return
		}
		if prev, ok := used[ts]; ok {
			t.Errorf("server timestamp %d used twice: %s and %s", ts, prev, what)
		}
		used[ts] = what
	}
	var last uint64
	type key struct {
		proc, req string
		ts        uint64
	}
	byRequest := map[key]bank.Event{}
	byReply := map[uint64]bank.Event{}
	for _, ev := range events {
		if ev.TS <= last {
			t.Errorf("server log: L=%d after L=%d", ev.TS, last)
		}
		last = ev.TS
		use(ev.RecvTS, fmt.Sprintf("recv of %s L=%d", ev.Kind, ev.TS))
		use(ev.TS, fmt.Sprintf("%s L=%d", ev.Kind, ev.TS))
		use(ev.ReplyTS, fmt.Sprintf("reply of %s L=%d", ev.Kind, ev.TS))
		if ev.RecvTS != 0 && ev.RecvTS >= ev.TS || ev.ReplyTS != 0 && ev.ReplyTS <= ev.TS {
			t.Errorf("server event %+v: recv < apply < reply broken", ev)
		}
		if ev.ReqID != "" {
			byRequest[key{ev.Client, ev.ReqID, ev.ClientTS}] = ev
		}
		if ev.ReplyTS != 0 {
			byReply[ev.ReplyTS] = ev
		}
		byReply[ev.TS] = ev // greetings and pushes carry the event's own timestamp
	}

	// The printed output: one line per clock change. The bank reports
	// committed events just after the commit, so wait for the last ones.
	var printed map[uint64]int
	missing := func() []string {
		printed = map[uint64]int{}
		sc := bufio.NewScanner(bytes.NewReader(e.log.Bytes()))
		for sc.Scan() {
			var rec struct {
				L *uint64 `json:"L"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("log line %q: %v", sc.Text(), err)
			}
			if rec.L != nil {
				printed[*rec.L]++
			}
		}
		var out []string
		for ts, what := range used {
			if printed[ts] == 0 && !strings.HasPrefix(what, "reply of open") {
				out = append(out, fmt.Sprintf("L=%d (%s)", ts, what))
			}
		}
		return out
	}
	polltest.Within(5*time.Second, func() bool { return len(missing()) == 0 })
	if m := missing(); len(m) > 0 {
		t.Errorf("clock changes never printed: %v", m)
	}
	for ts, n := range printed {
		if n != 1 {
			t.Errorf("L=%d printed %d times", ts, n)
		}
	}

	matched := 0
	for proc, evs := range clients {
		var prev uint64
		for _, ce := range evs {
			if ce.After <= prev {
				t.Errorf("%s: clock went from %d to %d", proc, prev, ce.After)
			}
			prev = ce.After
			switch ce.Dir {
			case "send":
				if ce.After != ce.Before+1 {
					t.Errorf("%s: send tick %d -> %d", proc, ce.Before, ce.After)
				}
				if sev, ok := byRequest[key{proc, ce.ReqID, ce.After}]; ok {
					matched++
					if sev.RecvTS <= ce.After {
						t.Errorf("%s %s: sent at %d, received by the server at %d", proc, ce.ReqID, ce.After, sev.RecvTS)
					}
				}
			case "recv":
				if ce.After != max(ce.Before, ce.Remote)+1 {
					t.Errorf("%s: observe %d at %d gave %d", proc, ce.Remote, ce.Before, ce.After)
				}
				if _, ok := byReply[ce.Remote]; ok {
					matched++
				}
				if ce.After <= ce.Remote {
					t.Errorf("%s: received %s stamped %d at %d", proc, ce.Type, ce.Remote, ce.After)
				}
			default:
				t.Errorf("%s: clock event direction %q", proc, ce.Dir)
			}
		}
	}
	if len(clients) > 0 && matched == 0 {
		t.Error("no client message matched a server event")
	}
}

func TestLamportClocksAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logs := map[string]*clockLog{}
	var clients []*client.Client
	for i, acct := range []string{"123", "456", "789", "123"} {
		proc := fmt.Sprintf("atm-c%d", i)
		l := &clockLog{}
		logs[proc] = l
		// Clients start far apart to exercise max() in both directions.
		clients = append(clients, e.login(acct, client.Options{ProcessID: proc, OnEvent: l.add,
			Clock: lamport.NewClock(uint64(i * 1000))}))
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := []string{"456", "789", "123", "456"}[i]
			for j := 0; j < 10; j++ {
				_, _ = c.Deposit(ctx(t), 10)
				_, _ = c.Transfer(ctx(t), to, 5)
				_, _ = c.Withdraw(ctx(t), 1_000_000) // fails: insufficient funds
				_, _ = c.Balance(ctx(t))
			}
			_, _ = c.Logout(ctx(t))
		}()
	}
	wg.Wait()
	e.shutdown()
	all := map[string][]client.ClockEvent{}
	for proc, l := range logs {
		all[proc] = l.all()
		if len(all[proc]) < 80 {
			t.Fatalf("%s saw only %d clock events", proc, len(all[proc]))
		}
	}
	checkClocks(t, e, all)
}
