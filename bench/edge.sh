#!/usr/bin/env bash
# Runs the edge replication benchmark (issue 5) and writes the results:
# a fresh `packyard agent` copying a repository of N packages next to
# `rsync -a` of the same tree over loopback, the replication lag of single
# uploads (p50/p95/p99), with one edge and with all agents following, and
# the origin's CPU and memory while 20 agents follow it.
#
#   bench/edge.sh          # full: N = 20,000, 100 uploads, 20 agents
#                          #   → section "Edge replication" of docs/benchmarks.md
#   bench/edge.sh -quick   # smoke: N = 1,000, 20 uploads, 5 agents
#                          #   → $BENCH_WORK/benchmarks-edge-quick.md
#
# Extra arguments go to bench/edgelag. BENCH_WORK (default
# /tmp/packyard-bench) holds the corpus (kept between runs), binaries and
# scratch data; BENCH_OUT overrides the output file; BENCH_REV=<commit>
# builds the server from that commit; BENCH_SEED (default 1) is the corpus
# seed.
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
	N=1000 UPLOADS=20 AGENTS=5
	OUT=${BENCH_OUT:-$WORK/benchmarks-edge-quick.md}
else
	N=20000 UPLOADS=100 AGENTS=20
	OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
fi
NEED=$((N + 2 * UPLOADS + 1))
CORPUS=$WORK/edge-corpus-$NEED
BIN=$WORK/bin
mkdir -p "$WORK" "$BIN"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

if ! command -v rsync >/dev/null; then
	echo "edge.sh: rsync not found: apt-get install -y rsync" >&2
	exit 1
fi

bench_build_packyard
go build -o "$BIN/corpus" ./bench/corpus
go build -o "$BIN/edgelag" ./bench/edgelag

echo "== corpus: $NEED packages in $CORPUS"
"$BIN/corpus" -n "$NEED" -seed "$SEED" -out "$CORPUS"

bench_wait_quiet

echo "== edge replication benchmark ($MODE)"
RESULT=$WORK/result-edge-$MODE.md
SCRATCH=$WORK/edge-scratch-$MODE
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
"$BIN/edgelag" -corpus "$CORPUS" -packyard "$BIN/packyard" -work "$SCRATCH" \
	-n "$N" -uploads "$UPLOADS" -agents "$AGENTS" -out "$RESULT" "$@"
rm -rf "$SCRATCH"

QFLAG=""
if [[ $MODE == quick ]]; then QFLAG=" -quick"; fi
BLOCK=$(mktemp)
INTRO=$(mktemp)
{
	echo "<!-- edge-results:begin (written by bench/edge.sh; edit outside these markers) -->"
	echo "### Results"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/edge.sh$QFLAG\`."
	echo
	bench_machine_table "| rsync | $(rsync --version | head -1) |"
	echo
	cat "$RESULT"
	echo "<!-- edge-results:end -->"
} >"$BLOCK"
{
	echo "## Edge replication (issue 5)"
	echo
	echo "One origin and \`packyard agent\` edges on the same machine, talking over"
	echo "loopback: how long a fresh edge takes to copy a repository of N RPM"
	echo "packages (agent start until it serves the origin's generation), next to"
	echo "\`rsync -a\` from an rsync daemon of the tree the edge ended with (three"
	echo "fresh edges, each followed by an rsync, in turn; medians); the lag"
	echo "from an upload answered at the origin until an edge serves the new"
	echo "generation (its pointer files written, as its /healthz reports), first"
	echo "with that edge alone (in production each edge is its own machine), then"
	echo "with all the agents following on this machine; and what the origin"
	echo "spends while all the agents follow it."
	echo
} >"$INTRO"
bench_write_block "$OUT" edge-results "$BLOCK" "$INTRO"
rm -f "$BLOCK" "$INTRO"
