#!/usr/bin/env bash
# Runs the proxy-repository benchmark (issue 8) and writes the results:
# packyard's deb proxy repository next to nginx proxy_cache and
# apt-cacher-ng, in the same run, in front of the same upstream (nginx
# serving a signed APT repository with a ~3 KB InRelease and a 20 MiB
# package). bench/proxybench starts every server itself on free loopback
# ports and removes them afterwards.
#
#   bench/proxy.sh          # full: 5 cold samples, 5 rounds of 10 s warm runs (16 clients on InRelease,
#                           #   4 on the package), 3 fan-in runs of 64 clients
#                           #   → section "Proxy repositories (issue 8)" of docs/benchmarks.md
#   bench/proxy.sh -quick   # smoke: 2 cold samples, 3 s warm runs, 1 fan-in run
#                           #   → $BENCH_WORK/benchmarks-proxy-quick.md
#
# Extra arguments go to bench/proxybench (e.g. -meta-clients 32,
# -wan-rate 25m, -fan-in 128, -engines packyard,nginx). BENCH_WORK
# (default /tmp/packyard-bench) holds binaries and scratch data. BENCH_OUT
# overrides the output file. BENCH_REV=<commit> builds the server from that
# commit instead of the working tree.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=full
if [[ "${1:-}" == "-quick" || "${1:-}" == "--quick" ]]; then
	MODE=quick
	shift
fi
WORK=${BENCH_WORK:-/tmp/packyard-bench}
if [[ $MODE == quick ]]; then
	OUT=${BENCH_OUT:-$WORK/benchmarks-proxy-quick.md}
else
	OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
fi
BIN=$WORK/bin
mkdir -p "$WORK" "$BIN"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ACNG=$(command -v apt-cacher-ng || echo /usr/sbin/apt-cacher-ng)
if [[ ! -x $NGINX ]]; then
	echo "proxy.sh: nginx not found: apt-get install -y nginx-light" >&2
	exit 1
fi
if [[ ! -x $ACNG ]]; then
	echo "proxy.sh: apt-cacher-ng not found: apt-get install -y apt-cacher-ng" >&2
	echo "  (the package's service need not run: the benchmark starts its own instances)" >&2
	exit 1
fi
if ! command -v apt-ftparchive >/dev/null; then
	echo "proxy.sh: apt-ftparchive not found: apt-get install -y apt-utils" >&2
	exit 1
fi

bench_build_packyard
go build -o "$BIN/proxybench" ./bench/proxybench

bench_wait_quiet

echo "== proxy benchmark ($MODE)"
RESULT=$WORK/result-proxy-$MODE.md
SCRATCH=$WORK/proxy-scratch-$MODE
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
QUICK=()
if [[ $MODE == quick ]]; then QUICK=(-quick); fi
"$BIN/proxybench" "${QUICK[@]}" -packyard "$BIN/packyard" -nginx "$NGINX" -apt-cacher-ng "$ACNG" \
	-work "$SCRATCH" -out "$RESULT" "$@"
rm -rf "$SCRATCH"

NGV=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
ACV=$(dpkg-query -W -f='${Version}' apt-cacher-ng 2>/dev/null || echo "?")
APV=$(dpkg-query -W -f='${Version}' apt-utils 2>/dev/null || echo "?")

QFLAG=""
if [[ $MODE == quick ]]; then QFLAG=" -quick"; fi
BLOCK=$(mktemp)
INTRO=$(mktemp)
{
	echo "<!-- proxy-results:begin (written by bench/proxy.sh; edit outside these markers) -->"
	echo "### Results"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/proxy.sh$QFLAG\`."
	echo
	bench_machine_table "| nginx | $NGV |" "| apt-cacher-ng | $ACV (Debian package) |" "| apt-ftparchive | apt-utils $APV |"
	echo
	cat "$RESULT"
	echo "<!-- proxy-results:end -->"
} >"$BLOCK"
{
	echo "## Proxy repositories (issue 8)"
	echo
	echo "packyard's proxy repository (a pull-through cache of an APT mirror) next"
	echo "to nginx \`proxy_cache\` and apt-cacher-ng, in the same run, in front of the"
	echo "same upstream: how long the first fetch of a metadata file and of a"
	echo "package takes, how fast each serves them from its cache, and how long 64"
	echo "clients that ask for the same uncached package at once wait."
	echo
} >"$INTRO"
bench_write_block "$OUT" proxy-results "$BLOCK" "$INTRO"
rm -f "$BLOCK" "$INTRO"
