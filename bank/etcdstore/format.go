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
// writes (see the package comment), stored under "format": "3" since the
// segments are chained (see chain.go). A bank of layout "2" (its segments
// bare JSON arrays, without a hash, and no checkpoints) is read as it is;
// a server that opens it marks it "3", and leaves its segments as they
// were: each server's chain starts at its first segment written after.
const (
	layout          = "3"
	layoutUnchained = "2"
)

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
		marked, old := false, false
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			v := string(kvs[0].Value)
			if v != layout && v != layoutUnchained {
				return fmt.Errorf("%w: %sformat is %q, this atm reads %q and %q; serve it with the atm that wrote it",
					ErrLayout, l.opts.Prefix, v, layoutUnchained, layout)
			}
			marked, old = true, v == layoutUnchained
		} else if resp.Responses[1].GetResponseRange().Count > 0 {
			return fmt.Errorf("%w: its log is under %sevents/, one key per event, as an older atm wrote it; "+
				"serve it with that atm, or give this one an etcd cluster of its own", ErrLayout, l.opts.Prefix)
		}
		if !mark {
			return nil
		}
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
			n, err := strconv.Atoi(string(kvs[0].Value))
			if err != nil || n <= 0 {
				return fmt.Errorf("%w: %s is %q, not a positive number", ErrLayout, l.rememberKey(), kvs[0].Value)
			}
			l.opts.RememberRequests = n
			if !old {
				return nil
			}
		} else {
			cmps = append(cmps, clientv3.Compare(clientv3.Version(l.rememberKey()), "=", 0))
			ops = append(ops, clientv3.OpPut(l.rememberKey(), strconv.Itoa(l.opts.RememberRequests)))
		}
		switch {
		case !marked:
			cmps = append(cmps, clientv3.Compare(clientv3.Version(l.formatKey()), "=", 0))
			ops = append(ops, clientv3.OpPut(l.formatKey(), layout))
		case old: // its segments stay as they are; new ones are chained
			cmps = append(cmps, clientv3.Compare(clientv3.Value(l.formatKey()), "=", layoutUnchained))
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
