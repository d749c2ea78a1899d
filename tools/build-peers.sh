#!/usr/bin/env bash
# build-peers.sh - build the peers of crew-bench (bench/peers/) into build/peers/.
#
#   tools/build-peers.sh [--only go,tokio,tbb,asyncio]
#
# Produces build/peers/{go,tokio,tbb,asyncio}-bench (under $CREW_BUILD_DIR when
# set), each with crew-bench's command line. Everything comes from Debian packages: Go from golang-go, Tokio
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
PEERS=(go tokio tbb asyncio)
PACKAGES=(golang-go librust-tokio-dev cargo libtbb-dev python3 g++)

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
		[[ " go tokio tbb asyncio " == *" $p "* ]] || die "unknown peer '$p'"
	done
}

# Installs the Debian packages that are not installed yet, or says how to.
ensure_packages() {
	local missing=() pkg
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

build_go() {
	local src=$ROOT/bench/peers/go
	up_to_date "$OUT/go-bench" "$src/main.go" "$src/go.mod" && return 0
	# GOPROXY=off: the peer has no dependencies and must never fetch any; the
	# build cache stays under build/ (CI may have no usable $HOME).
	(cd "$src" && quietly go env GOPROXY=off GOCACHE="$OUT/go-cache" \
		/usr/bin/go build -trimpath -o "$OUT/go-bench" .)
}

build_tokio() {
	local src=$ROOT/bench/peers/tokio
	up_to_date "$OUT/tokio-bench" "$src/src/main.rs" "$src/Cargo.toml" \
		"$src/.cargo/config.toml" && return 0
	# cargo reads .cargo/config.toml (crates-io -> /usr/share/cargo/registry)
	# from the working directory, hence the cd.
	(cd "$src" && quietly tokio env RUSTC=/usr/bin/rustc \
		CARGO_TARGET_DIR="$OUT/tokio-target" \
		/usr/bin/cargo build --release --offline --quiet) &&
		install -m 755 "$OUT/tokio-target/release/tokio-bench" "$OUT/tokio-bench"
}

build_tbb() {
	local src=$ROOT/bench/peers/tbb/main.cpp
	up_to_date "$OUT/tbb-bench" "$src" && return 0
	quietly tbb g++ -std=c++17 -O2 -Wall -Wextra -o "$OUT/tbb-bench" "$src" -ltbb
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
