#!/usr/bin/env bash
# Make this checkout runnable: Debian packages, then .venv with `pip install -e '.[test]'`.
# Run on every scripts/run.sh and scripts/test.sh, so the no-change path must stay fast
# and silent; each step is skipped when its result is already in place.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
STAMP="$VENV/.lamina-install-stamp"

# bubblewrap is Lamina's sandbox; /usr/bin/python3 is the interpreter functions see inside it; nftables
# filters each environment's network (NAT out, nothing to the host); iproute2 serves the tests' network setup.
# The rest builds the real runtime interface clients for the tests: aws-lambda-ric (npm)
# compiles curl (autotools) and aws-lambda-cpp (cmake) and its addon via node-gyp (python3).
DEB_PACKAGES=(bubblewrap nftables iproute2 python3 python3-venv ca-certificates g++ make cmake autoconf automake
    libtool xz-utils unzip)

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

missing_debian_packages() {
    local pkg
    for pkg in "${DEB_PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
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

install_venv() {
    if ! venv_is_healthy; then
        local python
        python=$(find_python) || die "no Python >= 3.10 found (set LAMINA_PYTHON to one)"
        rm -rf "$VENV"
        quiet "$python" -m venv "$VENV"
    fi
    # Keyed on the checkout path too: an editable install points at the tree it was made from.
    local want
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) $ROOT"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/lamina" ]; then
        return 0
    fi
    quiet "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e "${ROOT}[test]"
    echo "$want" >"$STAMP"
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
