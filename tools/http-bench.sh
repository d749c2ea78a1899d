#!/usr/bin/env bash
# http-bench.sh - crew's http-server against nginx, Go net/http and a minimal
# Tokio server, under wrk, in one invocation on this machine.
#
#   tools/http-bench.sh [--duration S] [--runs K] [--conns LIST] [--workers N]
#                       [--servers LIST]
#
#   --duration S   seconds per wrk run (default 10)
#   --runs K       runs per server and connection count; the table shows
#                  medians (default 3)
#   --conns LIST   wrk connection counts, comma-separated (default 64,256)
#   --workers N    worker threads / processes of every server (default 2)
#   --servers LIST crew-uring,crew-epoll,nginx,go,tokio (default: all)
#
# Every server listens on 127.0.0.1 and answers GET / with "Hello, World!";
# wrk -t1 runs beside it on the same machine (the servers and wrk share the
# CPUs alike). Runs are interleaved server by server so that a drift of the
# machine hits all of them. Prints a Markdown table: requests/s and p99
# latency, medians of K, each server's ratio to crew (io_uring), and the share
# of a CPU wrk used: near 100%, wrk is the bottleneck, not the server.
# Builds what it needs: crew (make), the Go and Tokio peers into
# $CREW_BUILD_DIR/peers (offline, Debian packages); installs wrk and
# nginx-light when root (else says which apt-get line to run).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${CREW_BUILD_DIR:-$ROOT/build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$PWD/$BUILD_DIR
OUT=$BUILD_DIR/peers
# shellcheck source=lib/netbench.sh
. "$ROOT/tools/lib/netbench.sh"
DURATION=10
RUNS=3
CONNS=64,256
WORKERS=2
SERVERS=crew-uring,crew-epoll,nginx,go,tokio

while (($#)); do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--conns) CONNS=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--servers) SERVERS=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -/{/^set -/!p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) nb_die "unknown option '$1' (see --help)" ;;
	esac
done
IFS=, read -ra SERVER_LIST <<<"$SERVERS"
IFS=, read -ra CONN_LIST <<<"$CONNS"

# ---- what it needs ----
need=()
command -v wrk >/dev/null || need+=(wrk)
[[ " ${SERVER_LIST[*]} " != *" nginx "* ]] || command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
[[ " ${SERVER_LIST[*]} " != *" go "* ]] || [[ -x /usr/bin/go ]] || need+=(golang-go)
[[ " ${SERVER_LIST[*]} " != *" tokio "* ]] || dpkg -s librust-tokio-dev >/dev/null 2>&1 || need+=(librust-tokio-dev cargo)
nb_install "${need[@]}"
make -C "$ROOT" --no-print-directory BUILD="$BUILD_DIR" all >/dev/null
mkdir -p "$OUT"
for s in "${SERVER_LIST[@]}"; do
	case $s in
	go) nb_build_go go-http ;;
	tokio) nb_build_tokio tokio-http ;;
	crew-uring | crew-epoll | nginx) ;;
	*) nb_die "unknown server '$s'" ;;
	esac
done

TMP=$(mktemp -d)
PID=
cleanup() {
	nb_stop
	rm -rf "$TMP"
}
trap cleanup EXIT

# start SERVER: sets PID and PORT; waits until it accepts connections
start() {
	local s=$1
	PORT=$(nb_free_port)
	case $s in
	crew-uring) CREW_BACKEND=io_uring "$BUILD_DIR/examples/http-server" --port "$PORT" --workers "$WORKERS" >"$TMP/out" 2>&1 & ;;
	crew-epoll) CREW_BACKEND=epoll "$BUILD_DIR/examples/http-server" --port "$PORT" --workers "$WORKERS" >"$TMP/out" 2>&1 & ;;
	go) GOMAXPROCS=$WORKERS "$OUT/go-http" --port "$PORT" >"$TMP/out" 2>&1 & ;;
	tokio) TOKIO_WORKERS=$WORKERS "$OUT/tokio-http" --port "$PORT" >"$TMP/out" 2>&1 & ;;
	nginx)
		mkdir -p "$TMP/nginx/logs"
		cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $TMP/nginx/nginx.pid;
error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/nginx; proxy_temp_path $TMP/nginx;
    fastcgi_temp_path $TMP/nginx; uwsgi_temp_path $TMP/nginx; scgi_temp_path $TMP/nginx;
    server { listen 127.0.0.1:$PORT; location = / { return 200 "Hello, World!"; } }
}
EOF
		/usr/sbin/nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' >"$TMP/out" 2>&1 & ;;
	esac
	PID=$!
	nb_started "$s" "$TMP/out"
}

# wrk once: prints "requests_per_s p99_ms wrk_cpu_%"
measure() {
	local cpu
	cpu=$(nb_client "$TMP/wrk" wrk -t1 -c"$1" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/") || return 1
	awk -v cpu="$cpu" '
		/Requests\/sec/ { rps = $2 }
		/^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 }
		           else if (v ~ /ms$/) { sub(/ms/, "", v) }
		           else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; p99 = v }
		END { if (rps == "") exit 1; printf "%s %s %s\n", rps, p99, cpu }' "$TMP/wrk"
}

nb_run_all http-bench

printf '%s; wrk -t1, %s s per run, medians of %s; %s workers/processes per server\n\n' \
	"$(nb_machine)" "$DURATION" "$RUNS" "$WORKERS"
nb_table 'requests/s' wrk
