package bench

import (
	"testing"
	"time"
)

// atm bench end to end, in-process and briefly: every mix, both load
// generators, commit per operation and group commit. It checks the run
// works and the ledger stays conserved; it asserts nothing about speed.
func TestBenchRuns(t *testing.T) {
	for _, tc := range []struct {
		mix, client string
		maxBatch    int
		push        bool
	}{
		{"transfer", "lean", 0, false},
		{"mixed", "lean", 1, true},
		{"deposit", "lib", 0, false},
		{"mixed", "lib", 0, true},
	} {
		t.Run(tc.mix+"/"+tc.client, func(t *testing.T) {
			res, err := bench(benchConfig{
				embedded: true, clients: 4, duration: 300 * time.Millisecond, mix: tc.mix,
				client: tc.client, maxBatch: tc.maxBatch, push: tc.push, base: 770_000_000,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || !res.Conserved || res.Ops == 0 {
				t.Fatalf("ops %d errors %d conserved %v: %v", res.Ops, res.Errors, res.Conserved, res.FirstErrors)
			}
			if !(res.P50ms <= res.P90ms && res.P90ms <= res.P99ms && res.P99ms <= res.Maxms) {
				t.Fatalf("percentiles out of order: %+v", res)
			}
			if res.Batches == 0 || res.FsyncPerSec <= 0 || res.RTTp50us <= 0 {
				t.Fatalf("missing machine or committer figures: %+v", res)
			}
		})
	}
}

func TestJSONField(t *testing.T) {
	line := []byte(`{"type":"reply","id":"b-1","op":"transfer","proc":"bank","ts":42,"recv_ts":40,"to_holder":"x\",\"ts\":7"}` + "\n")
	for key, want := range map[string]string{"type": "reply", "id": "b-1", "ts": "42", "recv_ts": "40"} {
		if got, ok := jsonField(line, key); !ok || string(got) != want {
			t.Errorf("%s: %q %v, want %q", key, got, ok, want)
		}
	}
	if _, ok := jsonField(line, "code"); ok {
		t.Error("found a key that is not there")
	}
}
