package etcdstore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"atm/bank"
	"atm/bank/money"
)

// BenchmarkConcurrentDeposits runs b.N deposits from 64 goroutines, each
// on its own account, against a one-member embedded etcd, and reports
// deposits per second.
func BenchmarkConcurrentDeposits(b *testing.B) {
	const workers = 64
	_, cli := startEtcd(b)
	l := open(b, cli, Options{Options: bank.Options{ProcessID: "s1", NoDefaults: true}})
	ids := make([]string, workers)
	for w := range ids {
		ids[w] = fmt.Sprintf("%03d", 100+w)
		if _, err := l.CreateAccount(ctx, ids[w], "Holder", "1234"); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if _, err := l.Deposit(ctx, meta(fmt.Sprintf("b%d", i)), ids[w], money.Cents(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}
