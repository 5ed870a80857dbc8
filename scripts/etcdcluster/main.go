// Command etcdcluster runs a small etcd cluster on this machine, for trying
// atm serve --etcd and for the cluster benchmarks: N members of etcd v3.7
// (the embed package, the same code as the etcd server), on 127.0.0.1,
// each with its data under --dir. It prints the client endpoints and runs
// until SIGINT or SIGTERM.
//
//	go run ./scripts/etcdcluster --members 3 --dir /tmp/etcd
//	atm serve --etcd 127.0.0.1:2379,127.0.0.1:2381,127.0.0.1:2383 --proc bank-1 --addr 127.0.0.1:7671
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	members := flag.Int("members", 3, "number of members")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "atm-etcd"), "data directory (one subdirectory per member; kept across runs)")
	base := flag.Int("port", 2379, "first client port; member i listens for clients on port+2i and for peers on port+2i+1")
	flag.Parse()
	if *members < 1 || *members > 7 {
		fmt.Fprintln(os.Stderr, "etcdcluster: --members must be 1 to 7")
		os.Exit(2)
	}
	u := func(port int) url.URL { return url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)} }
	var initial, endpoints []string
	for i := range *members {
		initial = append(initial, fmt.Sprintf("m%d=%s", i, fmt.Sprintf("http://127.0.0.1:%d", *base+2*i+1)))
		endpoints = append(endpoints, fmt.Sprintf("127.0.0.1:%d", *base+2*i))
	}
	state := "new"
	if _, err := os.Stat(filepath.Join(*dir, "m0", "member")); err == nil {
		state = "existing"
	}
	var servers []*embed.Etcd
	for i := range *members {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(*dir, cfg.Name)
		cfg.LogLevel = "error"
		cfg.ListenClientUrls = []url.URL{u(*base + 2*i)}
		cfg.AdvertiseClientUrls = cfg.ListenClientUrls
		cfg.ListenPeerUrls = []url.URL{u(*base + 2*i + 1)}
		cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.ClusterState = state
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcdcluster: start member %s: %v\n", cfg.Name, err)
			os.Exit(1)
		}
		defer e.Close()
		servers = append(servers, e)
	}
	for _, e := range servers {
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(60 * time.Second):
			fmt.Fprintln(os.Stderr, "etcdcluster: the members did not become ready within a minute")
			os.Exit(1)
		}
	}
	fmt.Printf("etcd cluster of %d members ready (data in %s)\nendpoints: %s\n", *members, *dir, strings.Join(endpoints, ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	fmt.Println("stopping")
}
