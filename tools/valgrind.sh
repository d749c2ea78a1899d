#!/usr/bin/env bash
# tools/valgrind.sh [BUILD_DIR]: run a few crew programs under valgrind's memcheck at
# 2 workers and fail on any error or leak: the asyncio examples that end at once, and
# small sizes of every crew-bench workload. crew registers its fiber stacks with valgrind
# (valgrind/valgrind.h at build time), so build after valgrind is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tools/deps.sh valgrind
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is missing" >&2; exit 1; }
[ -x "$build/bench/crew-bench" ] || { echo "valgrind.sh: build $build first" >&2; exit 1; }

export CREW_WORKERS=2
run() {
	printf 'valgrind: %s\n' "$*"
	valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
		--error-exitcode=9 "$@" >/dev/null
}
run "$build/examples/asyncio_1_print_something"
run "$build/examples/asyncio_4_create_task_no_await"
run "$build/bench/crew-bench" spawn --workers 2 --n 20000
run "$build/bench/crew-bench" fib --workers 2 --n 15
run "$build/bench/crew-bench" sleepers --workers 2 --n 2000
run "$build/bench/crew-bench" pingpong --workers 2 --n 20000
run "$build/bench/crew-bench" yield --workers 1 --n 20000
echo "valgrind.sh: no errors, no leaks"
