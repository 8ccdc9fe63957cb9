#!/usr/bin/env bash
# Runs the scale-out benchmark (issue 4) and writes the results: packyard on
# PostgreSQL + MinIO next to SQLite + fs in the same run. bench/cluster
# starts PostgreSQL (initdb + pg_ctl from PG_BIN), MinIO (MINIO) and nginx
# itself on free loopback ports and removes them afterwards.
#
#   bench/cluster.sh          # full: upload → visible at N = 2,000 and 20,000 (50 samples),
#                             #   throughput of 2,000 uploads, 15 s read runs
#                             #   → section "Scale-out: PostgreSQL + MinIO" of docs/benchmarks.md
#   bench/cluster.sh -quick   # smoke: N = 200 and 1,000, 10 samples, 300 uploads, 3 s reads
#                             #   → $BENCH_WORK/benchmarks-cluster-quick.md
#
# Extra arguments go to bench/cluster (e.g. -clients 32, -readers 64,
# -visible-backends postgres). BENCH_WORK (default /tmp/packyard-bench)
# holds the corpus (kept between runs), binaries and scratch data.
# BENCH_OUT overrides the output file. BENCH_REV=<commit> builds the
# server from that commit instead of the working tree. BENCH_SEED
# (default 1) is the corpus seed. PG_BIN (default
# /usr/lib/postgresql/15/bin) and MINIO (default minio on PATH, else
# ~/go/bin/minio) name the engines.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=full
if [[ "${1:-}" == "-quick" || "${1:-}" == "--quick" ]]; then
	MODE=quick
	shift
fi
WORK=${BENCH_WORK:-/tmp/packyard-bench}
SEED=${BENCH_SEED:-1}
if [[ $MODE == quick ]]; then
	NEED=1011 # largest N 1,000 + 10 samples + 1 warm-up
	OUT=${BENCH_OUT:-$WORK/benchmarks-cluster-quick.md}
else
	NEED=20051
	OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
fi
CORPUS=$WORK/cluster-corpus-$MODE
BIN=$WORK/bin
mkdir -p "$WORK" "$BIN"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
MINIO=${MINIO:-$(command -v minio || echo "$HOME/go/bin/minio")}
if [[ ! -x $PG_BIN/initdb ]]; then
	echo "cluster.sh: $PG_BIN/initdb not found: apt-get install -y postgresql (or set PG_BIN)" >&2
	exit 1
fi
if [[ ! -x $MINIO ]]; then
	echo "cluster.sh: MinIO not found: CGO_ENABLED=0 go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c (or set MINIO)" >&2
	exit 1
fi
if ! command -v nginx >/dev/null; then
	echo "cluster.sh: nginx not found: apt-get install -y nginx-light" >&2
	exit 1
fi

bench_build_packyard
go build -o "$BIN/corpus" ./bench/corpus
go build -o "$BIN/cluster" ./bench/cluster

echo "== corpus: $NEED packages + 1 × 20 MiB in $CORPUS"
"$BIN/corpus" -n "$NEED" -seed "$SEED" -out "$CORPUS" -big 1 -bigsize 20MiB

bench_wait_quiet

echo "== scale-out benchmark ($MODE)"
RESULT=$WORK/result-cluster-$MODE.md
SCRATCH=$WORK/cluster-scratch-$MODE
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
QUICK=()
if [[ $MODE == quick ]]; then QUICK=(-quick); fi
"$BIN/cluster" "${QUICK[@]}" -corpus "$CORPUS" -packyard "$BIN/packyard" -work "$SCRATCH" \
	-pg-bin "$PG_BIN" -minio "$MINIO" -out "$RESULT" "$@"
rm -rf "$SCRATCH"

PGV=$("$PG_BIN/postgres" --version | sed 's/^postgres (PostgreSQL) //')
MIV=$("$MINIO" --version 2>/dev/null | head -1 | sed 's/^minio version //')
NGV=$(nginx -v 2>&1 | sed 's/^nginx version: //')

QFLAG=""
if [[ $MODE == quick ]]; then QFLAG=" -quick"; fi
BLOCK=$(mktemp)
INTRO=$(mktemp)
{
	echo "<!-- cluster-results:begin (written by bench/cluster.sh; edit outside these markers) -->"
	echo "### Results"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/cluster.sh$QFLAG\`."
	echo
	bench_machine_table "| PostgreSQL | $PGV |" "| MinIO | $MIV |" "| nginx | $NGV |"
	echo
	cat "$RESULT"
	echo "<!-- cluster-results:end -->"
} >"$BLOCK"
{
	echo "## Scale-out: PostgreSQL + MinIO (issue 4)"
	echo
	echo "packyard on PostgreSQL and MinIO (one or two nodes) next to the"
	echo "single-machine SQLite + fs setup, in the same run on the same corpus:"
	echo "how long an upload takes to become visible, how many uploads the nodes"
	echo "take together, and how fast they serve metadata and a large package"
	echo "compared with nginx serving the same bytes from disk."
	echo
} >"$INTRO"
bench_write_block "$OUT" cluster-results "$BLOCK" "$INTRO"
rm -f "$BLOCK" "$INTRO"
