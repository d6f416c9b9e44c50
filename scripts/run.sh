#!/usr/bin/env bash
# Run Lamina: install (a no-op when nothing changed), then `lamina serve` with the given arguments.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bash "$ROOT/scripts/install.sh"
exec "$ROOT/.venv/bin/lamina" serve "$@"
