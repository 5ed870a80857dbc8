package server_test

import (
	"fmt"
	"sync"
	"testing"

	"atm/bank/etcdstore"
	"atm/bank/etcdstore/etcdtest"
	"atm/netproto/client"
)

// An operator that read only PROTOCOL.md walks the log of one server of a
// bank three servers keep, a page of one event at a time, sending back each
// reply's "next" as "after", while ATMs deposit through all three servers;
// once they are done it reads until an empty page. It has read every event
// of the bank exactly once: the cursor is in commit order, not a timestamp.
func TestTheLogWalkOnSeveralServersMissesNothing(t *testing.T) {
	t.Parallel()
	bc := newBankCluster(t, etcdtest.Start(t, 1), 3, etcdstore.Options{})
	op, _ := rawAt(t, bc.servers[0].addr)
	seen := map[string]int{}
	var after any
	read := func() int {
		fields := map[string]any{"type": "log", "id": "walk", "token": opToken, "limit": 1}
		if after != nil {
			fields["after"] = after
		}
		m := op.req(fields)
		if m["type"] != "reply" {
			t.Fatalf("log after %v: %v", after, m)
		}
		entries, _ := m["entries"].([]any)
		for _, e := range entries {
			e := e.(map[string]any)
			seen[fmt.Sprintf("%d/%v", uint64(e["ts"].(float64)), e["proc"])]++
		}
		if next, ok := m["next"]; ok {
			after = next
		}
		return len(entries)
	}
	var wg sync.WaitGroup
	for i, acct := range []string{"123", "456", "789"} {
		c := bc.login(bc.servers[i].addr, acct, client.Options{ProcessID: "atm-" + acct})
		wg.Go(func() {
			for range 60 {
				if _, err := c.Deposit(ctx(t), 1); err != nil {
					t.Errorf("deposit on %s: %v", acct, err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			read()
		}
	}
	for read() > 0 {
	}
	all := bc.events()
	for _, e := range all {
		id := fmt.Sprintf("%d/%s", e.TS, e.Proc)
		if seen[id] != 1 {
			t.Errorf("event L=%d of %s read %d times", e.TS, e.Proc, seen[id])
		}
	}
	if len(seen) != len(all) {
		t.Errorf("read %d events, the bank holds %d", len(seen), len(all))
	}
	if _, ok := after.(string); !ok {
		t.Errorf("the cursor of a bank several servers keep is %v (%T), not a string", after, after)
	}
}
