#!/usr/bin/env bash
# Run scripts/recon_polars.py with Polars from PyPI, in the bench venv
# (.venv-bench), installed on first use. Used by `payloop bench recon`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-bench"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" -c 'import polars' 2>/dev/null; then
  echo "polars.sh: installing polars into $VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'polars>=1,<2'
fi
exec "$VENV/bin/python" "$ROOT/scripts/recon_polars.py" "$@"
