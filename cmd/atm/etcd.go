package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"atm/bank/etcdstore"
	"atm/netproto/client"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdEndpoints splits --etcd: endpoints separated by commas, each
// HOST:PORT or a URL such as http://HOST:PORT.
func etcdEndpoints(list string) ([]string, error) {
	eps := client.SplitAddrs(list)
	if len(eps) == 0 {
		return nil, errors.New("--etcd needs one or more etcd endpoints, HOST:PORT or http://HOST:PORT, separated by commas")
	}
	return eps, nil
}

// dialEtcd returns a client of the etcd cluster at the endpoints. It does
// not wait for a member: the first request fails if none answers.
func dialEtcd(list string) (*clientv3.Client, error) {
	eps, err := etcdEndpoints(list)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd at %s: %w", strings.Join(eps, ","), err)
	}
	return cli, nil
}

// openEtcdReadOnly opens the bank kept in etcd for an offline tool (log,
// verify): it only reads, takes no process id's clock and may run beside
// the servers. close releases the client.
func openEtcdReadOnly(list string) (l *etcdstore.Ledger, close func(), err error) {
	cli, err := dialEtcd(list)
	if err != nil {
		return nil, nil, err
	}
	// Fail early, with a clear message, when no member answers.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "atm/totals"); err != nil {
		cli.Close()
		return nil, nil, fmt.Errorf("etcd at %s does not answer: %w", list, err)
	}
	l = etcdstore.OpenReadOnly(cli, etcdstore.Options{})
	return l, func() { l.Close(); cli.Close() }, nil
}
