#!/usr/bin/env bash
# Make sure axe-core (npm) is installed for the browser suites' accessibility
# pass, and print the path of axe.min.js (the tests inject it into the page).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.axe"
AXE_VERSION='axe-core@4'
JS="$STATE/node_modules/axe-core/axe.min.js"

if [[ ! -f "$JS" ]]; then
  if ! command -v npm >/dev/null; then
    echo "axe.sh: npm is missing: install Node.js and npm (Debian: apt-get install npm)" >&2
    exit 1
  fi
  echo "axe.sh: installing $AXE_VERSION into $STATE" >&2
  mkdir -p "$STATE"
  npm install --prefix "$STATE" --no-audit --no-fund --silent "$AXE_VERSION" >&2
fi
echo "$JS"
