// Package etcdtest runs real etcd members on 127.0.0.1, from etcd's own
// server code (the embed package), for the tests of the packages that keep
// or serve a bank in etcd. A member can be stopped and started again on
// its directory and ports, to test what the bank does when members fail.
//
// The ports of a cluster are chosen together: every one is held open until
// all are chosen, so no two members of a cluster are handed the same port,
// then released just before the members bind them.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Cluster is an etcd cluster of real members, stopped at the end of the
// test that started it.
type Cluster struct {
	t       testing.TB
	quota   int64 // each member's --quota-backend-bytes; 0: etcd's default
	members []*member
	initial string // the InitialCluster naming every member
}

type member struct {
	name, dir    string
	client, peer url.URL
	e            *embed.Etcd // nil while stopped
}

// Start starts a new cluster of n members and waits until every one is
// ready.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartQuota(t, n, 0)
}

// StartQuota starts a new cluster of n members whose backend may hold
// quota bytes (etcd's --quota-backend-bytes; 0: etcd's default), and
// waits until every one is ready.
func StartQuota(t testing.TB, n int, quota int64) *Cluster {
	t.Helper()
	c := &Cluster{t: t, quota: quota}
	urls := freeURLs(t, 2*n)
	var initial []string
	for i := range n {
		m := &member{name: fmt.Sprintf("m%d", i+1), dir: t.TempDir(), client: urls[2*i], peer: urls[2*i+1]}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peer.String())
	}
	c.initial = strings.Join(initial, ",")
	t.Cleanup(func() {
		// At the end, no member hands its leadership over.
		var wg sync.WaitGroup
		for _, m := range c.members {
			if m.e != nil {
				wg.Go(m.e.Server.HardStop)
			}
		}
		wg.Wait()
		for i := range c.members {
			c.Stop(i)
		}
	})
	for i := range c.members {
		c.launch(i, "new")
	}
	for i := range c.members {
		c.waitReady(i)
	}
	return c
}

// freeURLs returns n http URLs on distinct ports of 127.0.0.1 that the
// system just handed out, all held until the last is chosen.
func freeURLs(t testing.TB, n int) []url.URL {
	t.Helper()
	var out []url.URL
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, url.URL{Scheme: "http", Host: ln.Addr().String()})
	}
	return out
}

func (c *Cluster) launch(i int, state string) {
	c.t.Helper()
	m := c.members[i]
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{m.client}, []url.URL{m.client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{m.peer}, []url.URL{m.peer}
	cfg.InitialCluster = c.initial
	cfg.InitialClusterToken = "atm-test-cluster"
	cfg.ClusterState = state
	cfg.LogLevel = "error"
	cfg.QuotaBackendBytes = c.quota
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop()) // a closing member's errors are noise here
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		c.t.Fatalf("start etcd member %s: %v", m.name, err)
	}
	m.e = e
}

func (c *Cluster) waitReady(i int) {
	c.t.Helper()
	m := c.members[i]
	select {
	case <-m.e.Server.ReadyNotify():
	case err := <-m.e.Err():
		c.t.Fatalf("etcd member %s: %v", m.name, err)
	case <-time.After(30 * time.Second):
		c.t.Fatalf("etcd member %s was not ready in 30s", m.name)
	}
}

// Stop closes member i (a no-op if it is stopped).
func (c *Cluster) Stop(i int) {
	if m := c.members[i]; m.e != nil {
		m.e.Close()
		m.e = nil
	}
}

// Restart starts the stopped members given, on their directories and
// ports, and waits until they are ready.
func (c *Cluster) Restart(is ...int) {
	c.t.Helper()
	for _, i := range is {
		c.launch(i, "existing")
	}
	for _, i := range is {
		c.waitReady(i)
	}
}

// Leader returns the index of the member that is the raft leader, or -1.
func (c *Cluster) Leader() int {
	for i, m := range c.members {
		if m.e != nil && m.e.Server.Leader() == m.e.Server.MemberID() {
			return i
		}
	}
	return -1
}

// Endpoints returns the members' client addresses, HOST:PORT, as
// atm serve --etcd takes them.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.client.Host)
	}
	return out
}

// Client returns a client of every member, closed at the end of the test.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	var urls []string
	for _, m := range c.members {
		urls = append(urls, m.client.String())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: urls, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatalf("etcd client: %v", err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}
