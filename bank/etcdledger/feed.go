package etcdledger

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"atm/bank"
	"atm/bank/outcome"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Changes returns a feed of the money changes other processes commit to
// the bank: every successful deposit, withdrawal and transfer whose event
// carries another process id than the ledger's, committed after Open, in
// commit order (etcd's revision order). It is an etcd watch on the event
// log from the revision Open read; a server uses it to push to its ATMs
// the changes another server made (see netproto/server.ChangeFeed).
//
// The channel is closed when ctx ends or the ledger closes. While etcd is
// unreachable the feed waits and then resumes where it stopped, so no
// event is skipped, unless etcd compacted its history past that point:
// then the feed resumes at the oldest revision etcd still has, and the
// events before it are not delivered (the pushes they would have caused
// are lost; balances are never affected).
func (l *Ledger) Changes(ctx context.Context) <-chan bank.Event {
	out := make(chan bank.Event, 64)
	go func() {
		defer close(out)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-l.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		prefix := l.k("events/")
		next := l.openRev + 1
		const minWait, maxWait = 50 * time.Millisecond, 2 * time.Second
		wait := minWait
		for ctx.Err() == nil {
			wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			wch := l.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(next))
			for resp := range wch {
				if resp.CompactRevision != 0 {
					next = max(next, resp.CompactRevision)
					break
				}
				if resp.Err() != nil {
					break
				}
				wait = minWait
				for _, ev := range resp.Events {
					next = ev.Kv.ModRevision + 1
					e, ok := l.foreignChange(ev)
					if !ok {
						continue
					}
					select {
					case out <- e:
					case <-ctx.Done():
						wcancel()
						return
					}
				}
			}
			wcancel()
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
			wait = min(2*wait, maxWait)
		}
	}()
	return out
}

// foreignChange decodes a watched event of the log and reports whether it
// is a successful money change of another process.
func (l *Ledger) foreignChange(ev *clientv3.Event) (bank.Event, bool) {
	var e bank.Event
	if !ev.IsCreate() { // the log only grows: an event is a new key
		return e, false
	}
	if strings.HasSuffix(string(ev.Kv.Key), "/"+l.opts.ProcessID) { // its own: not decoded
		return e, false
	}
	if err := json.Unmarshal(ev.Kv.Value, &e); err != nil {
		return e, false
	}
	if e.Proc == l.opts.ProcessID || e.Outcome != outcome.OutcomeOK {
		return e, false
	}
	switch e.Kind {
	case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer:
		return e, true
	}
	return e, false
}
