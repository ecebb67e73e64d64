#!/usr/bin/env bash
# Contract test: schemathesis (PyPI, its own venv) over infra/openapi.yaml
# against a `payloop serve` started here on 127.0.0.1 with a throw-away data
# directory. Three runs: with the dev client key, with the platform key (each
# endpoint takes one of them; the other must get a documented 401), and the
# cashier's endpoints with a cashier session token minted for the run.
# Any failing check fails the script. Serve is stopped by PID on exit.
#
#   scripts/schemathesis.sh                   # builds target/debug/payloop if needed
#   PAYLOOP_BIN=target/release/payloop scripts/schemathesis.sh
#   SCHEMATHESIS_EXAMPLES=50 SCHEMATHESIS_SEED=7 scripts/schemathesis.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv-schemathesis"
REQUIREMENT='schemathesis>=4,<5'
OPENAPI=infra/openapi.yaml
BIN="${PAYLOOP_BIN:-target/debug/payloop}"
# Bounded: a fixed seed and example count keep the step reproducible and
# under ~3 minutes on 2 cores.
SEED="${SCHEMATHESIS_SEED:-20240601}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-50}"
START_TIMEOUT_S=60
STOP_TIMEOUT_S=10
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance

log() { echo "schemathesis.sh: $*" >&2; }

export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

# ----------------------------------------------------------------- venv
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import schemathesis, sys; sys.exit(int(schemathesis.__version__.split(".")[0]) != 4)' 2>/dev/null; then
  log "installing $REQUIREMENT into $VENV"
  "$VENV/bin/python" -m pip install -q "$REQUIREMENT"
fi
log "$("$VENV/bin/schemathesis" --version)"

# ---------------------------------------------------------------- serve
if [[ -z "${PAYLOOP_BIN:-}" ]]; then
  log "building $BIN"
  cargo build -q -p payloop-cli --bin payloop
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/payloop-schemathesis.XXXXXX")"
DATA="$WORK/data"
SERVE_LOG="$WORK/serve.log"
SERVE_PID=""

stop_serve() {
  if [[ -n "$SERVE_PID" ]] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill "$SERVE_PID" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT_S))
    while kill -0 "$SERVE_PID" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        log "serve (pid $SERVE_PID) did not stop in ${STOP_TIMEOUT_S}s; killing it"
        kill -9 "$SERVE_PID" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap stop_serve EXIT

# A free port: bind port 0, read what the kernel gave, release it.
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE="http://127.0.0.1:$PORT"

RUST_LOG="${RUST_LOG:-warn}" "$BIN" serve --data-dir "$DATA" --host 127.0.0.1 --port "$PORT" --sandbox-port 0 \
  </dev/null >"$SERVE_LOG" 2>&1 &
SERVE_PID=$!

answers() {
  python3 - "$BASE/v1/payments/none" <<'PY' >/dev/null 2>&1
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PY
}
deadline=$((SECONDS + START_TIMEOUT_S))
until [[ -s "$DATA/dev-secrets.json" ]] && answers; do
  if ! kill -0 "$SERVE_PID" 2>/dev/null; then
    log "serve exited; last lines of its log:"
    tail -n 20 "$SERVE_LOG" >&2 || true
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    log "serve did not answer on $BASE within ${START_TIMEOUT_S}s"
    exit 1
  fi
  sleep 0.2
done
log "serve up on $BASE (pid $SERVE_PID)"

secret() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$DATA/dev-secrets.json" "$1"
}
CLIENT_KEY="$(secret client_key)"
PLATFORM_KEY="$(secret platform_key)"

# ------------------------------------------------------------------ runs
status=0
run() {
  local name="$1" key="$2"
  shift 2
  log "run: $name key (seed $SEED, at most $EXAMPLES examples per operation)"
  "$VENV/bin/schemathesis" run "$OPENAPI" "$@" \
    --url "$BASE" \
    --header "Authorization: Bearer $key" \
    --checks "$CHECKS" \
    --seed "$SEED" \
    --max-examples "$EXAMPLES" \
    --workers 1 \
    --no-shrink \
    --continue-on-failure \
    --warnings off \
    --report junit --report-junit-path "$ROOT/target/schemathesis-$name.xml" ||
    {
      log "run with the $name key FAILED"
      status=1
    }
  if ! kill -0 "$SERVE_PID" 2>/dev/null; then
    log "serve died during the $name run; last lines of its log:"
    tail -n 20 "$SERVE_LOG" >&2 || true
    exit 1
  fi
}
mkdir -p "$ROOT/target"
run client "$CLIENT_KEY"
run platform "$PLATFORM_KEY"
# The cashier's endpoints take only a player's cashier session token.
CASHIER_TOKEN="$(python3 - "$BASE" "$PLATFORM_KEY" <<'PY'
import json, sys, urllib.request
body = json.dumps({"player_id": "schemathesis", "currency": "EUR", "ttl_s": 3600}).encode()
req = urllib.request.Request(sys.argv[1] + "/v1/cashier/sessions", data=body, method="POST",
                             headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=5))["token"])
PY
)"
run cashier "$CASHIER_TOKEN" --include-tag cashier

if ((status != 0)); then
  log "FAILED"
else
  log "OK"
fi
exit "$status"
