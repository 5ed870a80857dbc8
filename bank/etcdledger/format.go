package etcdledger

import (
	"context"
	"errors"
	"fmt"
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
// refused, and nothing in it is changed.
func (l *Ledger) checkLayout(ctx context.Context, mark bool) error {
	cctx, cancel := context.WithTimeout(ctx, l.opts.CommitTimeout)
	defer cancel()
	resp, err := l.cli.Txn(cctx).Then(
		clientv3.OpGet(l.formatKey()),
		clientv3.OpGet(l.k("events/"), clientv3.WithPrefix(), clientv3.WithCountOnly()),
	).Commit()
	if err != nil {
		return l.unavailable(ctx, err)
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		if v := string(kvs[0].Value); v != layout {
			return fmt.Errorf("%w: %sformat is %q, this atm reads %q; serve it with the atm that wrote it", ErrLayout, l.opts.Prefix, v, layout)
		}
		return nil
	}
	if resp.Responses[1].GetResponseRange().Count > 0 {
		return fmt.Errorf("%w: its log is under %sevents/, one key per event, as an older atm wrote it; "+
			"serve it with that atm, or give this one an etcd cluster of its own", ErrLayout, l.opts.Prefix)
	}
	if !mark {
		return nil
	}
	_, err = l.cli.Txn(cctx).If(clientv3.Compare(clientv3.Version(l.formatKey()), "=", 0)).
		Then(clientv3.OpPut(l.formatKey(), layout)).Commit()
	if err != nil {
		return l.unavailable(ctx, err)
	}
	return nil
}

// validProc reports whether a process id can name keys: not empty, and
// without a slash.
func validProc(p string) bool { return p != "" && !strings.Contains(p, "/") }
