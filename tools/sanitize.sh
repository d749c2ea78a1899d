#!/usr/bin/env bash
# sanitize.sh address|thread [COMPILER] - build crew with a sanitizer and run every test under it.
#
# Builds in build-asan or build-tsan (build-asan-clang etc. when a compiler is named) with
# -DCREW_SANITIZE=..., -DCREW_WERROR=ON, RelWithDebInfo, then runs ctest.
# Environment: ASAN_OPTIONS, LSAN_OPTIONS, TSAN_OPTIONS are appended to ours (yours win);
# BUILD_TYPE (RelWithDebInfo), TIMEOUT (seconds per test, 600), JOBS (parallel tests, nproc),
# CMAKE_ARGS (more -D options).
set -euo pipefail
cd "$(dirname "$0")/.."

san=${1:-}
cc=${2:-}
case $san in
address) dir=build-asan ;;
thread) dir=build-tsan ;;
*) echo "usage: tools/sanitize.sh address|thread [compiler]" >&2; exit 2 ;;
esac
[ -z "$cc" ] || dir+=-${cc##*/}

# The sanitizer runtimes reserve fixed address ranges. Kernels whose vm.mmap_rnd_bits is above
# 28 (recent distributions set 32) may place libraries inside them, and TSan stops with
# "FATAL: ThreadSanitizer: unexpected memory mapping". A probe program finds out; workarounds,
# mildest first: run the tests without address randomization (setarch -R, inherited
# by every child process), or, as root, lower vm.mmap_rnd_bits to 28.
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
echo 'int main(void) { return 0; }' >"$probe_dir/p.c"
"${cc:-cc}" -fsanitize="$san" "$probe_dir/p.c" -o "$probe_dir/p"
probe() { for _ in 1 2 3; do "$@" "$probe_dir/p" 2>>"$probe_dir/err" || return 1; done; }
launch=()
bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)
if [ "$bits" -gt 28 ] || ! probe; then
	if probe setarch "$(uname -m)" -R; then
		launch=(setarch "$(uname -m)" -R)
		echo "sanitize.sh: vm.mmap_rnd_bits=$bits: running the tests under setarch -R (no ASLR)"
	elif [ "$(id -u)" -eq 0 ] && echo 28 >/proc/sys/vm/mmap_rnd_bits && probe; then
		echo "sanitize.sh: lowered vm.mmap_rnd_bits from $bits to 28 so that the sanitizer can run"
	else
		cat "$probe_dir/err" >&2
		echo "sanitize.sh: a -fsanitize=$san program does not run here (vm.mmap_rnd_bits=$bits);" \
			"try as root: sysctl vm.mmap_rnd_bits=28" >&2
		exit 1
	fi
fi

# Criterion runs each test in a child process (fork + exec of the test binary) and counts a test
# as passed once its body returned: a sanitizer report that ends the child with an exit status
# (LeakSanitizer's at exit, for one) goes unnoticed. abort_on_error=1 makes every report a
# SIGABRT, which Criterion does count. halt_on_error: the first report ends the test.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:print_summary=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:die_after_fork=0:print_summary=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"

args=(-DCREW_SANITIZE="$san" -DCREW_WERROR=ON -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}")
[ -z "$cc" ] || args+=(-DCMAKE_C_COMPILER="$cc")
[ -f "$dir/CMakeCache.txt" ] || args+=(-G Ninja)
# shellcheck disable=SC2086 # CMAKE_ARGS is a list of options
cmake -S . -B "$dir" --log-level=WARNING "${args[@]}" ${CMAKE_ARGS:-}
cmake --build "$dir"

status=0
"${launch[@]}" ctest --test-dir "$dir" --output-on-failure --no-tests=error \
	--timeout "${TIMEOUT:-600}" -j "${JOBS:-$(nproc)}" 2>&1 | tee "$dir/ctest.log" || status=$?
if [ "$status" -ne 0 ] && grep -q 'Could not initialize inheritable arena' "$dir/ctest.log"; then
	cat >&2 <<'EOF'
sanitize.sh: Criterion cannot start under ThreadSanitizer: its runner (BoxFort) maps an arena
with MAP_FIXED at random addresses in 0x2000'0000'0000..0x6000'0000'0000, nearly all of which
TSan reserves for its shadow memory (Criterion issue #274). Tests that must run under TSan need
a runner other than Criterion's: tests/CMakeLists.txt should not register Criterion runners when
CREW_SANITIZE is thread.
EOF
fi
if [ "$status" -ne 0 ] && grep -A2 'Direct leak' "$dir/ctest.log" | grep -q '#1 .*(.*libcriterion\.so'; then
	cat >&2 <<'EOF'
sanitize.sh: a leak allocated by libcriterion itself: Criterion's runner process leaks BoxFort's
timeout requests when the tests of one binary have different .timeout values. The test programs
can leave the runner out of leak checking (the tests are still checked, in their own processes):
  int __lsan_is_turned_off(void) { return getenv("BXFI_MAP") == NULL; }
EOF
fi
exit "$status"
