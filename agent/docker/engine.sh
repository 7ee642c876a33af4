#!/usr/bin/env bash
# The Docker engine for the agent image: use the one that answers, else start dockerd.
#
#   agent/docker/engine.sh start   # no-op when `docker info` answers; else start dockerd, record its pid
#   agent/docker/engine.sh stop    # stop only the dockerd this script started (pid file), nothing else
#   agent/docker/engine.sh status
#
# The pid file and log live in the stack state dir (TO_BIKES_STATE_DIR, default .stack/).
# The daemon runs without iptables or a bridge (containers use --network host). Storage: overlay2
# when the kernel has overlay (a container starts in about 1 s), else vfs (it copies the whole
# 1.2 GB image for every container: about a minute here). Override with TO_BIKES_DOCKERD_ARGS.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"
NETWORK_ARGS="--iptables=false --bridge=none"
WAIT_TRIES=120 # 0.5 s apart: at most one minute for the daemon to answer

engine_answers() {
  docker info >/dev/null 2>&1
}

recorded_pid() {
  # Prints the recorded pid if that process is still a dockerd; else nothing.
  [ -f "$PID_FILE" ] || return 0
  local pid
  pid="$(cat "$PID_FILE")"
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "dockerd" ]; then
    echo "$pid"
  fi
}

storage_drivers() {
  # The drivers to try, best first (one entry when TO_BIKES_DOCKERD_ARGS is set).
  if [ -n "${TO_BIKES_DOCKERD_ARGS:-}" ]; then
    echo custom
  elif grep -qw overlay /proc/filesystems; then
    echo overlay2 vfs
  else
    echo vfs
  fi
}

launch_dockerd() {
  # Starts dockerd with storage driver $1; returns 0 once it answers, 1 if it exits or times out.
  local args="${TO_BIKES_DOCKERD_ARGS:-}"
  [ "$1" = custom ] || args="--storage-driver=$1 $NETWORK_ARGS"
  # setsid: the daemon outlives this shell and does not get the terminal's Ctrl-C.
  # shellcheck disable=SC2086
  setsid dockerd $args >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  for _ in $(seq "$WAIT_TRIES"); do
    engine_answers && return 0
    [ -n "$(recorded_pid)" ] || return 1
    sleep 0.5
  done
  stop_engine >/dev/null
  return 1
}

start_engine() {
  if engine_answers; then
    echo "docker engine: already answering (not started by this script)"
    return 0
  fi
  command -v dockerd >/dev/null 2>&1 || {
    echo "docker engine: no engine answers and dockerd is not installed; install docker.io (apt-get install -y docker.io)." >&2
    exit 1
  }
  [ "$(id -u)" -eq 0 ] || {
    echo "docker engine: no engine answers and starting dockerd needs root; start Docker or run as root." >&2
    exit 1
  }
  mkdir -p "$STATE_DIR"
  local driver
  for driver in $(storage_drivers); do
    if launch_dockerd "$driver"; then
      echo "docker engine: started dockerd pid $(cat "$PID_FILE") with storage driver $driver (log $LOG_FILE)"
      return 0
    fi
    echo "docker engine: dockerd with storage driver $driver did not answer" >&2
  done
  echo "docker engine: dockerd did not start; see the last lines of $LOG_FILE:" >&2
  tail -n 15 "$LOG_FILE" >&2 || true
  rm -f "$PID_FILE"
  exit 1
}

stop_engine() {
  local pid
  pid="$(recorded_pid)"
  if [ -z "$pid" ]; then
    rm -f "$PID_FILE"
    echo "docker engine: nothing to stop (no dockerd started by this script)"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq "$WAIT_TRIES"); do
    [ -d "/proc/$pid" ] || break
    sleep 0.5
  done
  if [ -d "/proc/$pid" ]; then
    echo "docker engine: dockerd pid $pid did not stop after SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  echo "docker engine: stopped dockerd pid $pid"
}

show_status() {
  local pid
  pid="$(recorded_pid)"
  if engine_answers; then
    echo "docker engine: answering${pid:+ (dockerd pid $pid, started by this script)}"
  else
    echo "docker engine: not answering"
    return 1
  fi
}

case "${1:-}" in
  start) start_engine ;;
  stop) stop_engine ;;
  status) show_status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
