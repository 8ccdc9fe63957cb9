# Shared by the benchmark scripts (bench/apt.sh, bench/arch.sh): source it
# after setting ROOT (the module root), WORK, BIN and MODE (full or quick).
#
#   bench_build_packyard       builds $BIN/packyard and sets REV
#   bench_wait_quiet           waits for the machine to be mostly idle
#   bench_machine_table ROWS…  prints the machine table, extra rows last
#   bench_write_block OUT TAG BLOCK INTRO
#                              puts BLOCK, which starts and ends with the
#                              TAG markers, into OUT; a new section (INTRO
#                              then BLOCK) at its end the first time

# bench_build_packyard builds the server from the working tree, or with
# BENCH_REV=<commit> from exactly that commit (git archive), so that the
# figures name the code.
bench_build_packyard() {
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
		(cd "$ROOT" && go build -o "$BIN/packyard" ./cmd/packyard)
	fi
}

# busy_pct prints the machine's busy share (percent) over 5 seconds.
busy_pct() {
	local a b
	a=($(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat))
	sleep 5
	b=($(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat))
	echo $(( 100 * (b[0] - a[0]) / (b[0] - a[0] + b[1] - a[1] + 1) ))
}

# bench_wait_quiet: other work on the machine skews every figure, so wait
# (up to BENCH_WAIT_QUIET seconds, default 900 for a full run, 0 for
# -quick) until the cores are mostly idle. The reports state how much CPU
# other processes used anyway.
bench_wait_quiet() {
	local wait_quiet waited=0 pct
	wait_quiet=${BENCH_WAIT_QUIET:-$([[ $MODE == full ]] && echo 900 || echo 0)}
	while (( wait_quiet > 0 )); do
		pct=$(busy_pct)
		if (( pct < 20 )); then break; fi
		waited=$((waited + 5))
		if (( waited >= wait_quiet )); then
			echo "== machine still ${pct}% busy after ${waited} s; running anyway"
			break
		fi
		echo "== machine ${pct}% busy; waiting for it to quieten (${waited}/${wait_quiet} s)"
	done
}

# bench_machine_table prints the table that describes the machine, the Go
# toolchain and the packyard revision ($REV), with the extra rows given
# ("| tool | version |") before packyard's.
bench_machine_table() {
	local cpu mem fs df
	cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
	mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
	fs=$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || echo "?")
	df=$(df -h "$WORK" | tail -1 | awk '{print $1 " (" $2 " total, " $4 " free)"}')
	echo "| machine | |"
	echo "| --- | --- |"
	echo "| CPU | $(nproc) cores ($cpu) |"
	echo "| memory | $mem |"
	echo "| kernel | $(uname -r) |"
	echo "| disk | $df, $fs |"
	echo "| Go | $(go version | sed 's/^go version //') |"
	local row
	for row in "$@"; do echo "$row"; done
	echo "| packyard | $REV |"
}

# bench_write_block OUT TAG BLOCK INTRO replaces, in OUT, the lines from
# "<!-- TAG:begin" to "<!-- TAG:end -->" with the file BLOCK, keeping the
# hand-written text around them; if OUT has no such markers, it appends
# the file INTRO and then BLOCK.
bench_write_block() {
	local out=$1 tag=$2 block=$3 intro=$4
	if [[ -f "$out" ]] && grep -q "<!-- $tag:begin" "$out" && grep -q "<!-- $tag:end -->" "$out"; then
		awk -v block="$block" -v begin="<!-- $tag:begin" -v end="<!-- $tag:end -->" '
			index($0, begin) == 1 { while ((getline l < block) > 0) print l; skip = 1; next }
			index($0, end) == 1 { skip = 0; next }
			!skip { print }
		' "$out" >"$out.tmp"
		mv "$out.tmp" "$out"
	else
		mkdir -p "$(dirname "$out")"
		{
			if [[ -s "$out" ]]; then echo; fi
			cat "$intro"
			cat "$block"
		} >>"$out"
	fi
	echo "== wrote $out"
}
