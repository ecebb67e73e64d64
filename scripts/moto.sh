#!/usr/bin/env bash
# Start or stop a local moto server (an AWS-wire DynamoDB + SQS) for the
# conformance tests of the DynamoDB and SQS adapters.
#
#   scripts/moto.sh start    # venv in .venv, moto on 127.0.0.1:${MOTO_PORT:-5005}
#   scripts/moto.sh stop
#   scripts/moto.sh status
#
# Then: PAYLOOP_TEST_AWS_ENDPOINT=http://127.0.0.1:5005 \
#         cargo test -p payloop-tests --test conformance
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STATE="$ROOT/.moto"
PID_FILE="$STATE/moto.pid"
LOG_FILE="$STATE/moto.log"
PORT="${MOTO_PORT:-5005}"
ENDPOINT="http://127.0.0.1:$PORT"
START_TIMEOUT_S=30
STOP_TIMEOUT_S=10
MOTO_REQUIREMENT='moto[server]>=5,<6'

log() { echo "moto.sh: $*" >&2; }

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # A recycled pid is not ours: only a moto_server process counts.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server || return 1
  echo "$pid"
}

# Does anything answer HTTP on the endpoint? (Any status code counts.)
answers() {
  "$VENV/bin/python" - "$ENDPOINT/moto-api/" <<'PY' >/dev/null 2>&1
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PY
}

ensure_venv() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c 'import moto, moto.server, flask, flask_cors, sys; sys.exit(int(moto.__version__.split(".")[0]) != 5)' 2>/dev/null; then
    log "installing $MOTO_REQUIREMENT into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$MOTO_REQUIREMENT"
  fi
}

start() {
  ensure_venv
  mkdir -p "$STATE"
  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
  elif answers; then
    log "something already answers on $ENDPOINT (not started by this script); using it"
  else
    rm -f "$PID_FILE"
    # setsid: the server outlives the shell (and process group) that started it.
    # moto_server.py: moto's server with DynamoDB transactions isolated.
    setsid "$VENV/bin/python" "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$PORT" </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    local deadline=$((SECONDS + START_TIMEOUT_S))
    until answers; do
      if ! kill -0 "$pid" 2>/dev/null; then
        log "moto_server exited; last lines of $LOG_FILE:"
        tail -n 20 "$LOG_FILE" >&2 || true
        rm -f "$PID_FILE"
        exit 1
      fi
      if ((SECONDS >= deadline)); then
        log "moto_server did not answer on $ENDPOINT within ${START_TIMEOUT_S}s"
        kill "$pid" 2>/dev/null || true
        rm -f "$PID_FILE"
        exit 1
      fi
      sleep 0.2
    done
    log "started (pid $pid, log $LOG_FILE)"
  fi
  echo "$ENDPOINT"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  kill "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT_S))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "pid $pid did not stop in ${STOP_TIMEOUT_S}s; killing it"
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  log "stopped (pid $pid)"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running (pid $pid) at $ENDPOINT"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
