#!/usr/bin/env bash
# deps.sh [GROUP|PACKAGE...] - make sure the Debian 12 packages crew needs are installed.
#
# Always checks what `make`, `make test` and `make demo` need. Each argument adds a group
# (clang, valgrind) or, when it is no group, names one more Debian package
# (tools/deps.sh python3). Prints nothing when everything is there. Missing packages are
# installed with apt-get when run as root; otherwise the command to run is printed and
# the exit status is 1.
set -euo pipefail

pkgs=(gcc libc6-dev make cmake ninja-build pkg-config libck-dev liburing-dev libcriterion-dev)
for arg in "$@"; do
	case $arg in
	clang) pkgs+=(clang) ;;        # the clang build; its sanitizer runtimes come with it
	valgrind) pkgs+=(valgrind) ;;
	*) pkgs+=("$arg") ;;
	esac
done

if ! command -v dpkg-query >/dev/null; then
	echo "deps.sh: not a Debian system; make sure these (or your system's equivalents) are installed: ${pkgs[*]}" >&2
	exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
	case $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) in
	ii*) ;;
	*) missing+=("$p") ;;
	esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
	echo "Install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2
