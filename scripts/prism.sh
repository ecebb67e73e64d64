#!/usr/bin/env bash
# Start or stop Stoplight Prism (npm @stoplight/prism-cli 5) serving Adyen's
# own OpenAPI files with request validation, for the Adyen connector's
# contract tests. Every request schema there has additionalProperties:
# false, so any field Adyen does not know is a 422.
#
#   scripts/prism.sh start   # checkout on 127.0.0.1:${PRISM_CHECKOUT_PORT:-4010},
#                            # transfers on 127.0.0.1:${PRISM_TRANSFERS_PORT:-4011},
#                            # payout on 127.0.0.1:${PRISM_PAYOUT_PORT:-4012}
#   scripts/prism.sh stop    # prints how many requests Prism validated
#
# The specs are read from ../shared/specs/adyen (beside the repository) or
# $ADYEN_SPECS. One change is made to a copy of the Checkout file: Adyen's
# example answer to POST /sessions has no `url`, which a `mode: hosted`
# session always has, so the copy's example gains one (request schemas are
# untouched).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.prism"
SPECS="${ADYEN_SPECS:-$ROOT/../shared/specs/adyen}"
CHECKOUT_PORT="${PRISM_CHECKOUT_PORT:-4010}"
TRANSFERS_PORT="${PRISM_TRANSFERS_PORT:-4011}"
PAYOUT_PORT="${PRISM_PAYOUT_PORT:-4012}"
PRISM_VERSION='@stoplight/prism-cli@5'
START_TIMEOUT_S=60
STOP_TIMEOUT_S=10

log() { echo "prism.sh: $*" >&2; }

ensure_prism() {
  mkdir -p "$STATE"
  if [[ ! -x "$STATE/node_modules/.bin/prism" ]]; then
    log "installing $PRISM_VERSION into $STATE"
    npm install --prefix "$STATE" --no-audit --no-fund --silent "$PRISM_VERSION" >&2
  fi
}

derive_specs() {
  for f in CheckoutService-v71.json TransferService-v4.json PayoutService-v68.json; do
    [[ -f "$SPECS/$f" ]] || { log "missing $SPECS/$f (set ADYEN_SPECS)"; exit 1; }
  done
  python3 - "$SPECS/CheckoutService-v71.json" "$STATE/CheckoutService-v71.hosted.json" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
example = spec["components"]["examples"]["post-sessions-00.success-201"]["value"]
example["mode"] = "hosted"
example["url"] = "https://checkoutshopper-test.adyen.com/checkoutshopper/pay/session?id=CS451F2AB1ED897A94"
json.dump(spec, open(sys.argv[2], "w"))
PY
  cp "$SPECS/TransferService-v4.json" "$SPECS/PayoutService-v68.json" "$STATE/"
}

answers() {
  python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PY
}

start_one() {
  local name="$1" spec="$2" port="$3"
  local pid_file="$STATE/$name.pid" log_file="$STATE/$name.log"
  if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    log "$name already running (pid $(cat "$pid_file"))"
    return
  fi
  if answers "http://127.0.0.1:$port/"; then
    log "something not started by this script answers on 127.0.0.1:$port; stop it or set PRISM_${name^^}_PORT"
    exit 1
  fi
  setsid "$STATE/node_modules/.bin/prism" mock -h 127.0.0.1 -p "$port" --errors "$spec" \
    </dev/null >"$log_file" 2>&1 &
  local pid=$!
  echo "$pid" >"$pid_file"
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until answers "http://127.0.0.1:$port/"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited; last lines of $log_file:"
      tail -n 20 "$log_file" >&2 || true
      rm -f "$pid_file"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name did not answer on 127.0.0.1:$port within ${START_TIMEOUT_S}s"
      kill "$pid" 2>/dev/null || true
      rm -f "$pid_file"
      exit 1
    fi
    sleep 0.2
  done
  log "$name started (pid $pid, log $log_file)"
}

stop_one() {
  local name="$1" pid_file="$STATE/$1.pid"
  [[ -f "$pid_file" ]] || return 0
  local pid
  pid="$(cat "$pid_file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    local deadline=$((SECONDS + STOP_TIMEOUT_S))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then kill -9 "$pid" 2>/dev/null || true; break; fi
      sleep 0.2
    done
  fi
  rm -f "$pid_file"
  local ok bad
  ok="$(grep -c 'passed the validation rules' "$STATE/$name.log" || true)"
  bad="$(grep -c 'did not pass the validation rules' "$STATE/$name.log" || true)"
  log "$name stopped (pid $pid): $ok requests passed Adyen's schema, $bad refused"
}

case "${1:-}" in
  start)
    ensure_prism
    derive_specs
    start_one checkout "$STATE/CheckoutService-v71.hosted.json" "$CHECKOUT_PORT"
    start_one transfers "$STATE/TransferService-v4.json" "$TRANSFERS_PORT"
    start_one payout "$STATE/PayoutService-v68.json" "$PAYOUT_PORT"
    echo "http://127.0.0.1:$CHECKOUT_PORT http://127.0.0.1:$TRANSFERS_PORT http://127.0.0.1:$PAYOUT_PORT"
    ;;
  stop)
    stop_one checkout
    stop_one transfers
    stop_one payout
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
