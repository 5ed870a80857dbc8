package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// layout is the version of the layout of keys this package reads and
// writes (see the package comment), stored under "format".
const layout = "2"

// ErrLayout is returned by Open, Verify and Events for a bank whose keys
// this version does not read: a bank written in another layout.
var ErrLayout = errors.New("the bank in etcd is kept in a layout this atm does not read")

// checkLayout makes sure the store under the prefix is in this package's
// layout, and marks an unmarked store (a new bank) with it. A store
// written by an older atm (its log under events/, one key per event) is
// refused, and nothing in it is changed. With mark, it also settles the
// bank's window of remembered requests: the one stored, or, for a bank
// without one, Options.RememberRequests, stored in the same transaction
// (whoever stores it first sets it for every server).
func (l *store) checkLayout(ctx context.Context, mark bool) error {
	cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	defer cancel()
	for {
		resp, err := l.cli.Txn(cctx).Then(
			clientv3.OpGet(l.formatKey()),
			clientv3.OpGet(l.k("events/"), clientv3.WithPrefix(), clientv3.WithCountOnly()),
			clientv3.OpGet(l.rememberKey()),
		).Commit()
		if err != nil {
			return l.unavailable(ctx, err)
		}
		marked := false
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			if v := string(kvs[0].Value); v != layout {
				return fmt.Errorf("%w: %sformat is %q, this atm reads %q; serve it with the atm that wrote it", ErrLayout, l.opts.Prefix, v, layout)
			}
			marked = true
		} else if resp.Responses[1].GetResponseRange().Count > 0 {
			return fmt.Errorf("%w: its log is under %sevents/, one key per event, as an older atm wrote it; "+
				"serve it with that atm, or give this one an etcd cluster of its own", ErrLayout, l.opts.Prefix)
		}
		if !mark {
			return nil
		}
		if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
			n, err := strconv.Atoi(string(kvs[0].Value))
			if err != nil || n <= 0 {
				return fmt.Errorf("%w: %s is %q, not a positive number", ErrLayout, l.rememberKey(), kvs[0].Value)
			}
			l.opts.RememberRequests = n
			return nil
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.Version(l.rememberKey()), "=", 0)}
		ops := []clientv3.Op{clientv3.OpPut(l.rememberKey(), strconv.Itoa(l.opts.RememberRequests))}
		if !marked {
			cmps = append(cmps, clientv3.Compare(clientv3.Version(l.formatKey()), "=", 0))
			ops = append(ops, clientv3.OpPut(l.formatKey(), layout))
		}
		put, err := l.cli.Txn(cctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return l.unavailable(ctx, err)
		}
		if put.Succeeded {
			return nil
		}
		// Another server marked the bank meanwhile: read what it stored.
	}
}

// validProc reports whether a process id can name keys: not empty, and
// without a slash.
func validProc(p string) bool { return p != "" && !strings.Contains(p, "/") }
