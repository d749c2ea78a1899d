#!/usr/bin/env bash
# scaling.sh - how crew's run time changes with the number of workers.
#
#   tools/scaling.sh [--n-scale F] [--runs R] [--max-workers N] [--only LIST]
#
# Runs build/bench/crew-bench ($CREW_BUILD_DIR instead of build/ when set, or
# $CREW_BENCH) for spawn, fib and sleepers with 1, 2, ... nproc workers and
# prints a markdown table of seconds (median of R runs, default 3) and the
# speedup over 1 worker. The default sizes are small
# so that `make demo` finishes in a few seconds; --n-scale F multiplies them
# (the task count, for fib too: its argument grows by log_phi(F)).
#   --max-workers N  go up to N workers instead of nproc
#   --only LIST      workloads, comma-separated (default spawn,fib,sleepers)
# Needs bash, awk and coreutils only.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The build directory: $CREW_BUILD_DIR (relative to the current directory), else build/.
BUILD_DIR=${CREW_BUILD_DIR:-$ROOT/build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$PWD/$BUILD_DIR
CREW=${CREW_BENCH:-$BUILD_DIR/bench/crew-bench}
SCALE=1 RUNS=3 MAX_WORKERS=$(nproc)
WORKLOADS=(spawn fib sleepers)

die() { echo "scaling: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -/{/^set -/!p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
is_count() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0)); }

parse_args() {
	while (($#)); do
		case $1 in
		--n-scale) [[ ${2:-} =~ ^[0-9]*\.?[0-9]+$ ]] || die "--n-scale needs a positive number"
			SCALE=$2; shift 2 ;;
		--runs) is_count "${2:-}" || die "--runs needs a positive number"; RUNS=$2; shift 2 ;;
		--max-workers) is_count "${2:-}" || die "--max-workers needs a positive number"
			MAX_WORKERS=$2; shift 2 ;;
		--only) [[ -n ${2:-} ]] || die "--only needs a list"; IFS=, read -ra WORKLOADS <<<"$2"; shift 2 ;;
		-h | --help) usage 0 ;;
		*) echo "scaling: unknown option '$1'" >&2; usage 2 >&2 ;;
		esac
	done
	local w
	for w in "${WORKLOADS[@]}"; do
		[[ " spawn fib sleepers " == *" $w "* ]] || die "unknown workload '$w' (spawn, fib, sleepers)"
	done
}

# The n of a workload at the current scale. fib's argument is an exponent: its
# task count grows by phi per step, so scaling the work by F adds log_phi(F).
workload_n() {
	awk -v w="$1" -v f="$SCALE" 'BEGIN {
		if (w == "fib") { n = 32 + log(f) / log((1 + sqrt(5)) / 2); n = n < 2 ? 2 : n }
		else n = (w == "spawn" ? 500000 : 50000) * f
		n = int(n + 0.5); print n < 1 ? 1 : n
	}'
}

# Prints the median "seconds" of RUNS runs, or FAIL.
measure() {
	local workload=$1 n=$2 workers=$3 r out
	local times=()
	for ((r = 0; r < RUNS; r++)); do
		if ! out=$("$CREW" "$workload" --workers "$workers" --n "$n"); then
			echo FAIL
			return
		fi
		[[ $out =~ \"seconds\":([0-9.]+) ]] || { echo FAIL; return; }
		times+=("${BASH_REMATCH[1]}")
	done
	printf '%s\n' "${times[@]}" | sort -g |
		awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

print_table() {
	local head="| workload | n |" rule="|---|---:|" k w n line t t1
	for ((k = 1; k <= MAX_WORKERS; k++)); do
		head+=" $k w s |"
		rule+="---:|"
	done
	echo "$head speedup $MAX_WORKERS w |"
	echo "$rule---:|"
	for w in "${WORKLOADS[@]}"; do
		n=$(workload_n "$w")
		line="| $w | $n |"
		t1="" t=""
		for ((k = 1; k <= MAX_WORKERS; k++)); do
			t=$(measure "$w" "$n" "$k")
			((k == 1)) && t1=$t
			line+=" $(awk -v t="$t" 'BEGIN { print t == "FAIL" ? t : sprintf("%.4f", t) }') |"
		done
		echo "$line $(awk -v a="$t1" -v b="$t" 'BEGIN {
			print (a == "FAIL" || b == "FAIL" || b == 0) ? "-" : sprintf("%.2fx", a / b) }') |"
	done
}

main() {
	parse_args "$@"
	[[ -x $CREW ]] || die "no $CREW; build it first: cmake -S . -B build -G Ninja && cmake --build build"
	echo "crew scaling on $(nproc) CPUs (seconds, median of $RUNS run(s); speedup = 1 worker / $MAX_WORKERS workers)"
	echo
	print_table
}

main "$@"
