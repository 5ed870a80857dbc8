#!/usr/bin/env bash
# bench-matrix.sh: the figures of BENCHMARKS.md. Runs `atm bench --embedded`
# for each client count, with commit per operation (--max-batch 1) and with
# group commit, RUNS times each, and prints one JSON object per run; then a
# table of the medians. Never run by the tests or CI.
#
#   scripts/bench-matrix.sh > /tmp/runs.jsonl
#   CLIENTS="1 64" RUNS=5 DURATION=10s scripts/bench-matrix.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-"1 8 64 256"}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
MIX=${MIX:-transfer}

bin=$(mktemp -d)/atm
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/atm

out=$(mktemp)
for c in $CLIENTS; do
	for batch in 1 0; do
		for _ in $(seq "$RUNS"); do
			"$bin" bench --embedded --clients "$c" --duration "$DURATION" --mix "$MIX" --max-batch "$batch" --json 2>/dev/null |
				tee -a "$out"
		done
	done
done

python3 - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in runs:
    groups.setdefault((r["clients"], r.get("max_batch", 0)), []).append(r)
med = lambda rs, k: statistics.median(r.get(k, 0) for r in rs)
print()
print("| clients | commit | ops/s | p50 ms | p99 ms | ops per txn | txn ms | RSS MiB | fsync/s (same runs) | ops/s ÷ fsync/s | errors | conserved |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for (c, b), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
    mode = "per operation" if b == 1 else "group"
    print(f"| {c} | {mode} | {med(rs,'ops_per_sec'):,.0f} | {med(rs,'p50_ms'):.2f} | {med(rs,'p99_ms'):.2f} | "
          f"{med(rs,'avg_batch'):.1f} | {med(rs,'avg_commit_ms'):.2f} | {med(rs,'rss_max_mib'):.0f} | "
          f"{med(rs,'fsync_per_sec'):,.0f} | {med(rs,'ops_per_fsync_time'):.1f} | {sum(r['errors'] for r in rs)} | "
          f"{all(r['conserved'] for r in rs)} |")
PY
rm -f "$out"
