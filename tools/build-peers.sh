#!/usr/bin/env bash
# build-peers.sh - build the peers of crew-bench (bench/peers/) into build/peers/.
#
#   tools/build-peers.sh [--only go,tokio,tbb,asyncio,omp,lace]
#
# Produces build/peers/{go,tokio,tbb,asyncio,omp}-bench, {go,tokio,tbb}-batch
# and lace-bench (under $CREW_BUILD_DIR when set), each with crew-bench's
# command line. The batch workloads (bench/batch.h) have peers tbb-batch
# (oneTBB task_group/parallel_reduce, bench/peers/tbb/batch.cpp), omp-bench
# (gcc's OpenMP tasks, bench/peers/omp/batch.c), go-batch (goroutines,
# bench/peers/go-batch/), tokio-batch (Tokio tasks, bench/peers/tokio-batch/)
# and lace-bench (Lace's own benchmark programs, bench/peers/lace/lace-bench.sh);
# --only go builds go-bench and go-batch, --only tokio both Tokio programs. Lace is not in Debian: it is
# built from $LACE_TARBALL (default /work/shared/peers/lace.tar.gz) into
# build/peers/lace/, never copied into the repository; its knapsack reader,
# which compares fscanf's result with 3 instead of 2, and its pruning, commented
# out, are patched in that copy (so that it does the same work per node as
# crew's knapsack: see build_lace). Everything comes from Debian packages: Go from golang-go, Tokio
# from librust-tokio-dev built OFFLINE with Debian's cargo and rustc (a rustup
# toolchain earlier on PATH is deliberately bypassed), oneTBB from libtbb-dev,
# asyncio from python3. Missing packages are installed with apt-get when run as
# root; otherwise the script prints the apt-get command and exits 1.
#
# Idempotent and quiet: a peer is rebuilt only when its sources are newer than
# its binary, and a tool's output is shown only when it fails. Exit status:
# 0 all requested peers built, 1 some failed (the others are still built).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The build directory: $CREW_BUILD_DIR (relative to the current directory), else build/.
BUILD_DIR=${CREW_BUILD_DIR:-$ROOT/build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$PWD/$BUILD_DIR
OUT=$BUILD_DIR/peers
PEERS=(go tokio tbb asyncio omp lace)
ALL=" go tokio tbb asyncio omp lace "
LACE_TARBALL=${LACE_TARBALL:-/work/shared/peers/lace.tar.gz}

die() { echo "build-peers: $*" >&2; exit 1; }

parse_args() {
	while (($#)); do
		case $1 in
		--only) [[ $# -ge 2 ]] || die "--only needs a list"; IFS=, read -ra PEERS <<<"$2"; shift 2 ;;
		-h | --help) sed -n '2,/^set -/{/^set -/!p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown option '$1' (see --help)" ;;
		esac
	done
	for p in "${PEERS[@]}"; do
		[[ $ALL == *" $p "* ]] || die "unknown peer '$p'"
	done
}

# Installs the Debian packages that are not installed yet, or says how to.
# The Debian packages of each peer (only the requested peers' are needed).
packages_of() {
	case $1 in
	go) echo golang-go ;;
	tokio) echo librust-tokio-dev cargo ;;
	tbb) echo libtbb-dev g++ ;;
	asyncio) echo python3 ;;
	omp) echo gcc libgomp1 ;;
	lace) echo gcc cmake make time ;;
	esac
}

ensure_packages() {
	local missing=() pkg p PACKAGES=()
	for p in "${PEERS[@]}"; do
		read -ra pkg <<<"$(packages_of "$p")"
		PACKAGES+=("${pkg[@]}")
	done
	for pkg in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return 0
	if ((EUID != 0)); then
		echo "build-peers: missing packages; run as root:" >&2
		echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	local log
	log=$(mktemp)
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		die "apt-get install ${missing[*]} failed"
	fi
	rm -f "$log"
}

# up_to_date BINARY SOURCE...: true when BINARY exists and no SOURCE is newer.
up_to_date() {
	local bin=$1 src
	shift
	[[ -x $bin ]] || return 1
	for src in "$@"; do
		[[ $src -nt $bin ]] && return 1
	done
	return 0
}

# quietly NAME CMD...: runs CMD, showing its output only when it fails.
quietly() {
	local name=$1 log status
	shift
	log=$(mktemp)
	"$@" >"$log" 2>&1
	status=$?
	if ((status != 0)); then
		echo "build-peers: building the $name peer failed:" >&2
		cat "$log" >&2
	fi
	rm -f "$log"
	return $status
}

# go_build DIR BINARY: builds the Go module in DIR into $OUT/BINARY unless
# the binary is newer than every source file of the module.
go_build() {
	local src=$1 bin=$2
	up_to_date "$OUT/$bin" "$src"/*.go "$src/go.mod" && return 0
	# GOPROXY=off: the peers have no dependencies and must never fetch any; the
	# build cache stays under build/ (CI may have no usable $HOME).
	(cd "$src" && quietly go env GOPROXY=off GOCACHE="$OUT/go-cache" \
		/usr/bin/go build -trimpath -o "$OUT/$bin" .)
}

# go-bench (the core workloads) and go-batch (the batch workloads).
build_go() {
	go_build "$ROOT/bench/peers/go" go-bench || return 1
	go_build "$ROOT/bench/peers/go-batch" go-batch
}

# cargo_build DIR BINARY: builds the Cargo package in DIR (package name =
# BINARY) into $OUT/BINARY unless the binary is newer than its sources.
cargo_build() {
	local src=$1 bin=$2
	up_to_date "$OUT/$bin" "$src"/src/*.rs "$src/Cargo.toml" \
		"$src/.cargo/config.toml" && return 0
	# cargo reads .cargo/config.toml (crates-io -> /usr/share/cargo/registry)
	# from the working directory, hence the cd. One target directory for both
	# Tokio programs: the crates they share are compiled once per feature set.
	(cd "$src" && quietly tokio env RUSTC=/usr/bin/rustc \
		CARGO_TARGET_DIR="$OUT/tokio-target" \
		/usr/bin/cargo build --release --offline --quiet) &&
		install -m 755 "$OUT/tokio-target/release/$bin" "$OUT/$bin"
}

# tokio-bench (the core workloads) and tokio-batch (the batch workloads).
build_tokio() {
	cargo_build "$ROOT/bench/peers/tokio" tokio-bench || return 1
	cargo_build "$ROOT/bench/peers/tokio-batch" tokio-batch
}

# The batch peers (tbb-batch, omp-bench) compile bench/batch/kern.h, the kernels
# every runtime shares, with the optimisation level crew-bench and Lace have
# (-O3: CMake's Release), so that a difference between them is the runtimes'.
# With -O2, g++ makes cilksort's kernel 2-3% faster than gcc -O3 does (oneTBB's
# 1-worker run beat our serial baseline): that measured the compilers.
BATCH_OPT=-O3

build_tbb() {
	local src=$ROOT/bench/peers/tbb/main.cpp batch=$ROOT/bench/peers/tbb/batch.cpp
	local kern=$ROOT/bench/batch/kern.h
	up_to_date "$OUT/tbb-bench" "$src" ||
		quietly tbb g++ -std=c++17 -O2 -Wall -Wextra -o "$OUT/tbb-bench" "$src" -ltbb || return 1
	up_to_date "$OUT/tbb-batch" "$batch" "$kern" "${BASH_SOURCE[0]}" ||
		quietly tbb g++ -std=c++17 "$BATCH_OPT" -Wall -Wextra -I"$ROOT/bench" -o "$OUT/tbb-batch" \
			"$batch" -ltbb
}

# OpenMP tasks with gcc's libgomp: the batch workloads only.
build_omp() {
	local src=$ROOT/bench/peers/omp/batch.c kern=$ROOT/bench/batch/kern.h
	up_to_date "$OUT/omp-bench" "$src" "$kern" "${BASH_SOURCE[0]}" && return 0
	quietly omp gcc -std=gnu11 "$BATCH_OPT" -Wall -Wextra -fopenmp -I"$ROOT/bench" \
		-o "$OUT/omp-bench" "$src" -lm
}

# Lace 1.4.2 and its benchmark programs (parallel, and the serial ones for
# lace-bench --serial), from the tarball, into $OUT/lace; the
# wrapper lace-bench (needs omp-bench for the knapsack input) runs them.
build_lace() {
	local dir=$OUT/lace wrapper=$ROOT/bench/peers/lace/lace-bench.sh
	local progs=(fib-lace queens-lace uts-lace knapsack-lace matmul-lace cilksort-lace
		fib-seq queens-seq uts-seq matmul-seq cilksort-seq) p
	[[ -r $LACE_TARBALL ]] || { echo "build-peers: no Lace tarball at $LACE_TARBALL (set LACE_TARBALL)" >&2; return 1; }
	if ! up_to_date "$dir/bin/cilksort-seq" "$LACE_TARBALL" "${BASH_SOURCE[0]}"; then
		rm -rf "$dir/src" "$dir/build" && mkdir -p "$dir/src" "$dir/bin" &&
			tar -xzf "$LACE_TARBALL" -C "$dir/src" || return 1
		# Lace's known defect (see the tarball's README): fscanf("%d %d") compared with 3.
		sed -i '/fscanf(f, "%d %d"/s/!= 3)/!= 2)/' "$dir/src/lace/benchmarks/knapsack/knapsack-lace.c"
		# Its branch and bound has the pruning and the update of the best
		# value commented out (a plain tree search); crew's, the serial,
		# oneTBB and OpenMP versions compute the bound per node and share the
		# best, so for the same work per node they are put back. As shipped
		# it is about 2x faster per node (measured 2026-11-26, see the README).
		sed -i -e 's|^\( *\)//return INT_MIN;|\1return INT_MIN;|' \
			-e 's|^\( *\)//if (best > best_so_far)|\1if (best > best_so_far)|' \
			-e 's|^\( *\)// best_so_far = best;|\1 best_so_far = best;|' \
			"$dir/src/lace/benchmarks/knapsack/knapsack-lace.c"
		grep -q '^ *return INT_MIN;' "$dir/src/lace/benchmarks/knapsack/knapsack-lace.c" ||
			{ echo "build-peers: could not enable Lace knapsack's pruning" >&2; return 1; }
		quietly lace cmake -S "$dir/src/lace" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release \
			-DLACE_BUILD_TESTS=OFF -DLACE_BUILD_BENCHMARKS=ON || return 1
		quietly lace cmake --build "$dir/build" --target "${progs[@]}" || return 1
		for p in "${progs[@]}"; do
			install -m 755 "$dir/build/benchmarks/$p" "$dir/bin/$p" || return 1
		done
	fi
	install -m 755 "$wrapper" "$OUT/lace-bench"
}

# asyncio needs no build: a wrapper pins Debian's interpreter (a pyenv or venv
# python3 may come first on PATH).
build_asyncio() {
	local wrapper=$OUT/asyncio-bench
	local body="#!/bin/sh
exec /usr/bin/python3 '$ROOT/bench/peers/asyncio/bench.py' \"\$@\""
	[[ -x $wrapper && $(<"$wrapper") == "$body" ]] && return 0
	printf '%s\n' "$body" >"$wrapper" && chmod 755 "$wrapper"
}

main() {
	parse_args "$@"
	ensure_packages
	mkdir -p "$OUT" || die "cannot create $OUT"
	local failed=() p
	for p in "${PEERS[@]}"; do
		"build_$p" || failed+=("$p")
	done
	((${#failed[@]} == 0)) || die "failed: ${failed[*]}"
}

main "$@"
