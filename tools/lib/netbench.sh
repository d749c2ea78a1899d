# netbench.sh - what tools/http-bench.sh and tools/echo-bench.sh share:
# installing their packages, building the Rust/Go peers, starting a server on
# a free port and stopping it, and medians. Sourced, not run. Expects ROOT,
# BUILD_DIR and OUT (the peers' directory) to be set.

nb_die() { echo "${0##*/}: $*" >&2; exit 1; }

# nb_install PKG...: install missing Debian packages when root, else say how.
nb_install() {
	(($#)) || return 0
	((EUID == 0)) || nb_die "missing packages; run as root: apt-get update && apt-get install -y $*"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >/dev/null ||
		nb_die "apt-get install $* failed"
}

# nb_build_tokio NAME: build bench/peers/NAME (offline, Debian's cargo) into $OUT/NAME.
nb_build_tokio() {
	local name=$1 src=$ROOT/bench/peers/$1
	[[ -x $OUT/$name && ! $src/src/main.rs -nt $OUT/$name && ! $src/Cargo.toml -nt $OUT/$name ]] && return 0
	(cd "$src" && RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$OUT/$name-target" \
		/usr/bin/cargo build --release --offline --quiet) &&
		install -m 755 "$OUT/$name-target/release/$name" "$OUT/$name"
}

# nb_build_go NAME: build bench/peers/NAME (no modules fetched) into $OUT/NAME.
nb_build_go() {
	local name=$1 src=$ROOT/bench/peers/$1
	[[ -x $OUT/$name && ! $src/main.go -nt $OUT/$name ]] && return 0
	(cd "$src" && GOPROXY=off GOCACHE="$OUT/go-cache" /usr/bin/go build -trimpath -o "$OUT/$name" .)
}

nb_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# nb_started NAME LOG: wait until the server (pid $PID) accepts on $PORT.
nb_started() {
	for _ in $(seq 1 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$2" >&2
	nb_die "$1 did not start"
}

nb_stop() {
	[[ -z ${PID:-} ]] && return 0
	kill -TERM "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	PID=
}

nb_median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

nb_machine() {
	printf '%s, %s CPUs (%s), Linux %s' "$(date +%F)" "$(nproc)" \
		"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' | cut -c1-40)" "$(uname -r)"
}

# nb_client OUT CMD...: run the load generator CMD, its output into OUT, and
# print the share of one CPU it used (user + system time over wall time, %).
# A single-threaded generator near 100% is the bottleneck: the servers it
# measures are then at least that fast, and their ratios say less.
nb_client() {
	local out=$1 t TIMEFORMAT='%R %U %S'
	shift
	t=$({ time "$@" >"$out" 2>&1; } 2>&1) || return 1
	awk -v t="$t" 'BEGIN { split(t, a, " "); printf "%.0f\n", (a[1] > 0 ? 100 * (a[2] + a[3]) / a[1] : 0) }'
}

# nb_run_all NAME: for every connection count, run and server (CONN_LIST,
# RUNS, SERVER_LIST): the caller's `start SERVER`, then its `measure CONNS`
# (prints "rate p99_ms client_cpu_%"), then nb_stop. Runs are interleaved
# server by server, so that a drift of the machine hits all of them alike.
# Collects NB_RATE, NB_P99 and NB_CLIENT[server,conns] (space-separated samples).
declare -A NB_RATE NB_P99 NB_CLIENT
nb_run_all() {
	local name=$1 c r s res rate p99 cpu
	for c in "${CONN_LIST[@]}"; do
		for r in $(seq 1 "$RUNS"); do
			for s in "${SERVER_LIST[@]}"; do
				printf '%s: %s, %s connections, run %d/%d\n' "$name" "$s" "$c" "$r" "$RUNS" >&2
				start "$s"
				if res=$(measure "$c"); then
					read -r rate p99 cpu <<<"$res"
					NB_RATE[$s,$c]+="$rate "
					NB_P99[$s,$c]+="$p99 "
					NB_CLIENT[$s,$c]+="$cpu "
				else
					echo "$name: the measurement failed against $s" >&2
				fi
				nb_stop
			done
		done
	done
}

# nb_table RATE_HEADER CLIENT: the Markdown table of nb_run_all's medians,
# with each server's ratio to crew on io_uring and the CPU share its load
# generator (CLIENT) used.
nb_table() {
	local c s base rate p99 ratio cpu
	printf '| server | connections | %s | vs crew (io_uring) | p99 latency ms | %s CPU %% |\n' "$1" "$2"
	printf '|---|---:|---:|---:|---:|---:|\n'
	for c in "${CONN_LIST[@]}"; do
		# shellcheck disable=SC2086 # the samples are space-separated on purpose
		base=$(printf '%s\n' ${NB_RATE[crew-uring,$c]:-0} | nb_median)
		for s in "${SERVER_LIST[@]}"; do
			# shellcheck disable=SC2086
			rate=$(printf '%s\n' ${NB_RATE[$s,$c]:-0} | nb_median)
			# shellcheck disable=SC2086
			p99=$(printf '%s\n' ${NB_P99[$s,$c]:-0} | nb_median)
			# shellcheck disable=SC2086
			cpu=$(printf '%s\n' ${NB_CLIENT[$s,$c]:-0} | nb_median)
			ratio=$(awk -v a="$rate" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
			printf '| %s | %s | %.0f | %s | %.2f | %.0f |\n' "$s" "$c" "$rate" "$ratio" "$p99" "$cpu"
		done
	done
}
