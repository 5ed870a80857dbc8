#!/usr/bin/env bash
# bench-cluster.sh: the cluster figures of BENCHMARKS.md. In one session on
# this machine: atm bench (64 clients, transfers) against one atm serve on
# bbolt, then against 1 and 3 atm serve --etcd on a 3-member etcd cluster
# (scripts/etcdcluster), RUNS times each, one JSON object per run, then a
# table of the medians. Never run by the tests or CI. pgbench for the same
# day: scripts/pgbench.sh.
#
#   scripts/bench-cluster.sh > /tmp/cluster.jsonl
#   RUNS=5 DURATION=10s CLIENTS=64 scripts/bench-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CLIENTS=${CLIENTS:-64}
export ATM_OPERATOR_TOKEN=bench-cluster

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/atm" ./cmd/atm
go build -o "$work/etcdcluster" ./scripts/etcdcluster

wait_line() { # file text
	for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}
stop_servers() {
	for p in "${pids[@]:1}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	pids=("${pids[0]}")
}
bench() { # label addrs
	for _ in $(seq "$RUNS"); do
		"$work/atm" bench --addr "$2" --clients "$CLIENTS" --duration "$DURATION" --json 2>/dev/null |
			python3 -c 'import json,sys; r=json.load(sys.stdin); r["setup"]=sys.argv[1]; print(json.dumps(r))' "$1" | tee -a "$work/runs"
	done
}

# bbolt: one server on one file (the etcd cluster is not running yet).
"$work/atm" serve --db "$work/bank.db" --addr 127.0.0.1:7760 >"$work/bbolt.log" 2>&1 &
pids=($!)
wait_line "$work/bbolt.log" serving
bench "bbolt, 1 server" 127.0.0.1:7760
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true

"$work/etcdcluster" --members 3 --dir "$work/etcd" --port 23790 >"$work/etcd.log" 2>&1 &
pids=($!)
wait_line "$work/etcd.log" endpoints
etcd=127.0.0.1:23790,127.0.0.1:23792,127.0.0.1:23794

"$work/atm" serve --etcd "$etcd" --proc bank-1 --addr 127.0.0.1:7761 >"$work/s1.log" 2>&1 &
pids+=($!)
wait_line "$work/s1.log" serving
bench "etcd 3 members, 1 server" 127.0.0.1:7761
stop_servers

for i in 1 2 3; do
	"$work/atm" serve --etcd "$etcd" --proc "bank-$i" --addr "127.0.0.1:776$i" >"$work/s$i.log" 2>&1 &
	pids+=($!)
	wait_line "$work/s$i.log" serving
done
bench "etcd 3 members, 3 servers" 127.0.0.1:7761,127.0.0.1:7762,127.0.0.1:7763
stop_servers

python3 - "$work/runs" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in runs:
    groups.setdefault(r["setup"], []).append(r)
print()
print("| setup | ops/s (median) | runs | p50 ms | p99 ms | errors | conserved |")
print("|---|---:|---|---:|---:|---:|---|")
for k, rs in groups.items():
    med = lambda key: statistics.median(r.get(key, 0) for r in rs)
    print(f"| {k} | {med('ops_per_sec'):,.0f} | {', '.join(format(r.get('ops_per_sec', 0), ',.0f') for r in rs)} | {med('p50_ms'):.1f} | {med('p99_ms'):.1f} | {sum(r.get('errors',0) for r in rs)} | {all(r.get('conserved', False) for r in rs)} |")
PY
