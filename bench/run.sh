#!/usr/bin/env bash
# Runs packyard's publishing benchmarks and writes the results.
#
#   bench/run.sh            # full: N = 2,000 and 20,000, 50 samples, 1 GiB upload
#                           #   → docs/benchmarks.md (15–30 minutes on 2 cores)
#   bench/run.sh -quick     # smoke: N = 200 and 2,000, 10 samples, 64 MiB upload
#                           #   → $BENCH_WORK/benchmarks-quick.md
#
# Extra arguments go to bench/visible (e.g. -anchor-samples-large 20, -v).
# BENCH_WORK (default /tmp/packyard-bench) holds the corpus (kept between
# runs: the 1 GiB package is built once), binaries and scratch data.
# BENCH_OUT overrides the output file. BENCH_REV=<commit> builds the server
# from that commit instead of the working tree.
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
	SIZES="200,2000"; SAMPLES=10; BIGSIZE=64MiB
	OUT=${BENCH_OUT:-$WORK/benchmarks-quick.md}
else
	SIZES="2000,20000"; SAMPLES=50; BIGSIZE=1GiB
	OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
fi
LARGEST=${SIZES##*,}
N=$((LARGEST + SAMPLES))
CORPUS=$WORK/corpus-$MODE
BIN=$WORK/bin
mkdir -p "$WORK" "$BIN"

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
go build -o "$BIN/corpus" ./bench/corpus
go build -o "$BIN/visible" ./bench/visible

echo "== corpus: $N packages + 1 × $BIGSIZE in $CORPUS"
/usr/bin/time -f "corpus: %e s wall, %M KiB max RSS" \
	"$BIN/corpus" -n "$N" -seed "$SEED" -out "$CORPUS" -big 1 -bigsize "$BIGSIZE"

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

echo "== benchmark ($MODE)"
RESULT=$WORK/result-$MODE.md
SCRATCH=$WORK/scratch-$MODE
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
QUICK=()
if [[ $MODE == quick ]]; then QUICK=(-quick); fi
"$BIN/visible" "${QUICK[@]}" -corpus "$CORPUS" -sizes "$SIZES" -samples "$SAMPLES" \
	-packyard "$BIN/packyard" -work "$SCRATCH" -out "$RESULT" "$@"
rm -rf "$SCRATCH"

# Machine description.
CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
FS=$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || echo "?")
DF=$(df -h "$WORK" | tail -1 | awk '{print $1 " (" $2 " total, " $4 " free)"}')
GOV=$(go version | sed 's/^go version //')
CRV=$(createrepo_c --version | head -1)

QFLAG=""
if [[ $MODE == quick ]]; then QFLAG=" -quick"; fi
BLOCK=$(mktemp)
{
	echo "<!-- results:begin (written by bench/run.sh; edit outside these markers) -->"
	echo "## Results"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/run.sh$QFLAG\`."
	echo
	echo "| machine | |"
	echo "| --- | --- |"
	echo "| CPU | $(nproc) cores ($CPU) |"
	echo "| memory | $MEM |"
	echo "| kernel | $(uname -r) |"
	echo "| disk | $DF, $FS |"
	echo "| Go | $GOV |"
	echo "| createrepo_c | $CRV |"
	echo "| packyard | $REV |"
	echo
	cat "$RESULT"
	echo "<!-- results:end -->"
} >"$BLOCK"

if [[ -f "$OUT" ]] && grep -q '<!-- results:begin' "$OUT" && grep -q '<!-- results:end -->' "$OUT"; then
	# Replace only the generated block, keeping hand-written text around it.
	awk -v block="$BLOCK" '
		/<!-- results:begin/ { while ((getline l < block) > 0) print l; skip = 1; next }
		/<!-- results:end -->/ { skip = 0; next }
		!skip { print }
	' "$OUT" >"$OUT.tmp"
	mv "$OUT.tmp" "$OUT"
else
	mkdir -p "$(dirname "$OUT")"
	{
		echo "# Benchmarks: publishing cost"
		echo
		echo "How long a new RPM takes to become visible to clients, packyard against"
		echo "createrepo_c on the same corpus in the same run, and packyard's memory."
		echo
		cat "$BLOCK"
		echo
		echo "## How to reproduce"
		echo
		echo '```'
		echo 'bench/run.sh          # full run, rewrites the results block of docs/benchmarks.md'
		echo 'bench/run.sh -quick   # smoke run (N = 200 and 2,000), writes /tmp/packyard-bench/benchmarks-quick.md'
		echo '```'
	} >"$OUT"
fi
rm -f "$BLOCK"
echo "== wrote $OUT"
