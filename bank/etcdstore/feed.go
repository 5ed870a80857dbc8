package etcdstore

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
func (l *store) Changes(ctx context.Context) <-chan bank.Event {
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
		prefix := l.k("log/")
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
					for _, e := range l.foreignChanges(ev) {
						select {
						case out <- e:
						case <-ctx.Done():
							wcancel()
							return
						}
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

// foreignChanges decodes a watched segment of the log and returns its
// successful money changes, if another process committed it, dropping
// from the cache the keys its events changed.
func (l *store) foreignChanges(ev *clientv3.Event) []bank.Event {
	if !ev.IsCreate() { // the log only grows: a segment is a new key
		return nil
	}
	if strings.HasPrefix(string(ev.Kv.Key), l.k("log/"+l.opts.ProcessID+"/")) { // its own: not decoded
		return nil
	}
	framed, err := decodeSegment(ev.Kv.Value)
	if err != nil {
		return nil
	}
	var seg []bank.Event
	if err := json.Unmarshal(framed.events, &seg); err != nil {
		return nil
	}
	var out []bank.Event
	for _, e := range seg {
		l.forgetTouched(e)
		if e.Proc == l.opts.ProcessID || e.Outcome != outcome.OutcomeOK {
			continue
		}
		switch e.Kind {
		case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer:
			out = append(out, e)
		}
	}
	return out
}

// forgetTouched drops from the cache the keys another server's event
// changed: its accounts' records and, for a deposit or a withdrawal, the
// totals.
func (l *store) forgetTouched(e bank.Event) {
	keys := []string{l.accountKey(e.Account)}
	if e.To != "" {
		keys = append(keys, l.accountKey(e.To))
	}
	if e.Kind == bank.KindDeposit || e.Kind == bank.KindWithdraw {
		keys = append(keys, l.totalsKey())
	}
	l.com.cache.drop(keys...)
}

// Appended returns a channel closed once segments are committed after the
// call, by this server or another (an etcd watch on the log, started at
// the first call), or when the ledger closes. While etcd cannot be
// reached, the channel is closed each time the watch starts again, since
// segments may have been committed meanwhile: a reader then reads on from
// its cursor and finds them.
func (l *store) Appended() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return closedChan
	}
	l.appendedOnce.Do(func() { go l.watchAppended() })
	return l.appended.C()
}

// closedChan is a closed channel.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// watchAppended notifies l.appended of every change to the log, until the
// ledger closes.
func (l *store) watchAppended() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-l.done
		cancel()
	}()
	defer l.appended.Notify()
	const minWait, maxWait = 50 * time.Millisecond, 2 * time.Second
	wait := minWait
	for ctx.Err() == nil {
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range l.cli.Watch(wctx, l.k("log/"), clientv3.WithPrefix(), clientv3.WithCreatedNotify()) {
			if resp.Err() != nil {
				break
			}
			wait = minWait
			// The first answer (created) too: whatever was committed
			// while no watch ran is read on from the readers' cursors.
			l.appended.Notify()
		}
		wcancel()
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(2*wait, maxWait)
	}
}
