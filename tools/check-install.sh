#!/usr/bin/env bash
# check-install.sh [BUILD_DIR] - install a built crew (default: build/) into a temporary prefix
# and use it the way a user would: pkg-config + cc (shared and static), and find_package(crew)
# from a CMake project. Also checks that the shared library exports the whole public API and
# nothing else (no crew__ internals).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
fail() { echo "check-install.sh: FAIL: $*" >&2; exit 1; }
step() { echo "check-install.sh: $*"; }
[ -f "$build/CMakeCache.txt" ] || fail "$build is not a configured build directory (run make first)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }

[ -f "$prefix/include/crew.h" ] || fail "no $prefix/include/crew.h"
[ -f "$prefix/include/crew/io.h" ] || fail "no $prefix/include/crew/io.h (crew.h includes it)"
pc=$(find "$prefix" -path '*/lib*/pkgconfig/crew.pc' | head -n 1)
[ -n "$pc" ] || fail "no crew.pc under $prefix/lib*/pkgconfig"
libdir=$(dirname "$(dirname "$pc")")
[ -f "$libdir/libcrew.a" ] || fail "no libcrew.a in $libdir"
so=$libdir/libcrew.so
[ -e "$so" ] || fail "no libcrew.so in $libdir"
step "installed: include/crew.h, include/crew/io.h, ${libdir#"$prefix"/}/{libcrew.a,libcrew.so,pkgconfig/crew.pc}"

# ABI: exactly the functions declared in crew.h (and crew/io.h, which it includes), plus the
# thread-locals crew.h's inline code reads (crew__tls_*), no other crew__ internals, nothing
# foreign.
{
	sed -n 's/^\(CREW_API \)\{0,1\}[a-z][^(]*[ *]\(crew_[a-z_]*\)(.*/\2/p' include/crew.h include/crew/io.h
	sed -n 's/^CREW_API extern __thread .*[ *]\(crew__tls_[a-z_]*\) .*/\1/p' include/crew.h
} | sort -u >"$tmp/api"
nm -D --defined-only "$so" | awk '{ print $NF }' | sed 's/@.*//' | sort -u >"$tmp/exported"
missing=$(comm -23 "$tmp/api" "$tmp/exported")
extra=$(comm -13 "$tmp/api" "$tmp/exported")
[ -z "$missing" ] || fail "declared in crew.h but not exported by libcrew.so: ${missing//$'\n'/ }"
[ -z "$extra" ] || fail "exported by libcrew.so but not declared in crew.h: ${extra//$'\n'/ }"
step "libcrew.so exports the $(wc -l <"$tmp/api") functions (and thread-locals) of crew.h and nothing else"

cat >"$tmp/prog.c" <<'EOF'
/* A user's first program: spawn, join, sleep, a future set by another task,
 * and fork-join (crew_fork/crew_sync, whose inline code calls into libcrew). */
#include <crew.h>
#include <stdint.h>
#include <stdio.h>

static void *fib(void *arg)
{
	intptr_t n = (intptr_t)arg;
	if (n < 2)
		return arg;
	crew_frame f;
	crew_fork(&f, fib, (void *)(n - 1));
	intptr_t b = (intptr_t)fib((void *)(n - 2));
	return (void *)((intptr_t)crew_sync(&f) + b);
}

static void *square(void *arg)
{
	intptr_t n = (intptr_t)arg;
	if (crew_sleep(1000000) != 0)
		return NULL;
	return (void *)(n * n);
}

static void *answer(void *arg)
{
	crew_sleep(2000000);
	crew_future_set(arg, (void *)(intptr_t)42);
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	crew_task *t[8];
	for (intptr_t i = 0; i < 8; i++)
		if (!(t[i] = crew_spawn(square, (void *)(i + 1))))
			return "crew_spawn failed";
	intptr_t sum = 0;
	for (int i = 0; i < 8; i++) {
		void *r;
		if (crew_join(t[i], &r) != 0)
			return "crew_join failed";
		sum += (intptr_t)r;
	}
	if (sum != 204)
		return "wrong sum of squares";

	uint64_t t0 = crew_now();
	if (crew_sleep(5000000) != 0 || crew_now() - t0 < 5000000)
		return "crew_sleep returned early";

	crew_future *f = crew_future_new();
	crew_task *setter = f ? crew_spawn(answer, f) : NULL;
	void *v = NULL;
	if (!setter || crew_future_await(f, &v) != 0 || (intptr_t)v != 42)
		return "future not set to 42";
	crew_join(setter, NULL);
	crew_future_release(f);

	if ((intptr_t)fib((void *)20) != 6765)
		return "fib(20) by crew_fork/crew_sync is not 6765";
	return NULL;
}

int main(void)
{
	void *err = "no result";
	int rc = crew_run(main_task, NULL, &err);
	if (rc != 0 || err) {
		fprintf(stderr, "prog: crew_run returned %d: %s\n", rc, err ? (char *)err : "");
		return 1;
	}
	puts("prog: ok");
	return 0;
}
EOF

export PKG_CONFIG_PATH=$libdir/pkgconfig
incdir=$(pkg-config --variable=includedir crew)
[ "$(realpath -m "$incdir")" = "$(realpath "$prefix/include")" ] ||
	fail "crew.pc says includedir=$incdir, not $prefix/include: it does not follow cmake --install --prefix"
# shellcheck disable=SC2046 # pkg-config prints a list of options
cc -std=c11 -Wall -Wextra -Werror "$tmp/prog.c" -o "$tmp/prog" $(pkg-config --cflags --libs crew) ||
	fail "cc prog.c \$(pkg-config --cflags --libs crew)"
LD_LIBRARY_PATH=$libdir "$tmp/prog" || fail "prog built with pkg-config (shared) did not run"
step "pkg-config, shared: built and ran"

# Static: libcrew.a plus what `pkg-config --static` adds for it (liburing, ck, pthread).
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror "$tmp/prog.c" -o "$tmp/prog-static" $(pkg-config --cflags crew) \
	"$libdir/libcrew.a" $(pkg-config --static --libs crew | sed 's/\(^\| \)-lcrew\( \|$\)/ /') ||
	fail "cc prog.c libcrew.a \$(pkg-config --static --libs crew)"
"$tmp/prog-static" || fail "prog linked with libcrew.a did not run"
step "pkg-config, static: built and ran"

mkdir "$tmp/consumer"
cp "$tmp/prog.c" "$tmp/consumer/"
cat >"$tmp/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(crew_consumer C)
find_package(crew 0.1 REQUIRED)
add_executable(prog prog.c)
target_link_libraries(prog crew::crew)
EOF
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if ! { cmake -S "$tmp/consumer" -B "$tmp/consumer/build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$prefix" &&
	cmake --build "$tmp/consumer/build"; } >"$tmp/consumer.log" 2>&1; then
	cat "$tmp/consumer.log"
	fail "CMake project with find_package(crew) + crew::crew"
fi
"$tmp/consumer/build/prog" || fail "prog built with find_package(crew) did not run"
step "CMake find_package(crew), crew::crew: built and ran"
echo "check-install.sh: all checks passed"
