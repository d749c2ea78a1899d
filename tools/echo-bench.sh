#!/usr/bin/env bash
# echo-bench.sh - crew's echo-server against a Tokio echo server (and Go's),
# under the same load generator, in one invocation on this machine.
#
#   tools/echo-bench.sh [--duration S] [--runs K] [--conns LIST] [--size B]
#                       [--workers N] [--servers LIST]
#
#   --duration S   seconds measured per run, after a 1 s warm-up (default 10)
#   --runs K       runs per server and connection count; medians (default 3)
#   --conns LIST   connection counts, comma-separated (default 64,1000)
#   --size B       message size in bytes (default 64)
#   --workers N    worker threads of every server (default 2)
#   --servers LIST crew-uring,crew-epoll,tokio,go (default: all)
#
# The load generator is build/bench/echo-load (bench/echo_load.c), written on
# crew, run with one worker beside the server (as wrk -t1 is for http-bench):
# each connection sends a message, waits for its echo, checks it, repeats.
# The same client binary drives every server, so its own cost is the same for
# all; it runs on crew's default (io_uring) backend. Prints a Markdown table:
# round trips/s, p99 round-trip latency, each server's ratio to crew, and the
# share of a CPU echo-load used (near 100%: the client is the bottleneck).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${CREW_BUILD_DIR:-$ROOT/build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$PWD/$BUILD_DIR
OUT=$BUILD_DIR/peers
# shellcheck source=lib/netbench.sh
. "$ROOT/tools/lib/netbench.sh"
DURATION=10
RUNS=3
CONNS=64,1000
SIZE=64
WORKERS=2
SERVERS=crew-uring,crew-epoll,tokio,go

while (($#)); do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--conns) CONNS=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--servers) SERVERS=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -/{/^set -/!p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) nb_die "unknown option '$1' (see --help)" ;;
	esac
done
IFS=, read -ra SERVER_LIST <<<"$SERVERS"
IFS=, read -ra CONN_LIST <<<"$CONNS"

need=()
[[ " ${SERVER_LIST[*]} " != *" go "* ]] || [[ -x /usr/bin/go ]] || need+=(golang-go)
[[ " ${SERVER_LIST[*]} " != *" tokio "* ]] || dpkg -s librust-tokio-dev >/dev/null 2>&1 || need+=(librust-tokio-dev cargo)
nb_install "${need[@]}"
make -C "$ROOT" --no-print-directory BUILD="$BUILD_DIR" all >/dev/null
mkdir -p "$OUT"
for s in "${SERVER_LIST[@]}"; do
	case $s in
	go) nb_build_go go-echo ;;
	tokio) nb_build_tokio tokio-echo ;;
	crew-uring | crew-epoll) ;;
	*) nb_die "unknown server '$s'" ;;
	esac
done
# a thousand connections need a thousand fds on each side, and some
max=0
for c in "${CONN_LIST[@]}"; do ((c > max)) && max=$c; done
ulimit -n $((max + 256)) 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) > max + 32)) || nb_die "$max connections need more fds than ulimit -n allows ($(ulimit -n))"

TMP=$(mktemp -d)
PID=
cleanup() {
	nb_stop
	rm -rf "$TMP"
}
trap cleanup EXIT

start() {
	local s=$1
	PORT=$(nb_free_port)
	case $s in
	crew-uring) CREW_BACKEND=io_uring "$BUILD_DIR/examples/echo-server" --port "$PORT" --workers "$WORKERS" >"$TMP/out" 2>&1 & ;;
	crew-epoll) CREW_BACKEND=epoll "$BUILD_DIR/examples/echo-server" --port "$PORT" --workers "$WORKERS" >"$TMP/out" 2>&1 & ;;
	tokio) TOKIO_WORKERS=$WORKERS "$OUT/tokio-echo" --port "$PORT" >"$TMP/out" 2>&1 & ;;
	go) GOMAXPROCS=$WORKERS "$OUT/go-echo" --port "$PORT" >"$TMP/out" 2>&1 & ;;
	esac
	PID=$!
	nb_started "$s" "$TMP/out"
}

# the load once: prints "msgs_per_s p99_ms echo-load_cpu_%"
measure() {
	local cpu
	cpu=$(nb_client "$TMP/load" "$BUILD_DIR/bench/echo-load" --port "$PORT" --conns "$1" --size "$SIZE" \
		--duration "$DURATION" --workers 1) || return 1
	python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(d["msgs_per_s"], d["p99_us"] / 1000, sys.argv[2])' \
		"$TMP/load" "$cpu"
}

nb_run_all echo-bench

printf '%s; echo-load (1 worker), %s-byte messages, %s s per run, medians of %s; %s workers per server\n\n' \
	"$(nb_machine)" "$SIZE" "$DURATION" "$RUNS" "$WORKERS"
nb_table 'round trips/s' echo-load
