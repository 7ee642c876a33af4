#!/usr/bin/env bash
# Build the agent image (make agent-image): engine, uv, wheelhouse, base image, staged context, build.
#
#   agent/docker/image.sh
#
# Environment: TO_BIKES_AGENT_IMAGE (default to-bikes-agent; tagged :latest and :<git sha>),
# TO_BIKES_AGENT_BASE_IMAGE (default: the Dockerfile's pinned official image if it is present
# or can be pulled, else local/debian:bookworm-slim made with debootstrap).
# The build context is agent/.build/context with only what the Dockerfile copies, so nothing
# else from the checkout (.env, data, .stack) can reach the image.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
IMAGE="${TO_BIKES_AGENT_IMAGE:-to-bikes-agent}"
LOCAL_BASE="local/debian:bookworm-slim"
CONTEXT="$REPO_ROOT/agent/.build/context"
UV="$REPO_ROOT/.tools/bin/uv"
PULL_SECONDS=120

choose_base() {
  # Prints the base image to build on, making the local Debian one when needed.
  if [ -n "${TO_BIKES_AGENT_BASE_IMAGE:-}" ]; then
    [ "$TO_BIKES_AGENT_BASE_IMAGE" != "$LOCAL_BASE" ] || "$DOCKER_DIR/base_image.sh" "$LOCAL_BASE" >&2
    echo "$TO_BIKES_AGENT_BASE_IMAGE"
    return 0
  fi
  local official
  official="$(sed -n 's/^ARG BASE_IMAGE=//p' "$REPO_ROOT/agent/Dockerfile")"
  if docker image inspect "$official" >/dev/null 2>&1 ||
    timeout "$PULL_SECONDS" docker pull --quiet "$official" >/dev/null 2>&1; then
    echo "$official"
    return 0
  fi
  echo "agent image: cannot pull $official; building on $LOCAL_BASE instead" >&2
  "$DOCKER_DIR/base_image.sh" "$LOCAL_BASE" >&2
  echo "$LOCAL_BASE"
}

stage_context() {
  rm -rf "$CONTEXT"
  mkdir -p "$CONTEXT/requirements"
  cp "$REPO_ROOT/requirements/image.txt" "$CONTEXT/requirements/image.txt"
  cp "$REPO_ROOT/agent/entrypoint.sh" "$CONTEXT/entrypoint.sh"
  cp "$REPO_ROOT/agent/bin/to-bikes-engine" "$CONTEXT/to-bikes-engine"
  cp "$REPO_ROOT/agent/runtime_imports.py" "$CONTEXT/runtime_imports.py"
  cp "$REPO_ROOT/agent/prune_venv.py" "$CONTEXT/prune_venv.py"
  # The hash-pinned uv of requirements/uv.txt (make install puts it in .tools/) installs the venv.
  cp "$UV" "$CONTEXT/uv"
  # Hard links: no copy of ~200 MB of wheels; the build cache keys on content, not mtimes.
  cp -al "$REPO_ROOT/agent/wheelhouse" "$CONTEXT/wheelhouse" 2>/dev/null ||
    cp -a "$REPO_ROOT/agent/wheelhouse" "$CONTEXT/wheelhouse"
}

pick_docker() {
  # Prints a docker client that builds with BuildKit (buildx plugin, or a pre-23 client with
  # DOCKER_BUILDKIT=1), else the first one (legacy builder, several times slower on vfs).
  local client major
  for client in $(type -ap docker); do
    if "$client" buildx version >/dev/null 2>&1; then
      echo "$client"
      return 0
    fi
    major="$("$client" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)"
    if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then
      echo "$client"
      return 0
    fi
  done
  echo "agent image: no docker client with BuildKit; using the legacy builder (slower)" >&2
  command -v docker
}

git_commit() {
  local sha
  sha="$(git -C "$REPO_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo nocommit)"
  [ -z "$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null)" ] || sha="$sha-dirty"
  echo "$sha"
}

"$DOCKER_DIR/engine.sh" start
[ -x "$UV" ] || make -C "$REPO_ROOT" --no-print-directory .tools/.synced
"$DOCKER_DIR/wheelhouse.sh"
base="$(choose_base)"
stage_context
commit="$(git_commit)"
client="$(pick_docker)"
echo "agent image: building $IMAGE:latest and $IMAGE:$commit on $base with $client"
start=$SECONDS
# --network host: the engine runs without a bridge; only the python stage's apt-get uses it.
DOCKER_BUILDKIT=1 "$client" build --force-rm --network host -f "$REPO_ROOT/agent/Dockerfile" \
  --build-arg BASE_IMAGE="$base" --build-arg GIT_COMMIT="$commit" \
  -t "$IMAGE:latest" -t "$IMAGE:$commit" "$CONTEXT"
size="$(docker image inspect -f '{{.Size}}' "$IMAGE:latest")"
echo "agent image: $IMAGE:$commit built in $((SECONDS - start)) s, $((size / 1000000)) MB"
