package server_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"atm/netproto/client"

	"atm/bank/money"

	"github.com/anishathalye/porcupine"
)

// The linearizability model: a few accounts' balances. Every operation acts
// on the session's account a; a transfer also credits account to.
const linAccounts = 3

type linState [linAccounts]money.Cents

type linInput struct {
	Kind   string // deposit, withdraw, transfer, balance
	A, To  int
	Amount money.Cents
}

type linOutput struct {
	Code    string      // "ok", an error code, or "" when the outcome is unknown
	Balance money.Cents // account a's balance after the operation (for "ok")
}

// linStep returns the states the bank may be in after in produced out from
// state s: none when the output is impossible, both outcomes when it is
// unknown.
func linStep(s linState, in linInput, out linOutput) []linState {
	next, code := s, "ok"
	switch in.Kind {
	case "deposit":
		next[in.A] += in.Amount
	case "withdraw":
		if s[in.A] < in.Amount {
			code = "insufficient_funds"
		} else {
			next[in.A] -= in.Amount
		}
	case "transfer":
		if s[in.A] < in.Amount {
			code = "insufficient_funds"
		} else {
			next[in.A] -= in.Amount
			next[in.To] += in.Amount
		}
	}
	if code != "ok" {
		next = s
	}
	switch {
	case out.Code == "": // no reply: applied or not
		if next == s {
			return []linState{s}
		}
		return []linState{s, next}
	case out.Code != code:
		return nil
	case code == "ok" && out.Balance != next[in.A]:
		return nil
	}
	return []linState{next}
}

func linModel(initial linState) porcupine.Model {
	nm := &porcupine.NondeterministicModel{
		Init: func() []any { return []any{initial} },
		Step: func(state, input, output any) []any {
			var out []any
			for _, s := range linStep(state.(linState), input.(linInput), output.(linOutput)) {
				out = append(out, s)
			}
			return out
		},
		Equal: func(a, b any) bool { return a.(linState) == b.(linState) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			var op string
			switch in.Kind {
			case "transfer":
				op = fmt.Sprintf("transfer(%d→%d, %d)", in.A, in.To, in.Amount)
			case "balance":
				op = fmt.Sprintf("balance(%d)", in.A)
			default:
				op = fmt.Sprintf("%s(%d, %d)", in.Kind, in.A, in.Amount)
			}
			switch out.Code {
			case "":
				return op + " → unknown"
			case "ok":
				return fmt.Sprintf("%s → %d", op, out.Balance)
			}
			return op + " → " + out.Code
		},
		DescribeState: func(state any) string { return fmt.Sprint([linAccounts]money.Cents(state.(linState))) },
	}
	return nm.ToModel()
}

// TestLinearizableOperations records a history of concurrent operations on
// a few accounts, with call and return times and outcomes, and checks with
// porcupine that some order of them, each taking effect between its call
// and its return, explains every reply. Some calls give up early on purpose:
// their outcome is unknown and they may take effect at any time after the
// call. On failure the visualisation is written to a file the test names.
func TestLinearizableOperations(t *testing.T) {
	t.Parallel()
	eachBackend(t, testLinearizable)
}

func testLinearizable(t *testing.T, b *testBank) {
	clients, opsPer := 8, 100
	giveUp := 2 * time.Millisecond // the longest an early give-up waits
	if b.cluster {                 // commits take several etcd round trips
		clients, opsPer, giveUp = 6, 30, 20*time.Millisecond
	}
	if testing.Short() {
		opsPer = opsPer * 2 / 5
	}
	rng := seededRand(t)
	ids := [linAccounts]string{"71", "72", "73"}
	const opening = 1_000
	openAccounts(t, b.addr(0), ids[:], opening)
	initial := linState{opening, opening, opening}

	var mu sync.Mutex
	var history []porcupine.Operation
	epoch := time.Now()
	var wg sync.WaitGroup
	seeds := make([]uint64, clients)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	atms := make([]*client.Client, clients)
	for i := range atms {
		atms[i] = b.login(i, ids[i%linAccounts], client.Options{ProcessID: fmt.Sprintf("lin-%d", i)})
	}
	for i, c := range atms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand(seeds[i])
			a := i % linAccounts
			for range opsPer {
				in := linInput{A: a, Amount: money.Cents(1 + r.IntN(400))}
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if r.IntN(8) == 0 { // give up early: the outcome is unknown
					ctx, cancel = context.WithTimeout(ctx, time.Duration(r.Int64N(int64(giveUp))))
				}
				var rep client.Reply
				var err error
				call := time.Since(epoch).Nanoseconds()
				switch k := r.IntN(4); k {
				case 0:
					in.Kind = "deposit"
					rep, err = c.Deposit(ctx, in.Amount)
				case 1:
					in.Kind = "withdraw"
					rep, err = c.Withdraw(ctx, in.Amount)
				case 2:
					in.Kind = "transfer"
					in.To = (a + 1 + r.IntN(linAccounts-1)) % linAccounts
					rep, err = c.Transfer(ctx, ids[in.To], in.Amount)
				case 3:
					in.Kind, in.Amount = "balance", 0
					rep, err = c.Balance(ctx)
				}
				ret := time.Since(epoch).Nanoseconds()
				cancel()
				out := linOutput{Code: "ok", Balance: rep.Balance}
				if err != nil {
					out = linOutput{Code: wireCode(err)}
				}
				if out.Code == "" {
					ret = math.MaxInt64 // may take effect any time after the call
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: i, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	unknown := 0
	for _, op := range history {
		if op.Output.(linOutput).Code == "" {
			unknown++
		}
	}
	model := linModel(initial)
	res, info := porcupine.CheckOperationsVerbose(model, history, 60*time.Second)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("atm-linearizability-%d.html", time.Now().UnixNano()))
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			t.Errorf("write the visualisation: %v", err)
		}
		t.Fatalf("history of %d operations is %s; visualisation in %s", len(history), res, path)
	}

	// The check is not vacuous: the same history with one balance read
	// altered to an impossible value is rejected.
	altered := false
	for i, op := range history {
		if op.Input.(linInput).Kind == "balance" && op.Output.(linOutput).Code == "ok" {
			bad := append([]porcupine.Operation(nil), history...)
			bad[i].Output = linOutput{Code: "ok", Balance: -1}
			if got := porcupine.CheckOperationsTimeout(model, bad, 60*time.Second); got != porcupine.Illegal {
				t.Fatalf("a history with an impossible read is %s, want Illegal", got)
			}
			altered = true
			break
		}
	}
	if !altered {
		t.Fatal("no successful balance read to alter")
	}
	b.verify(t)
	figures(t, "servers=%d clients=%d operations=%d unknown_outcome=%d accounts=%d result=%s", len(b.addrs), clients, len(history), unknown, linAccounts, res)
}
