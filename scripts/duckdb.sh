#!/usr/bin/env bash
# Run scripts/recon_duckdb.py with DuckDB from PyPI, in its own venv
# (.venv-bench), installed on first use. Used by `payloop bench recon`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-bench"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import duckdb' 2>/dev/null; then
  echo "duckdb.sh: installing duckdb into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'duckdb>=1,<2'
fi
exec "$VENV/bin/python" "$ROOT/scripts/recon_duckdb.py" "$@"
