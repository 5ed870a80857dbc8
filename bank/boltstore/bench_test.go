package boltstore_test

import (
	"fmt"
	"path/filepath"
	"sync"
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

// BenchmarkStatement reads a page of 20 entries of an account with 50,000
// entries, in a log of as many events more, from the newest, from the
// cursor of the page before, from a cursor between two entries (not the
// cursor of any page) and from the oldest entry (an empty page). Each is one
// operation through the ledger, logged and committed.
func BenchmarkStatement(b *testing.B) {
	bk, err := boltstore.Open(filepath.Join(b.TempDir(), "bench.db"), boltstore.Options{
		Options: bank.Options{PINCost: bcrypt.MinCost, NoDefaults: true},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	const hot, others, entries = "1000", 64, 50_000
	var oldest uint64 // the hot account's open event
	for i := range others + 1 {
		id := fmt.Sprint(1000 + i)
		r, err := bk.OpenAccount(ctx, bank.Meta{}, id, "Bench "+id, "1234")
		if err != nil {
			b.Fatal(err)
		}
		if id == hot {
			oldest = r.Event.TS
		}
		if _, err := bk.Deposit(ctx, bank.Meta{ReqID: "open"}, id, 10_000_000); err != nil {
			b.Fatal(err)
		}
	}
	// Transfers to and from the hot account, from 64 callers at once, and
	// as many between the others.
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := g; i < entries; i += 64 {
				other := fmt.Sprint(1001 + i%others)
				from, to := hot, other
				if i%2 == 1 {
					from, to = other, hot
				}
				if _, err := bk.Transfer(ctx, bank.Meta{ReqID: fmt.Sprint("h", i)}, from, to, 1); err != nil {
					b.Error(err)
					return
				}
				from, to = other, fmt.Sprint(1001+(i+1)%others)
				if _, err := bk.Transfer(ctx, bank.Meta{ReqID: fmt.Sprint("o", i)}, from, to, 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	first, _, err := bk.Statement(ctx, bank.Meta{}, hot, 0, 20)
	if err != nil || first.Next == 0 {
		b.Fatalf("first page: %v %v", first, err)
	}
	mid, _, err := bk.Statement(ctx, bank.Meta{}, hot, first.Entries[0].TS/2, 1)
	if err != nil || len(mid.Entries) != 1 {
		b.Fatalf("middle entry: %v %v", mid, err)
	}
	for _, c := range []struct {
		name   string
		before uint64
	}{
		{"first-page", 0},
		{"next-page", first.Next},
		{"between-entries", mid.Entries[0].TS + 2}, // TS+1 is its reply's tick
		{"below-oldest", oldest},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				page, _, err := bk.Statement(ctx, bank.Meta{}, hot, c.before, 20)
				if err != nil {
					b.Fatal(err)
				}
				if c.name != "below-oldest" && len(page.Entries) != 20 {
					b.Fatalf("%d entries", len(page.Entries))
				}
			}
		})
	}
}
