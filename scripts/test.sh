#!/usr/bin/env bash
# Run the test suite: install, build the real runtime interface clients once (cached
# under ~/.cache/lamina-tests, so only the first run is slow), then pytest.
# Arguments go to pytest; with none, the whole tests/ directory runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/install.sh --test
.venv/bin/python tests/support/ric_builds.py

if [ "$#" -eq 0 ]; then
    set -- tests
fi
# `python -m pytest` puts the repo root on sys.path, so tests can import tests.support.
exec .venv/bin/python -m pytest -q "$@"
