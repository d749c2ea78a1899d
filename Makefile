# crew: a thin wrapper around CMake + Ninja. The real build is CMakeLists.txt.
#
#   make              build into build/ (installs missing Debian packages first, see tools/deps.sh)
#   make test         build with -Werror and run every test (ctest)
#   make demo         run the asyncio examples, then the scaling runner (tools/scale --quick)
#   make bench        build the peers and compare crew with them
#   make install      install into $(PREFIX)
#   make asan|tsan    tests under AddressSanitizer / ThreadSanitizer (tools/sanitize.sh)
#   make valgrind     examples and every workload under valgrind's memcheck (tools/valgrind.sh)
#   make clang        build and test with clang
#   make clean        remove every build directory
# Variables: BUILD=build, PREFIX=/usr/local, WERROR=ON (OFF for compilers newer than Debian 12's),
# TIMEOUT=300 (seconds per test), JOBS=$(nproc) (tests run at once), CMAKE_ARGS (more -D options).

BUILD   ?= build
PREFIX  ?= /usr/local
WERROR  ?= ON
TIMEOUT ?= 300
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

# $(call configure,DIR,ARGS): Ninja for a new build directory; an existing one keeps its generator.
configure = cmake -S . -B $(1) --log-level=WARNING $(if $(wildcard $(1)/CMakeCache.txt),,-G Ninja) $(2)
# $(call ctest,DIR): fails when any test fails or when there is no test at all.
ctest = ctest --test-dir $(1) --output-on-failure --no-tests=error --timeout $(TIMEOUT) -j $(JOBS)

.PHONY: all deps test demo bench install asan tsan valgrind clang clean

all: deps
	$(call configure,$(BUILD),-DCREW_WERROR=$(WERROR) $(CMAKE_ARGS))
	cmake --build $(BUILD)

deps:
	@tools/deps.sh

test: all
	$(call ctest,$(BUILD))

# The asyncio programs run on one worker, like asyncio itself, so that they print exactly the
# blog's output (see examples/README.md); the scaling runner then shows every core at work.
demo: all
	@set -e; export CREW_WORKERS=$${CREW_WORKERS:-1}; \
	progs=$$(find $(BUILD)/examples -maxdepth 1 -type f -perm -u+x -name 'asyncio_*' 2>/dev/null | sort -V); \
	[ -n "$$progs" ] || { echo "make demo: no asyncio examples in $(BUILD)/examples" >&2; exit 1; }; \
	for p in $$progs; do printf '\n=== %s (CREW_WORKERS=%s) ===\n' "$${p##*/}" "$$CREW_WORKERS"; "$$p"; done
	@tools/deps.sh python3 gnuplot-nox
	@printf '\n=== scaling of the batch workloads (tools/scale --quick; full run: tools/scale) ===\n'
	CREW_BUILD_DIR=$(BUILD) tools/scale --quick --out $(BUILD)/scale-quick

bench: all
	tools/build-peers.sh
	CREW_BUILD_DIR=$(BUILD) tools/bench-compare.sh

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

asan: deps
	tools/sanitize.sh address

tsan: deps
	tools/sanitize.sh thread

valgrind:
	@tools/deps.sh valgrind
	$(MAKE) all
	tools/valgrind.sh $(BUILD)

clang:
	@tools/deps.sh clang
	$(call configure,build-clang,-DCMAKE_C_COMPILER=clang -DCREW_WERROR=ON $(CMAKE_ARGS))
	cmake --build build-clang
	$(call ctest,build-clang)

clean:
	rm -rf $(BUILD) build-*/
