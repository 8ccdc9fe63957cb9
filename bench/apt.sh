#!/usr/bin/env bash
# Runs the APT upload-to-visible benchmark (issue 3) and writes the results:
# packyard against reprepro and aptly, signing included, on one corpus.
#
#   bench/apt.sh            # full: N = 2,000 and 20,000, 50 samples per tool
#                           #   → section "APT: upload to visible" of docs/benchmarks.md
#   bench/apt.sh -quick     # smoke: N = 200 and 2,000, 10 samples
#                           #   → $BENCH_WORK/benchmarks-apt-quick.md
#
# Extra arguments go to bench/aptvisible (e.g. -v, -anchor-budget 10m,
# -tools packyard,reprepro). BENCH_WORK (default /tmp/packyard-bench) holds
# the .deb corpus (built once by bench/aptvisible and kept between runs),
# binaries and scratch data. BENCH_OUT overrides the output file.
# BENCH_REV=<commit> builds the server from that commit instead of the
# working tree. BENCH_SEED (default 1) is the corpus seed.
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
	SIZES="200,2000"; SAMPLES=10
	OUT=${BENCH_OUT:-$WORK/benchmarks-apt-quick.md}
else
	SIZES="2000,20000"; SAMPLES=50
	OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
fi
# One corpus for both modes: debtest.Corpus(n, seed) is a prefix of every
# larger corpus of the same seed, so the quick run reuses the full run's files.
CORPUS=$WORK/deb-corpus-seed$SEED
BIN=$WORK/bin
mkdir -p "$WORK" "$BIN"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for tool in reprepro aptly gpg gpgv; do
	if ! command -v "$tool" >/dev/null; then
		pkg=$tool
		[[ $tool == gpg* ]] && pkg=gnupg
		echo "apt.sh: $tool not found: apt-get install -y $pkg" >&2
		exit 1
	fi
done

bench_build_packyard
go build -o "$BIN/aptvisible" ./bench/aptvisible
bench_wait_quiet

echo "== APT benchmark ($MODE)"
RESULT=$WORK/result-apt-$MODE.md
SCRATCH=$WORK/apt-scratch-$MODE
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
QUICK=()
if [[ $MODE == quick ]]; then QUICK=(-quick); fi
"$BIN/aptvisible" "${QUICK[@]}" -corpus "$CORPUS" -seed "$SEED" -sizes "$SIZES" -samples "$SAMPLES" \
	-packyard "$BIN/packyard" -work "$SCRATCH" -out "$RESULT" "$@"
rm -rf "$SCRATCH"

RRV=$(reprepro --version 2>&1 | sed 's/^reprepro: This is reprepro version //' | head -1)
APV=$(aptly version | sed 's/^aptly version: //')
GPGV=$(gpg --version | head -1)

QFLAG=""
if [[ $MODE == quick ]]; then QFLAG=" -quick"; fi
BLOCK=$(mktemp)
INTRO=$(mktemp)
{
	echo "<!-- apt-results:begin (written by bench/apt.sh; edit outside these markers) -->"
	echo "### Results"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/apt.sh$QFLAG\`."
	echo
	bench_machine_table "| reprepro | $RRV |" "| aptly | $APV |" "| gpg | $GPGV |"
	echo
	cat "$RESULT"
	echo "<!-- apt-results:end -->"
} >"$BLOCK"
{
	echo "## APT: upload to visible (issue 3)"
	echo
	echo "How long one new .deb takes to become visible, signed, in an APT repository"
	echo "of N packages: packyard against \`reprepro includedeb\` and \`aptly repo add\` +"
	echo "\`aptly publish update\`, on the same corpus in the same run."
	echo
} >"$INTRO"
bench_write_block "$OUT" apt-results "$BLOCK" "$INTRO"
rm -f "$BLOCK" "$INTRO"
