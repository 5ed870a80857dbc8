#!/usr/bin/env bash
# history.sh: the "History" figures of BENCHMARKS.md. For each size of
# history (operations of `atm bench --embedded --db`, 64 clients), with
# archival off and on (atm archive --keep-log KEEP), it measures: the live
# file's size, a cold start (page cache dropped) and a warm one, RSS at
# start and under load, `atm verify`, statement p50 (first page, a deep
# page, a bad cursor), 64-client throughput against a fresh bank in
# alternated pairs, and the throughput left to 64 clients while one more
# session loops the statement with a bad cursor (hog_ratio). One JSON object per row, then a table. Never run by the
# tests or CI; it takes long (a 20 M history takes about an hour to build).
#
#   SIZES="1000000" scripts/history.sh
#   SIZES="200000" KEEP=50000 PAIRS=3 scripts/history.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"1000000 5000000 20000000"}
KEEP=${KEEP:-100000}
PAIRS=${PAIRS:-3}
DURATION=${DURATION:-5s}
WORK=${WORK:-$(mktemp -d)}

bin=$WORK/atm
go build -o "$bin" ./cmd/atm
out=$WORK/rows.jsonl
: >"$out"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "(could not drop the page cache: the cold start is warm)" >&2; }

# build DB N: a history of at least N operations.
build() {
	local db=$1 n=$2 done=0
	while [ "$done" -lt "$n" ]; do
		ops=$("$bin" bench --embedded --db "$db" --clients 64 --duration 20s --warmup 0s --json 2>/dev/null | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["ops"]))')
		done=$((done + ops))
	done
	echo "$done"
}

# throughput DB: median ops/s of 64 clients on DB and on a fresh bank, in
# alternated pairs, and the RSS under load on DB.
throughput() {
	local db=$1 archive=${2:-}
	python3 - "$bin" "$db" "$archive" "$PAIRS" "$DURATION" "$WORK" <<'PY'
import json, os, statistics, subprocess, sys, tempfile
sys.path.insert(0, "scripts")
import history
atm, db, archive, pairs, duration, work = sys.argv[1], sys.argv[2], sys.argv[3] or None, int(sys.argv[4]), sys.argv[5], sys.argv[6]
def run(path, arch):
    _, _, p, addr = history.start(atm, path, arch)
    try:
        r = subprocess.run([atm, "bench", "--addr", addr, "--clients", "64", "--duration", duration,
                            "--operator-token", "history-token", "--server-pid", str(p.pid), "--json"],
                           capture_output=True, text=True, check=True)
        return json.loads(r.stdout)
    finally:
        p.terminate(); p.wait()
old, fresh = [], []
for i in range(pairs):
    fdb = os.path.join(work, f"fresh-{i}.db")
    for which in (("old", "fresh") if i % 2 == 0 else ("fresh", "old")):
        if which == "old":
            old.append(run(db, archive))
        else:
            fresh.append(run(fdb, None))
    os.remove(fdb)
o = statistics.median(r["ops_per_sec"] for r in old)
f = statistics.median(r["ops_per_sec"] for r in fresh)
print(json.dumps({"ops_per_sec": round(o), "fresh_ops_per_sec": round(f), "vs_fresh": round(o / f, 2),
                  "rss_load_mib": statistics.median(r.get("rss_max_mib", 0) for r in old)}))
PY
}

measure() {
	local db=$1 ops=$2 mode=$3 archive=${4:-}
	size=$(stat -c %s "$db")
	drop_caches
	cold=$(python3 scripts/history.py start "$bin" "$db" $archive)
	warm=$(python3 scripts/history.py start "$bin" "$db" $archive)
	t0=$(date +%s.%N)
	"$bin" verify --db "$db" >/dev/null
	verify=$(echo "$(date +%s.%N) - $t0" | bc)
	stmt=$(python3 scripts/history.py stmt "$bin" "$db" $archive)
	tput=$(throughput "$db" "$archive")
	hog=$(python3 scripts/history.py hog "$bin" "$db" "$PAIRS" "$DURATION")
	python3 - "$ops" "$mode" "$size" "$cold" "$warm" "$verify" "$stmt" "$tput" "$hog" <<'PY' | tee -a "$out"
import json, sys
ops, mode, size, cold, warm, verify, stmt, tput, hog = sys.argv[1:]
cold, warm, stmt, tput, hog = map(json.loads, (cold, warm, stmt, tput, hog))
print(json.dumps({"ops": int(ops), "archival": mode, "file_mib": round(int(size) / 2**20, 1),
                  "cold_start_s": cold["start_s"], "warm_start_s": warm["start_s"], "rss_start_mib": warm["rss_start_mib"],
                  "verify_s": round(float(verify), 2), **stmt, **tput, "hog_ratio": hog["hog_ratio"]}))
PY
}

for n in $SIZES; do
	db=$WORK/history-$n.db
	ops=$(build "$db" "$n")
	measure "$db" "$ops" off
	arch=$WORK/archive-$n
	mkdir -p "$arch"
	"$bin" archive --db "$db" --to "$arch" --keep-log "$KEEP" >&2
	measure "$db" "$ops" on "$arch"
done

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cols = ["ops", "archival", "file_mib", "cold_start_s", "warm_start_s", "rss_start_mib", "rss_load_mib", "verify_s",
        "first_ms", "deep_ms", "bad_cursor_ms", "ops_per_sec", "vs_fresh", "hog_ratio"]
print()
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
for r in rows:
    print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
PY
