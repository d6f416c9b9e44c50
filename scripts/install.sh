#!/usr/bin/env bash
# Make this checkout runnable: Debian packages, then .venv with `pip install -e .`.
#   install.sh          what `lamina serve` needs (scripts/run.sh)
#   install.sh --test   that, plus the test extras and the toolchain that builds the real runtime
#                       interface clients (scripts/test.sh)
# Run on every scripts/run.sh and scripts/test.sh, so the no-change path must stay fast
# and silent: one dpkg-query for all packages, and pip only when the venv's stamp for the
# requested extras no longer matches what the install depends on.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

EXTRAS=""
case "${1:-}" in
    "") ;;
    --test) EXTRAS=test ;;
    *)
        echo "usage: install.sh [--test]" >&2
        exit 2
        ;;
esac

# bubblewrap is Lamina's sandbox; /usr/bin/python3 is the interpreter functions see inside it; nftables
# filters each environment's network (NAT out, nothing to the host).
DEB_PACKAGES=(bubblewrap nftables python3 python3-venv ca-certificates)
if [ "$EXTRAS" = test ]; then
    # iproute2 serves the tests' network setup. The rest builds the real runtime interface clients for the
    # tests: aws-lambda-ric (npm) compiles curl (autotools) and aws-lambda-cpp (cmake) and its addon via
    # node-gyp (python3).
    DEB_PACKAGES+=(iproute2 g++ make cmake autoconf automake libtool xz-utils unzip)
fi

die() {
    echo "install.sh: $*" >&2
    exit 1
}

# Run a command with its output hidden unless it fails.
quiet() {
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1 </dev/null; then
        cat "$log" >&2
        rm -f "$log"
        die "failed: $*"
    fi
    rm -f "$log"
}

# One dpkg-query for all of them (one per package costs ~10 ms each); unknown packages print nothing.
missing_debian_packages() {
    local -A installed=()
    local status pkg
    while IFS=$'\t' read -r status pkg; do
        if [[ $status == *" ok installed" ]]; then
            installed[$pkg]=1
        fi
    done < <(dpkg-query -W -f='${Status}\t${Package}\n' "${DEB_PACKAGES[@]}" 2>/dev/null || true)
    for pkg in "${DEB_PACKAGES[@]}"; do
        if [ -z "${installed[$pkg]:-}" ]; then
            printf '%s ' "$pkg"
        fi
    done
}

install_debian_packages() {
    command -v dpkg-query >/dev/null 2>&1 || die "not a Debian system; install these by hand: ${DEB_PACKAGES[*]}"
    local missing
    missing=$(missing_debian_packages)
    missing=${missing% }
    [ -n "$missing" ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing Debian packages: $missing
run as root: apt-get update && apt-get install -y --no-install-recommends $missing"
    fi
    export DEBIAN_FRONTEND=noninteractive
    quiet apt-get update -qq
    # shellcheck disable=SC2086  # $missing is a space-separated package list
    quiet apt-get install -y -qq --no-install-recommends $missing
}

# Print the real path of the first Python >= 3.10 found. `sys.executable` resolves the
# pyenv shim, so the venv does not pay the shim's start-up cost on every run.
find_python() {
    local cand exe
    for cand in "${LAMINA_PYTHON:-}" python3 python3.13 python3.12 python3.11 python3.10 /usr/bin/python3; do
        if [ -z "$cand" ] || ! command -v "$cand" >/dev/null 2>&1; then
            continue
        fi
        exe=$("$cand" -c 'import sys; print(sys.executable if sys.version_info >= (3, 10) else "")' \
            2>/dev/null) || continue
        if [ -n "$exe" ]; then
            echo "$exe"
            return 0
        fi
    done
    return 1
}

venv_is_healthy() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        >/dev/null 2>&1
}

# What an install depends on: the dependencies (pyproject.toml), the interpreter the venv runs, and the
# checkout path (an editable install points at the tree it was made from).
install_key() {
    echo "$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) $(readlink -f "$VENV/bin/python") $ROOT"
}

# One stamp per set of extras: a test install also satisfies a plain one, not the other way round.
stamp_for() {
    echo "$VENV/.lamina-install-stamp${1:+-$1}"
}

install_venv() {
    local stamp
    stamp=$(stamp_for "$EXTRAS")
    if [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/lamina" ] && [ -f "$stamp" ] \
        && [ "$(<"$stamp")" = "$(install_key)" ]; then
        return 0
    fi
    if ! venv_is_healthy; then
        local python
        python=$(find_python) || die "no Python >= 3.10 found (set LAMINA_PYTHON to one)"
        rm -rf "$VENV"
        quiet "$python" -m venv "$VENV"
    fi
    quiet "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e "${ROOT}${EXTRAS:+[$EXTRAS]}"
    local key
    key=$(install_key)
    echo "$key" >"$stamp"
    echo "$key" >"$(stamp_for "")"
}

warn_without_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "install.sh: warning: node/npm not found; Node.js functions and their tests need Node 20+" >&2
    fi
}

# Serialise concurrent runs (several terminals, CI steps) on this script's own file.
exec 9<"${BASH_SOURCE[0]}"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

install_debian_packages
install_venv
warn_without_node
