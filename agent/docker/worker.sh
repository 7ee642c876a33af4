#!/usr/bin/env bash
# Run the agent image as a Prefect worker against the stack (make agent-docker).
#
#   agent/docker/worker.sh run     # foreground; Ctrl-C stops the worker and removes the container
#   agent/docker/worker.sh start   # detached (tests); `stop` ends it
#   agent/docker/worker.sh stop    # stop only the container recorded in the cid file (make down)
#   agent/docker/worker.sh status
#
# The container uses the host network, so the stack's 127.0.0.1 URLs work unchanged. Settings
# reach it as environment variables passed by name only (`-e NAME`, the value never appears on a
# command line): PREFECT_API_URL/KEY/AUTH_STRING, PREFECT_LOGGING_*, PREFECT_WORKER_*, TO_BIKES_*,
# AWS_* and MLFLOW_*, minus host paths (TO_BIKES_STATE_DIR, PREFECT_HOME).
# The container id is recorded in $TO_BIKES_STATE_DIR/agent-docker.cid (default .stack/).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CID_FILE="$STATE_DIR/agent-docker.cid"
IMAGE="${TO_BIKES_AGENT_IMAGE:-to-bikes-agent}:${TO_BIKES_AGENT_TAG:-latest}"
NAME="${TO_BIKES_AGENT_CONTAINER:-to-bikes-agent}"
STOP_SECONDS=30

forwarded_env() {
  # Prints `-e NAME` for each setting to pass through; names only, never values.
  local name
  for name in $(compgen -e | sort); do
    case "$name" in
      TO_BIKES_STATE_DIR | TO_BIKES_DOCKERD_ARGS | TO_BIKES_AGENT_* | TO_BIKES_WHEEL_PYTHON) ;;
      PREFECT_API_URL | PREFECT_API_KEY | PREFECT_API_AUTH_STRING | PREFECT_LOGGING_* | PREFECT_WORKER_*)
        printf -- '-e\n%s\n' "$name" ;;
      TO_BIKES_* | AWS_* | MLFLOW_*) printf -- '-e\n%s\n' "$name" ;;
    esac
  done
}

recorded_cid() {
  if [ -s "$CID_FILE" ]; then cat "$CID_FILE"; fi
}

run_worker() {
  local mode="$1" env_args=()
  if [ -n "$(recorded_cid)" ] && docker container inspect "$(recorded_cid)" >/dev/null 2>&1; then
    echo "agent container: already running ($(recorded_cid | cut -c1-12)); stop it with: make down" >&2
    exit 1
  fi
  rm -f "$CID_FILE"
  docker image inspect "$IMAGE" >/dev/null 2>&1 || {
    echo "agent container: image $IMAGE not found; build it with: make agent-image" >&2
    exit 1
  }
  [ -n "${PREFECT_API_URL:-}" ] || {
    echo "agent container: PREFECT_API_URL is not set; set it in .env or the environment." >&2
    exit 2
  }
  mkdir -p "$STATE_DIR"
  mapfile -t env_args < <(forwarded_env)
  local args=(run --rm --init --network host --name "$NAME" --cidfile "$CID_FILE" "${env_args[@]}")
  if [ "$mode" = detached ]; then
    docker "${args[@]}" --detach "$IMAGE" worker >/dev/null
    echo "agent container: $NAME started from $IMAGE (cid file $CID_FILE)"
    return 0
  fi
  echo "agent container: $NAME from $IMAGE, pool ${TO_BIKES_WORK_POOL:-to-bikes}; Ctrl-C or make down stops it"
  trap 'stop_worker >/dev/null' EXIT
  # Foreground: the docker client forwards Ctrl-C (SIGINT) to the worker through --init.
  docker "${args[@]}" "$IMAGE" worker || true
}

stop_worker() {
  local cid
  cid="$(recorded_cid)"
  if [ -z "$cid" ]; then
    echo "agent container: nothing to stop"
    return 0
  fi
  if docker container inspect "$cid" >/dev/null 2>&1; then
    docker stop --time "$STOP_SECONDS" "$cid" >/dev/null 2>&1 || true
    docker rm --force "$cid" >/dev/null 2>&1 || true
    echo "agent container: stopped ${cid:0:12}"
  fi
  rm -f "$CID_FILE"
}

show_status() {
  local cid
  cid="$(recorded_cid)"
  if [ -n "$cid" ] && docker container inspect "$cid" >/dev/null 2>&1; then
    docker container inspect -f "agent container: {{.Name}} {{.State.Status}} health={{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}" "$cid"
  else
    echo "agent container: not running"
    return 3
  fi
}

case "${1:-}" in
  run) run_worker foreground ;;
  start) run_worker detached ;;
  stop) stop_worker ;;
  status) show_status ;;
  *)
    echo "usage: $0 run|start|stop|status" >&2
    exit 2
    ;;
esac
