#!/usr/bin/env bash
# cluster-vs-pgbench.sh: the ratio of three atm serve --etcd on a 3-member
# etcd cluster (scripts/etcdcluster) to PostgreSQL's pgbench TPC-B, measured
# in alternation so that both see the same machine: PAIRS times, pgbench
# TPC-B (scripts/pgbench.sh, 64 clients) then atm bench (64 sessions,
# transfers, spread over the three servers) on a fresh cluster. Prints one
# line per run and the medians. Never run by the tests or CI.
#
#   scripts/cluster-vs-pgbench.sh
#   PAIRS=5 SECONDS_EACH=20 scripts/cluster-vs-pgbench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-3}
SECONDS_EACH=${SECONDS_EACH:-15}
CLIENTS=${CLIENTS:-64}
export ATM_OPERATOR_TOKEN=cluster-vs-pgbench

work=$(mktemp -d)
pids=()
stop_all() { # the servers first (each stores its clock in etcd), then etcd
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
go build -o "$work/atm" ./cmd/atm
go build -o "$work/etcdcluster" ./scripts/etcdcluster

wait_line() { # file text
	for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}

: >"$work/pg" >"$work/atm.runs"
for pair in $(seq "$PAIRS"); do
	MODES=tpcb CLIENTS=$CLIENTS SECONDS_EACH=$SECONDS_EACH scripts/pgbench.sh 2>/dev/null |
		sed -n 's/^tpcb: .* tps \([0-9.]*\) .*/\1/p' | tee -a "$work/pg" | sed "s/^/pair $pair: pgbench TPC-B tps /"

	rm -rf "$work/etcd"
	"$work/etcdcluster" --members 3 --dir "$work/etcd" --port 23790 >"$work/etcd.log" 2>&1 &
	pids+=($!)
	wait_line "$work/etcd.log" endpoints
	addrs=""
	for i in 1 2 3; do
		"$work/atm" serve --etcd 127.0.0.1:23790,127.0.0.1:23792,127.0.0.1:23794 --proc "bank-$i" \
			--addr "127.0.0.1:776$i" >"$work/s$i.log" 2>&1 &
		pids+=($!)
		wait_line "$work/s$i.log" serving
		addrs="$addrs,127.0.0.1:776$i"
	done
	"$work/atm" bench --addr "${addrs#,}" --clients "$CLIENTS" --duration "${SECONDS_EACH}s" --json 2>/dev/null |
		python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["ops_per_sec"], r["p50_ms"], r["p99_ms"], r["errors"], r["conserved"])' |
		tee -a "$work/atm.runs" | sed "s/^/pair $pair: atm 3 servers on etcd ops\/s p50 p99 errors conserved: /"
	stop_all
done

python3 - "$work/pg" "$work/atm.runs" <<'PY'
import statistics, sys
pg = [float(l) for l in open(sys.argv[1]) if l.strip()]
atm = [float(l.split()[0]) for l in open(sys.argv[2]) if l.strip()]
ratios = [a / p for a, p in zip(atm, pg)]
print()
print(f"pgbench TPC-B tps, median of {len(pg)}: {statistics.median(pg):,.0f}  ({', '.join(f'{v:,.0f}' for v in pg)})")
print(f"atm, 3 servers on 3 etcd members, ops/s, median of {len(atm)}: {statistics.median(atm):,.0f}  ({', '.join(f'{v:,.0f}' for v in atm)})")
print(f"ratio atm / pgbench, pair by pair: {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")
PY
