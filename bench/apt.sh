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

for tool in reprepro aptly gpg gpgv; do
	if ! command -v "$tool" >/dev/null; then
		pkg=$tool
		[[ $tool == gpg* ]] && pkg=gnupg
		echo "apt.sh: $tool not found: apt-get install -y $pkg" >&2
		exit 1
	fi
done

# The server is built from the working tree, or with BENCH_REV=<commit> from
# exactly that commit (git archive), so that the figures name the code.
export CGO_ENABLED=0
if [[ -n "${BENCH_REV:-}" ]]; then
	REV=$(git -C "$ROOT" rev-parse --short "$BENCH_REV")
	echo "== building packyard $REV from git archive (CGO_ENABLED=0)"
	rm -rf "$WORK/src"
	mkdir -p "$WORK/src"
	git -C "$ROOT" archive "$REV" | tar -x -C "$WORK/src"
	(cd "$WORK/src" && go build -o "$BIN/packyard" ./cmd/packyard)
else
	REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
	if [[ -n "$(git -C "$ROOT" status --porcelain -- cmd internal go.mod go.sum 2>/dev/null | head -1)" ]]; then
		REV="$REV + uncommitted changes"
	fi
	echo "== building packyard from the working tree ($REV) (CGO_ENABLED=0)"
	go build -o "$BIN/packyard" ./cmd/packyard
fi
go build -o "$BIN/aptvisible" ./bench/aptvisible

# Other work on the machine skews every figure: wait (up to BENCH_WAIT_QUIET
# seconds, default 900 for a full run, 0 for -quick) until the cores are
# mostly idle. The report states how much CPU other processes used anyway.
busy_pct() {
	local a b
	a=($(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat))
	sleep 5
	b=($(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat))
	echo $(( 100 * (b[0] - a[0]) / (b[0] - a[0] + b[1] - a[1] + 1) ))
}
WAIT_QUIET=${BENCH_WAIT_QUIET:-$([[ $MODE == full ]] && echo 900 || echo 0)}
waited=0
while (( WAIT_QUIET > 0 )); do
	pct=$(busy_pct)
	if (( pct < 20 )); then break; fi
	waited=$((waited + 5))
	if (( waited >= WAIT_QUIET )); then
		echo "== machine still ${pct}% busy after ${waited} s; running anyway"
		break
	fi
	echo "== machine ${pct}% busy; waiting for it to quieten (${waited}/${WAIT_QUIET} s)"
done

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

# Machine description.
CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
FS=$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || echo "?")
DF=$(df -h "$WORK" | tail -1 | awk '{print $1 " (" $2 " total, " $4 " free)"}')
GOV=$(go version | sed 's/^go version //')
RRV=$(reprepro --version 2>&1 | sed 's/^reprepro: This is reprepro version //' | head -1)
APV=$(aptly version | sed 's/^aptly version: //')
GPGV=$(gpg --version | head -1)

QFLAG=""
if [[ $MODE == quick ]]; then QFLAG=" -quick"; fi
BLOCK=$(mktemp)
{
	echo "<!-- apt-results:begin (written by bench/apt.sh; edit outside these markers) -->"
	echo "### Results"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/apt.sh$QFLAG\`."
	echo
	echo "| machine | |"
	echo "| --- | --- |"
	echo "| CPU | $(nproc) cores ($CPU) |"
	echo "| memory | $MEM |"
	echo "| kernel | $(uname -r) |"
	echo "| disk | $DF, $FS |"
	echo "| Go | $GOV |"
	echo "| reprepro | $RRV |"
	echo "| aptly | $APV |"
	echo "| gpg | $GPGV |"
	echo "| packyard | $REV |"
	echo
	cat "$RESULT"
	echo "<!-- apt-results:end -->"
} >"$BLOCK"

if [[ -f "$OUT" ]] && grep -q '<!-- apt-results:begin' "$OUT" && grep -q '<!-- apt-results:end -->' "$OUT"; then
	# Replace only the generated block, keeping hand-written text around it.
	awk -v block="$BLOCK" '
		/<!-- apt-results:begin/ { while ((getline l < block) > 0) print l; skip = 1; next }
		/<!-- apt-results:end -->/ { skip = 0; next }
		!skip { print }
	' "$OUT" >"$OUT.tmp"
	mv "$OUT.tmp" "$OUT"
else
	# A new section at the end of the file (or a new file).
	mkdir -p "$(dirname "$OUT")"
	{
		if [[ -s "$OUT" ]]; then echo; fi
		echo "## APT: upload to visible (issue 3)"
		echo
		echo "How long one new .deb takes to become visible, signed, in an APT repository"
		echo "of N packages: packyard against \`reprepro includedeb\` and \`aptly repo add\` +"
		echo "\`aptly publish update\`, on the same corpus in the same run."
		echo
		cat "$BLOCK"
	} >>"$OUT"
fi
rm -f "$BLOCK"
echo "== wrote $OUT"
