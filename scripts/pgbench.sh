#!/usr/bin/env bash
# pgbench.sh: PostgreSQL's pgbench on this machine, for the comparison in
# BENCHMARKS.md. It starts a throwaway cluster (Debian's postgresql package)
# on loopback with the default durability settings (fsync on, synchronous
# commit on), runs TPC-B and simple-update with 64 clients, prints the tps
# and removes the cluster. Never run by the tests or CI.
#
#   scripts/pgbench.sh            # 64 clients, 2 threads, 30 s each, scale 64
#   CLIENTS=8 SECONDS_EACH=10 SCALE=16 scripts/pgbench.sh
#   MODES=tpcb scripts/pgbench.sh   # TPC-B only
set -euo pipefail

CLIENTS=${CLIENTS:-64}
THREADS=${THREADS:-2}
SECONDS_EACH=${SECONDS_EACH:-30}
SCALE=${SCALE:-64}
PORT=${PORT:-54329}
MODES=${MODES:-tpcb simple-update}

bindir=""
if command -v pg_config >/dev/null 2>&1; then
	bindir=$(pg_config --bindir)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
	bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "installing Debian's postgresql package..." >&2
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
		bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	else
		echo "pgbench.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
		exit 1
	fi
fi
pgbench=$bindir/pgbench
[ -x "$pgbench" ] || pgbench=$(command -v pgbench)

# PostgreSQL refuses to run as root: run the cluster as the postgres user.
run=()
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || useradd --system --home /nonexistent --shell /usr/sbin/nologin postgres
	run=(runuser -u postgres --)
fi

dir=$(mktemp -d /tmp/pgbench-cluster.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
cleanup() {
	"${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

"${run[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
"${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
	-o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$dir -c max_connections=$((CLIENTS + 20)) -c shared_buffers=256MB" \
	start >/dev/null

psql=("$bindir/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres)
pgb=("$pgbench" -h 127.0.0.1 -p "$PORT" -U postgres)
"${psql[@]}" -c "create database bench" postgres
echo "PostgreSQL: $("${psql[@]}" -At -c 'select version()' postgres)"
echo "settings: $("${psql[@]}" -At -c "select string_agg(name || '=' || setting, ' ') from pg_settings where name in ('fsync','synchronous_commit','wal_sync_method','full_page_writes','shared_buffers')" postgres)"
echo "machine: $(nproc) cores; data directory on $(df --output=source,fstype "$dir" | tail -n 1)"
echo "initialising scale $SCALE..."
"${pgb[@]}" -i -q -s "$SCALE" bench 2>&1 | tail -n 1

for mode in $MODES; do
	flags=()
	[ "$mode" = simple-update ] && flags=(-N)
	out=$("${pgb[@]}" "${flags[@]}" -c "$CLIENTS" -j "$THREADS" -T "$SECONDS_EACH" bench 2>&1)
	tps=$(printf '%s\n' "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
	lat=$(printf '%s\n' "$out" | sed -n 's/^latency average = \(.*\)$/\1/p')
	echo "$mode: clients $CLIENTS threads $THREADS ${SECONDS_EACH}s: tps $tps (latency average $lat)"
done
