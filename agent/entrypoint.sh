#!/usr/bin/env bash
# Entrypoint of the to-bikes agent image: a Prefect process worker for one work pool.
#
#   worker (default)  prefect worker start --pool $TO_BIKES_WORK_POOL [--work-queue Q ...]
#   health            exit 0 when the worker's health endpoint says it is polling
#   any other command is run as given (e.g. `python -c ...`, `prefect version`)
#
# Everything comes from environment variables at run time, nothing is baked in:
#   PREFECT_API_URL (required; unset, Prefect would silently start a throw-away server),
#   PREFECT_API_KEY / PREFECT_API_AUTH_STRING when the server needs them,
#   TO_BIKES_WORK_POOL (default to-bikes), TO_BIKES_WORK_QUEUES (comma-separated; empty = all),
#   TO_BIKES_WORKER_NAME, TO_BIKES_WORKER_TYPE (default process), and the TO_BIKES_*, AWS_*,
#   MLFLOW_* settings that the flow code reads (inherited by each flow-run process).
#   TO_BIKES_HEARTBEAT_SECONDS (default 30, at least 30): every flow run sends a Prefect heartbeat
#   this often (PREFECT_FLOWS_HEARTBEAT_FREQUENCY); `make deploy`'s automation marks a run Crashed
#   after three missed ones, so it must be the value `make deploy` was run with.
# The flow code itself is pulled from S3 by each flow run (the deployment's pull step).
set -euo pipefail

set_heartbeat() {
  local seconds="${TO_BIKES_HEARTBEAT_SECONDS:-30}"
  if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 30 ]; then
    echo "to-bikes-agent: TO_BIKES_HEARTBEAT_SECONDS=$seconds is invalid; set a whole number of seconds >= 30." >&2
    exit 2
  fi
  export PREFECT_FLOWS_HEARTBEAT_FREQUENCY="$seconds"
}

start_worker() {
  if [ -z "${PREFECT_API_URL:-}" ]; then
    echo "to-bikes-agent: PREFECT_API_URL is not set; pass it with docker run -e PREFECT_API_URL=..." >&2
    exit 2
  fi
  local args=(worker start --pool "${TO_BIKES_WORK_POOL:-to-bikes}" --type "${TO_BIKES_WORKER_TYPE:-process}")
  local queue queues
  IFS=',' read -ra queues <<<"${TO_BIKES_WORK_QUEUES:-}"
  for queue in "${queues[@]}"; do
    queue="${queue//[[:space:]]/}"
    [ -z "$queue" ] || args+=(--work-queue "$queue")
  done
  [ -z "${TO_BIKES_WORKER_NAME:-}" ] || args+=(--name "$TO_BIKES_WORKER_NAME")
  echo "to-bikes-agent: prefect ${args[*]} (api ${PREFECT_API_URL})"
  exec prefect "${args[@]}" --with-healthcheck
}

check_health() {
  exec python -c '
import os, sys, urllib.request
url = "http://{}:{}/health".format(
    os.environ.get("PREFECT_WORKER_WEBSERVER_HOST", "127.0.0.1"),
    os.environ.get("PREFECT_WORKER_WEBSERVER_PORT", "8080"),
)
try:
    with urllib.request.urlopen(url, timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:
    print(f"worker health {url}: {error}", file=sys.stderr)
    sys.exit(1)
'
}

set_heartbeat
case "${1:-worker}" in
  worker) start_worker ;;
  health) check_health ;;
  *) exec "$@" ;;
esac
