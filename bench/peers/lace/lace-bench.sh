#!/usr/bin/env bash
# lace-bench - runs Lace's own benchmark programs (Lace 1.4.2, built from
# /work/shared/peers/lace.tar.gz by tools/build-peers.sh into build/peers/lace/)
# with crew-bench's command line, and prints crew-bench's JSON line:
#
#   lace-bench <workload> [--workers N] [--n N] [--serial]
#   {"bench":"nqueens","runtime":"lace","workers":2,"n":13,"seconds":0.41,"rss_mb":3.1,"checked":true}
#
# workload  Lace program and input                         answer checked
# fib       fib-lace N                                     fib(N)
# nqueens   queens-lace N                                  the solution count
# uts-t1    uts-lace -t 1 -a 3 -d N -b 4 -r 19 (T1)        the tree size
# uts-t3    uts-lace -t 0 -b N -q 0.124875 -m 8 -r 42 (T3) the tree size
# knapsack  knapsack-lace FILE, FILE from                  the best value
#           `omp-bench knapsack-input --n N` (crew's input; Lace's reader is
#           patched at build time: it compared fscanf's result with 3).
#           Its pruning and best-value update, commented out in Lace's
#           source, are put back at build time too: the bound is then
#           computed per node as in crew's, the serial, oneTBB and OpenMP
#           versions (on this input it prunes nothing: the same tree).
# matmul    matmul-lace N (Lace's own input)               no (Lace's check is commented out)
# cilksort  cilksort-lace N (Lace's own random input)      no (ditto)
# skew, bpc: not in Lace's benchmarks: exit 3.
#
# --serial runs Lace's serial program of the workload instead (fib-seq,
# queens-seq, uts-seq, matmul-seq, cilksort-seq: the same kernels, inputs and
# "Time:", no runtime; knapsack has none: exit 3), as runtime "lace-serial" on
# 1 worker: it tells how much of Lace's time is its kernels.
#
# "seconds" is the "Time:" Lace's program prints: the computation alone, with
# the workers already started (crew's and the other peers' seconds include
# start-up and shutdown of their workers). "rss_mb" is the peak RSS of the
# program (GNU time's %M when /usr/bin/time exists, else 0).
# "checked" says whether the answer was checked. Exit status: 0 ok, 1 failure
# or wrong answer, 2 usage, 3 workload not in Lace.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LACE_BIN=${LACE_BIN:-$HERE/lace/bin}
WORK=${LACE_WORK:-$HERE/lace/work} # cilksort-lace writes its input file into the current directory

[[ $# -ge 1 ]] || { echo "usage: lace-bench <workload> [--workers N] [--n N] [--serial]" >&2; exit 2; }
w=$1
shift
workers=$(nproc)
n=""
serial=false
while (($#)); do
	case $1 in
	--workers) workers=$2; shift 2 ;;
	--n) n=$2; shift 2 ;;
	--serial) serial=true; shift ;;
	*) echo "lace-bench: unknown option '$1'" >&2; exit 2 ;;
	esac
done

fib_of() { local a=0 b=1 i t; for ((i = 0; i < $1; i++)); do t=$((a + b)); a=$b; b=$t; done; echo "$a"; }
queens_of() { local t=(1 1 0 0 2 10 4 40 92 352 724 2680 14200 73712 365596 2279184 14772512); echo "${t[$1]:-}"; }

checked=true want="" pattern=""
case $w in
fib) n=${n:-30}; args=(fib-lace -w "$workers" "$n"); want=$(fib_of "$n"); pattern='^fib\([0-9]+\) = ([0-9-]+)' ;;
nqueens) n=${n:-13}; args=(queens-lace -w "$workers" "$n"); want=$(queens_of "$n"); pattern='^Result: Q\([0-9]+\) = ([0-9]+)' ;;
uts-t1) n=${n:-10}; args=(uts-lace -w "$workers" -t 1 -a 3 -d "$n" -b 4 -r 19)
	case $n in 10) want=4130071 ;; 9) want=1031269 ;; *) checked=false ;; esac
	pattern='^Tree size = ([0-9]+)' ;;
uts-t3) n=${n:-2000}; args=(uts-lace -w "$workers" -t 0 -b "$n" -q 0.124875 -m 8 -r 42)
	case $n in 2000) want=4112897 ;; 200) want=2745281 ;; *) checked=false ;; esac
	pattern='^Tree size = ([0-9]+)' ;;
knapsack) n=${n:-30}
	mkdir -p "$WORK"
	input=$WORK/knapsack-$n.input
	[[ -s $input ]] || "$HERE/omp-bench" knapsack-input --n "$n" >"$input"
	want=$(awk '$1 == "best" { print $2 }' "$input")
	args=(knapsack-lace -w "$workers" "$input"); pattern='^Best value is ([0-9-]+)' ;;
matmul) n=${n:-1024}; args=(matmul-lace -w "$workers" "$n"); checked=false ;;
cilksort) n=${n:-10000000}; args=(cilksort-lace -w "$workers" "$n"); checked=false ;;
*) exit 3 ;;
esac

runtime=lace
if $serial; then
	# the serial program: Lace's name with -seq, without "-w N"; fib-seq
	# prints the bare number
	[[ $w != knapsack ]] || exit 3
	args=("${args[0]%-lace}-seq" "${args[@]:3}")
	[[ $w != fib ]] || pattern='^([0-9]+)$'
	runtime=lace-serial workers=1
fi

mkdir -p "$WORK"
cd "$WORK"
out=$(mktemp) rss=$(mktemp)
trap 'rm -f "$out" "$rss"' EXIT
prog=("$LACE_BIN/${args[0]}" "${args[@]:1}")
if [[ -x /usr/bin/time ]]; then
	/usr/bin/time -f '%M' -o "$rss" "${prog[@]}" >"$out" || { cat "$out" >&2; exit 1; }
else
	"${prog[@]}" >"$out" || { cat "$out" >&2; exit 1; }
	echo 0 >"$rss"
fi
secs=$(sed -n 's/^Time: *\([0-9.]*\).*/\1/p' "$out" | tail -1)
[[ -n $secs ]] || { echo "lace-bench: no 'Time:' line from ${args[0]}" >&2; cat "$out" >&2; exit 1; }
if [[ -n $pattern && $checked == true ]]; then
	got=$(sed -nE "s/$pattern.*/\\1/p" "$out" | head -1)
	if [[ -z $want || $got != "$want" ]]; then
		echo "lace-bench: $w n=$n: got '$got', want '$want'" >&2
		exit 1
	fi
fi
printf '{"bench":"%s","runtime":"%s","workers":%s,"n":%s,"seconds":%s,"rss_mb":%.1f,"checked":%s}\n' \
	"$w" "$runtime" "$workers" "$n" "$secs" "$(awk '{ print $1 / 1024 }' "$rss" | tail -1)" "$checked"
