# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this file
# Sourced (not run) by every agent/docker script, so they all agree on where things are:
#   DOCKER_DIR  this folder (agent/docker), to call the other scripts
#   REPO_ROOT   the checkout, found from this file's place, whatever the caller's working directory
#   STATE_DIR   the stack state dir for pid, cid and log files: TO_BIKES_STATE_DIR, default .stack/
DOCKER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DOCKER_DIR/../.." && pwd)"
STATE_DIR="${TO_BIKES_STATE_DIR:-$REPO_ROOT/.stack}"
