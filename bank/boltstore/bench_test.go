package boltstore_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"atm/bank"
	"atm/bank/boltstore"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkTransfer measures durable transfers through the ledger alone, with
// one commit (and fsync) per operation against group commit, at several
// numbers of concurrent callers.
func BenchmarkTransfer(b *testing.B) {
	for _, mode := range []struct {
		name  string
		batch int
	}{{"commit-per-op", 1}, {"group-commit", 0}} {
		for _, par := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/callers=%d", mode.name, par), func(b *testing.B) {
				bk, err := boltstore.Open(filepath.Join(b.TempDir(), "bench.db"), boltstore.Options{
					Options: bank.Options{PINCost: bcrypt.MinCost, NoDefaults: true}, MaxBatch: mode.batch,
				})
				if err != nil {
					b.Fatal(err)
				}
				defer bk.Close()
				const accounts = 128
				for i := range accounts {
					id := fmt.Sprint(1000 + i)
					if _, err := bk.CreateAccount(ctx, id, "Bench "+id, "1234"); err != nil {
						b.Fatal(err)
					}
					bk.Deposit(ctx, bank.Meta{ReqID: "open"}, id, 1_000_000)
				}
				var next atomic.Int64
				b.SetParallelism(max(1, par/2)) // GOMAXPROCS is 2 here
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						n := next.Add(1)
						from := fmt.Sprint(1000 + n%accounts)
						to := fmt.Sprint(1000 + (n+1)%accounts)
						if _, err := bk.Transfer(ctx, bank.Meta{ReqID: fmt.Sprint("t", n)}, from, to, 1); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
