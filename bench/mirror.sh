#!/usr/bin/env bash
# Runs the mirror-repository benchmark (issue 7) and writes the results:
# packyard's rpm and deb mirror repositories next to `dnf reposync` and
# `aptly mirror update`, in the same run, on the same upstreams (nginx on
# a loopback port serving a signed createrepo_c repository and a signed
# apt-ftparchive repository): the initial sync of N packages, then the
# incremental sync once 10 more are published, each timed with its peak
# RSS. bench/mirrorbench builds the upstreams once (kept in
# $BENCH_WORK/mirror-cache), starts every server itself and removes its
# scratch data afterwards.
#
#   bench/mirror.sh          # full: 2,000 packages per upstream, 5 samples (median)
#                            #   → section "Mirror repositories (issue 7)" of docs/benchmarks.md
#   bench/mirror.sh -quick   # smoke: 200 packages, 1 sample
#                            #   → $BENCH_WORK/benchmarks-mirror-quick.md
#
# Extra arguments go to bench/mirrorbench (e.g. -engines anchors to
# measure dnf reposync and aptly alone, -formats rpm, -samples 5, -n 5000).
# BENCH_WORK (default /tmp/packyard-bench) holds binaries, the upstream
# cache and scratch data. BENCH_OUT overrides the output file.
# BENCH_REV=<commit> builds the server from that commit instead of the
# working tree.
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
	OUT=${BENCH_OUT:-$WORK/benchmarks-mirror-quick.md}
else
	OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
fi
BIN=$WORK/bin
mkdir -p "$WORK" "$BIN"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
need() {
	if ! command -v "$1" >/dev/null && [[ ! -x $1 ]]; then
		echo "mirror.sh: $1 not found: apt-get install -y $2" >&2
		exit 1
	fi
}
need "$NGINX" nginx-light
need createrepo_c createrepo-c
need apt-ftparchive apt-utils
need dnf "dnf dnf-plugins-core"
need aptly aptly
need gpgv gpgv
need /usr/bin/time time
if ! dnf reposync --help 2>/dev/null | grep -q -- --download-metadata; then
	echo "mirror.sh: dnf reposync not found: apt-get install -y dnf-plugins-core" >&2
	exit 1
fi

# packyard is built unless -engines leaves it out (e.g. -engines anchors).
ENGINES=packyard
prev=""
for a in "$@"; do
	case $prev in -engines | --engines) ENGINES=$a ;; esac
	case $a in -engines=* | --engines=*) ENGINES=${a#*=} ;; esac
	prev=$a
done
PACKYARD=()
if [[ ,$ENGINES, == *,packyard,* || ,$ENGINES, == *,all,* ]]; then
	bench_build_packyard
	PACKYARD=(-packyard "$BIN/packyard")
else
	REV="not measured (-engines $ENGINES)"
fi
go build -o "$BIN/mirrorbench" ./bench/mirrorbench

bench_wait_quiet

echo "== mirror benchmark ($MODE)"
RESULT=$WORK/result-mirror-$MODE.md
SCRATCH=$WORK/mirror-scratch-$MODE
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
QUICK=()
if [[ $MODE == quick ]]; then QUICK=(-quick); fi
"$BIN/mirrorbench" "${QUICK[@]}" "${PACKYARD[@]}" -nginx "$NGINX" -cache "$WORK/mirror-cache" \
	-work "$SCRATCH" -out "$RESULT" "$@"
rm -rf "$SCRATCH"

NGV=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
DNFV=$(dpkg-query -W -f='${Version}' dnf 2>/dev/null || echo "?")
DPCV=$(dpkg-query -W -f='${Version}' dnf-plugins-core 2>/dev/null || echo "?")
APTLYV=$(dpkg-query -W -f='${Version}' aptly 2>/dev/null || echo "?")
CRV=$(dpkg-query -W -f='${Version}' createrepo-c 2>/dev/null || echo "?")
APV=$(dpkg-query -W -f='${Version}' apt-utils 2>/dev/null || echo "?")

QFLAG=""
if [[ $MODE == quick ]]; then QFLAG=" -quick"; fi
ARGS=""
if (($#)); then ARGS=" $*"; fi
BLOCK=$(mktemp)
INTRO=$(mktemp)
{
	echo "<!-- mirror-results:begin (written by bench/mirror.sh; edit outside these markers) -->"
	echo "### Results"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/mirror.sh$QFLAG$ARGS\`."
	echo
	bench_machine_table "| dnf reposync | dnf $DNFV, dnf-plugins-core $DPCV (Debian packages) |" \
		"| aptly | $APTLYV (Debian package) |" "| upstream | $NGV; createrepo_c $CRV; apt-ftparchive (apt-utils $APV) |"
	echo
	cat "$RESULT"
	echo "<!-- mirror-results:end -->"
} >"$BLOCK"
{
	echo "## Mirror repositories (issue 7)"
	echo
	echo "packyard's mirror repositories (a full copy of an upstream repository,"
	echo "kept up to date by \`packyard mirror sync\`) next to the tools that mirror"
	echo "the same upstream, in the same run: \`dnf reposync\` for an RPM upstream and"
	echo "\`aptly mirror update\` for an APT one. First the initial sync of 2,000"
	echo "packages over loopback, then an incremental sync once 10 new packages are"
	echo "published, each timed with its peak RSS. Targets: initial sync ≤ 1.0× the"
	echo "anchor, incremental ≤ 2 s, peak RSS ≤ 100 MiB."
	echo
} >"$INTRO"
bench_write_block "$OUT" mirror-results "$BLOCK" "$INTRO"
rm -f "$BLOCK" "$INTRO"
