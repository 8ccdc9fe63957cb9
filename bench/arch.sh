#!/usr/bin/env bash
# Runs the pacman upload-to-visible benchmark (issue 6) and writes the
# results: packyard against repo-add (default TMPDIR, and TMPDIR on tmpfs),
# signing included, on one corpus; each side signs with an RSA 3072 key
# (packyard's default) and, as packyard-ed25519 and repo-add-ed25519, with
# an Ed25519 key (repo-add-ed25519 at N ≤ 500 only).
#
#   bench/arch.sh           # full: N = 500 and 20,000, 50 samples per tool
#                           #   → section "pacman: upload to visible" of docs/benchmarks.md
#   bench/arch.sh -quick    # smoke: N = 100 and 500, 10 samples
#                           #   → $BENCH_WORK/benchmarks-arch-quick.md
#
# Extra arguments go to bench/archvisible (e.g. -v, -anchor-budget 20m,
# -tools packyard,packyard-ed25519,repo-add). BENCH_WORK (default
# /tmp/packyard-bench) holds the package corpus (built once by
# bench/archvisible and kept between runs), binaries and scratch data.
# BENCH_OUT overrides the output file. BENCH_REV=<commit> builds the
# server from that commit instead of the working tree. BENCH_SEED
# (default 1) is the corpus seed.
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
	SIZES="100,500"; SAMPLES=10
	OUT=${BENCH_OUT:-$WORK/benchmarks-arch-quick.md}
else
	SIZES="500,20000"; SAMPLES=50
	OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
fi
# One corpus for both modes: archtest.Corpus(n, seed) is a prefix of every
# larger corpus of the same seed, so the quick run reuses the full run's
# files.
CORPUS=$WORK/arch-corpus-seed$SEED
BIN=$WORK/bin
mkdir -p "$WORK" "$BIN"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for tool in repo-add bsdtar gpg gpgv; do
	if ! command -v "$tool" >/dev/null; then
		case $tool in
		repo-add) pkg=pacman-package-manager ;;
		bsdtar) pkg=libarchive-tools ;;
		*) pkg=gnupg ;;
		esac
		echo "arch.sh: $tool not found: apt-get install -y $pkg" >&2
		exit 1
	fi
done

bench_build_packyard
go build -o "$BIN/archvisible" ./bench/archvisible
bench_wait_quiet

echo "== pacman benchmark ($MODE)"
RESULT=$WORK/result-arch-$MODE.md
SCRATCH=$WORK/arch-scratch-$MODE
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
QUICK=()
if [[ $MODE == quick ]]; then QUICK=(-quick); fi
"$BIN/archvisible" "${QUICK[@]}" -corpus "$CORPUS" -seed "$SEED" -sizes "$SIZES" -samples "$SAMPLES" \
	-packyard "$BIN/packyard" -work "$SCRATCH" -out "$RESULT" "$@"
rm -rf "$SCRATCH"

RAV=$(repo-add --version 2>&1 | sed -n 's/^repo-add (pacman) //p' | head -1)
BTV=$(bsdtar --version | head -1)
GPGV=$(gpg --version | head -1)

QFLAG=""
if [[ $MODE == quick ]]; then QFLAG=" -quick"; fi
BLOCK=$(mktemp)
INTRO=$(mktemp)
{
	echo "<!-- arch-results:begin (written by bench/arch.sh; edit outside these markers) -->"
	echo "### Results"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/arch.sh$QFLAG\`."
	echo
	bench_machine_table "| repo-add | $RAV |" "| bsdtar | $BTV |" "| gpg | $GPGV |" \
		"| TMPDIR | ${TMPDIR:-/tmp} ($(findmnt -no FSTYPE -T "${TMPDIR:-/tmp}" 2>/dev/null || echo "?")) |"
	echo
	cat "$RESULT"
	echo "<!-- arch-results:end -->"
} >"$BLOCK"
{
	echo "## pacman: upload to visible (issue 6)"
	echo
	echo "How long one new package takes to become visible, signed, in a pacman"
	echo "repository of N packages: packyard against \`repo-add\` adding it to a"
	echo "database of the same N packages, on the same corpus in the same run,"
	echo "each signing with a key of the same algorithm (RSA 3072, and Ed25519)."
	echo
} >"$INTRO"
bench_write_block "$OUT" arch-results "$BLOCK" "$INTRO"
rm -f "$BLOCK" "$INTRO"
