#!/usr/bin/env bash
# bench-compare.sh - crew against its peers, one invocation, one markdown table.
#
#   tools/bench-compare.sh [--workers N] [--runs R] [--quick] [--only LIST]
#                          [--peers LIST] [--timeout S] [--no-build]
#
#   --workers N   worker threads for every runtime (default 2); the yield
#                 workload always runs with 1 (it measures a switch, not scaling)
#   --runs R      runs per runtime and workload (default 3); the table shows
#                 medians of "seconds"
#   --quick       about ten times smaller n everywhere, for a fast demo
#   --only LIST   workloads, comma-separated (spawn,fib,sleepers,pingpong,yield)
#   --peers LIST  peers, comma-separated (go,tokio,tbb,asyncio; default: all
#                 that are built)
#   --timeout S   give up on one run after S seconds (default 300)
#   --no-build    don't run tools/build-peers.sh first
#
# Runs build/bench/crew-bench (or $CREW_BENCH) and build/peers/<peer>-bench
# (tools/build-peers.sh), interleaving the runtimes run after run so that a
# slow drift of the machine hits all of them alike. Every JSON line goes to
# build/bench-results.jsonl (rewritten by each invocation: results count only
# against crew from the same invocation); stderr of failed runs goes to
# build/bench-errors.log. $CREW_BUILD_DIR replaces build/ in all these paths.
# Needs bash, awk and coreutils only.
#
# Where a peer is too slow for the full n (asyncio's fib), it runs at a smaller
# n, crew runs at that n too, and the cell and its ratio say "(n=...)".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The build directory: $CREW_BUILD_DIR (relative to the current directory), else build/.
BUILD_DIR=${CREW_BUILD_DIR:-$ROOT/build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$PWD/$BUILD_DIR
CREW=${CREW_BENCH:-$BUILD_DIR/bench/crew-bench}
PEER_DIR=$BUILD_DIR/peers
RESULTS=$BUILD_DIR/bench-results.jsonl
ERRORS=$BUILD_DIR/bench-errors.log
STATUS=$(mktemp) # "runtime workload n workers FAIL|TIMEOUT|UNSUPPORTED" lines
trap 'rm -f "$STATUS"' EXIT

ALL_WORKLOADS=(spawn fib sleepers pingpong yield)
ALL_PEERS=(go tokio tbb asyncio)
WORKERS=2 RUNS=3 QUICK=0 TIMEOUT=300 BUILD=1
WORKLOADS=("${ALL_WORKLOADS[@]}")
PEERS=()

die() { echo "bench-compare: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -/{/^set -/!p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

is_count() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0)); }

parse_args() {
	while (($#)); do
		case $1 in
		--workers) is_count "${2:-}" || die "--workers needs a positive number"; WORKERS=$2; shift 2 ;;
		--runs) is_count "${2:-}" || die "--runs needs a positive number"; RUNS=$2; shift 2 ;;
		--timeout) is_count "${2:-}" || die "--timeout needs a positive number"; TIMEOUT=$2; shift 2 ;;
		--quick) QUICK=1; shift ;;
		--no-build) BUILD=0; shift ;;
		--only) [[ -n ${2:-} ]] || die "--only needs a list"; IFS=, read -ra WORKLOADS <<<"$2"; shift 2 ;;
		--peers) [[ -n ${2:-} ]] || die "--peers needs a list"; IFS=, read -ra PEERS <<<"$2"; shift 2 ;;
		-h | --help) usage 0 ;;
		*) echo "bench-compare: unknown option '$1'" >&2; usage 2 >&2 ;;
		esac
	done
	local w p
	for w in "${WORKLOADS[@]}"; do
		[[ " ${ALL_WORKLOADS[*]} " == *" $w "* ]] || die "unknown workload '$w'"
	done
	for p in "${PEERS[@]}"; do
		[[ " ${ALL_PEERS[*]} " == *" $p "* ]] || die "unknown peer '$p'"
	done
}

# The n of a workload: the contract's sizes, or about a tenth with --quick.
workload_n() {
	local full quick
	case $1 in
	spawn) full=1000000 quick=100000 ;;
	fib) full=30 quick=25 ;;
	sleepers) full=100000 quick=10000 ;;
	pingpong) full=1000000 quick=100000 ;;
	yield) full=10000000 quick=1000000 ;;
	esac
	((QUICK)) && echo "$quick" || echo "$full"
}

# A peer's own n where the row's n would take it minutes (CPython's fib(30)
# spawns 1.6M tasks); empty when it runs at the row's n.
peer_n() {
	local peer=$1 workload=$2
	if [[ $peer == asyncio && $workload == fib ]]; then
		((QUICK)) && echo 20 || echo 25
	fi
}

workload_workers() { [[ $1 == yield ]] && echo 1 || echo "$WORKERS"; }

binary_of() { [[ $1 == crew ]] && echo "$CREW" || echo "$PEER_DIR/$1-bench"; }

find_crew() {
	[[ -x $CREW ]] && return 0
	if [[ -z ${CREW_BENCH:-} && -f $BUILD_DIR/CMakeCache.txt ]]; then
		cmake --build "$BUILD_DIR" --target crew-bench >/dev/null 2>&1
		[[ -x $CREW ]] && return 0
	fi
	die "no $CREW; build it first: cmake -S . -B build -G Ninja && cmake --build build"
}

# Builds the peers (quietly) and keeps those that exist; with --peers, missing
# ones are an error, otherwise they are just left out.
find_peers() {
	local wanted=("${PEERS[@]}") p
	((${#wanted[@]})) || wanted=("${ALL_PEERS[@]}")
	if ((BUILD)); then
		local IFS=,
		"$ROOT/tools/build-peers.sh" --only "${wanted[*]}" ||
			echo "bench-compare: some peers did not build; going on without them" >&2
	fi
	PEERS=()
	for p in "${wanted[@]}"; do
		if [[ -x $PEER_DIR/$p-bench ]]; then
			PEERS+=("$p")
		else
			echo "bench-compare: no $PEER_DIR/$p-bench, leaving $p out" >&2
		fi
	done
}

unsupported() { grep -q "^$1 $2 $3 $4 UNSUPPORTED\$" "$STATUS"; }

# run_one RUNTIME WORKLOAD N WORKERS: one run; its JSON line goes to RESULTS,
# anything else to STATUS (exit 3 means "workload not supported" by a peer).
run_one() {
	local runtime=$1 workload=$2 n=$3 workers=$4 out err status
	unsupported "$@" && return 0
	err=$(mktemp)
	out=$(timeout --kill-after=5 "$TIMEOUT" "$(binary_of "$runtime")" \
		"$workload" --workers "$workers" --n "$n" 2>"$err")
	status=$?
	if ((status == 0)) && [[ $out == "{"*'"seconds":'*"}" ]]; then
		echo "$out" >>"$RESULTS"
	elif ((status == 3)); then
		echo "$runtime $workload $n $workers UNSUPPORTED" >>"$STATUS"
	else
		local what=FAIL
		((status == 124 || status == 137)) && what=TIMEOUT
		echo "$runtime $workload $n $workers $what" >>"$STATUS"
		{
			echo "== $runtime $workload --workers $workers --n $n: exit $status"
			cat "$err"
			[[ -n $out ]] && echo "stdout: $out"
		} >>"$ERRORS"
	fi
	rm -f "$err"
}

# The (runtime, n) pairs one workload needs: crew and every peer at the row's
# n, plus crew again at each smaller n a peer runs at.
jobs_of() {
	local workload=$1 n=$2 p pn
	echo "crew $n"
	for p in "${PEERS[@]}"; do
		pn=$(peer_n "$p" "$workload")
		echo "$p ${pn:-$n}"
		[[ -n $pn && $pn != "$n" ]] && echo "crew $pn"
	done
}

run_all() {
	: >"$RESULTS"
	: >"$ERRORS"
	local workload n workers r runtime jn jobs
	for workload in "${WORKLOADS[@]}"; do
		n=$(workload_n "$workload")
		workers=$(workload_workers "$workload")
		jobs=$(jobs_of "$workload" "$n" | awk '!seen[$0]++')
		for ((r = 1; r <= RUNS; r++)); do
			echo "bench-compare: $workload n=$n workers=$workers run $r/$RUNS" >&2
			while read -r runtime jn; do
				run_one "$runtime" "$workload" "$jn" "$workers"
			done <<<"$jobs"
		done
	done
}

# Reads STATUS and RESULTS, prints the markdown table.
print_table() {
	local rows="" workload
	for workload in "${WORKLOADS[@]}"; do
		local spec p overrides=""
		spec="$workload:$(workload_n "$workload"):$(workload_workers "$workload")"
		for p in "${PEERS[@]}"; do overrides+="$p=$(peer_n "$p" "$workload"),"; done
		rows+="$spec:$overrides;"
	done
	awk -v rows="$rows" -v peers="${PEERS[*]}" -f <(table_awk) "$STATUS" "$RESULTS"
}

table_awk() {
	cat <<'AWK'
function num(line, key,    s) {
	if (!match(line, "\"" key "\":-?[0-9.eE+]+")) return ""
	s = substr(line, RSTART, RLENGTH); sub(/^[^:]*:/, "", s); return s + 0
}
function str(line, key,    s) {
	if (!match(line, "\"" key "\":\"[^\"]*\"")) return ""
	s = substr(line, RSTART, RLENGTH); sub(/^[^:]*:"/, "", s); sub(/"$/, "", s); return s
}
function median(key, what,    n, i, j, v, a) {
	n = cnt[what, key]
	if (!n) return ""
	for (i = 1; i <= n; i++) a[i] = val[what, key, i]
	for (i = 2; i <= n; i++) {          # insertion sort: n is a handful of runs
		v = a[i]
		for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
		a[j + 1] = v
	}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function secs(v) { return v == "" ? "" : sprintf(v < 0.01 ? "%.5f" : "%.3f", v) }
# What a cell shows when there is no number: why.
function missing(rt, w, n, wk,    k) {
	k = status[rt, w, n, wk]
	return k == "UNSUPPORTED" ? "n/s" : k == "TIMEOUT" ? "timeout" : k == "FAIL" ? "FAIL" : "-"
}
FILENAME == ARGV[1] { if (NF == 5) status[$1, $2, $3, $4] = $5; next }
/^\{/ {
	key = str($0, "runtime") SUBSEP str($0, "bench") SUBSEP num($0, "n") SUBSEP num($0, "workers")
	i = ++cnt["s", key]; val["s", key, i] = num($0, "seconds")
	i = ++cnt["r", key]; val["r", key, i] = num($0, "rss_mb")
}
END {
	np = split(peers, peer, " ")
	head = "| workload | n | workers | crew s |"
	rule = "|---|---:|---:|---:|"
	for (i = 1; i <= np; i++) {
		head = head " " peer[i] " s | " peer[i] "/crew |"
		rule = rule "---:|---:|"
	}
	print head " crew rss MB |"
	print rule "---:|"
	nr = split(rows, row, ";")
	for (r = 1; r <= nr; r++) {
		if (row[r] == "") continue
		split(row[r], f, ":")
		w = f[1]; n = f[2]; wk = f[3]
		delete own
		no = split(f[4], ov, ",")
		for (i = 1; i <= no; i++) if (split(ov[i], kv, "=") == 2 && kv[2] != "") own[kv[1]] = kv[2]
		ck = "crew" SUBSEP w SUBSEP n SUBSEP wk
		crew = median(ck, "s")
		line = "| " w " | " n " | " wk " | " (crew == "" ? missing("crew", w, n, wk) : secs(crew)) " |"
		for (i = 1; i <= np; i++) {
			p = peer[i]; pn = (p in own) ? own[p] : n
			note = pn == n ? "" : " (n=" pn ")"
			pm = median(p SUBSEP w SUBSEP pn SUBSEP wk, "s")
			cm = median("crew" SUBSEP w SUBSEP pn SUBSEP wk, "s")
			cell = pm == "" ? missing(p, w, pn, wk) : secs(pm) note
			ratio = (pm == "" || cm == "" || cm == 0) ? "-" : sprintf("%.2f", pm / cm) note
			line = line " " cell " | " ratio " |"
		}
		rss = median(ck, "r")
		print line " " (rss == "" ? "-" : sprintf("%.1f", rss)) " |"
		if (w == "yield" && crew != "" && n > 0) {
			ys = sprintf("crew %.1f", crew * 1e9 / n)
			for (i = 1; i <= np; i++) {
				pm = median(peer[i] SUBSEP w SUBSEP n SUBSEP wk, "s")
				if (pm != "") ys = ys sprintf(", %s %.1f", peer[i], pm * 1e9 / n)
			}
			yieldnote = ys
		}
	}
	print ""
	print "Medians of seconds; a ratio is peer/crew at the same n (>1: crew is faster)."
	print "n/s: the peer has no such workload; FAIL/timeout: see bench-errors.log."
	if (yieldnote != "") print "yield, ns per switch (median): " yieldnote "."
}
AWK
}

machine_line() {
	local cpu
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
	printf '%s, %s CPUs (%s), Linux %s, %s runs each\n\n' "$(date -u +%Y-%m-%d)" \
		"$(nproc)" "${cpu:-unknown CPU}" "$(uname -r)" "$RUNS"
}

main() {
	parse_args "$@"
	find_crew
	find_peers
	mkdir -p "$(dirname "$RESULTS")"
	run_all
	machine_line
	print_table
	[[ -s $ERRORS ]] && echo "bench-compare: some runs failed, see $ERRORS" >&2
	return 0
}

main "$@"
