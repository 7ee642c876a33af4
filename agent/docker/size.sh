#!/usr/bin/env bash
# The agent image's size as Docker shows it and as a registry stores it (make agent-image-size).
#
#   agent/docker/size.sh [IMAGE]   # default $TO_BIKES_AGENT_IMAGE:latest (to-bikes-agent:latest)
#
# Prints one line per layer (uncompressed tar, gzip -6 as `docker push` stores it) and three totals:
# `docker image inspect` Size, the layers gzipped one by one (what a registry stores and a node
# pulls), and `docker save IMAGE | gzip -c | wc -c` (the whole archive at once). Uses a scratch
# folder that it removes; needs about the image's uncompressed size on disk.
set -euo pipefail

IMAGE="${1:-${TO_BIKES_AGENT_IMAGE:-to-bikes-agent}:latest}"
docker image inspect "$IMAGE" >/dev/null 2>&1 || {
  echo "image size: $IMAGE not found; build it with: make agent-image" >&2
  exit 1
}
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
docker save "$IMAGE" | tar -x -C "$scratch"
total_tar=0
total_gz=0
# manifest.json lists the layers bottom first; the last entry of each step is its layer tar.
for layer in $(python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' \
  "$scratch/manifest.json"); do
  tar_bytes="$(stat -c %s "$scratch/$layer")"
  gz_bytes="$(gzip -6 -c "$scratch/$layer" | wc -c)"
  total_tar=$((total_tar + tar_bytes))
  total_gz=$((total_gz + gz_bytes))
  awk -v l="${layer#blobs/sha256/}" -v t="$tar_bytes" -v g="$gz_bytes" \
    'BEGIN { printf "layer %.12s %8.1f MB tar %8.1f MB gzip\n", l, t / 1e6, g / 1e6 }'
done
whole_gz="$(docker save "$IMAGE" | gzip -c | wc -c)"
inspect="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
awk -v i="$inspect" -v t="$total_tar" -v g="$total_gz" -v w="$whole_gz" -v n="$IMAGE" 'BEGIN {
  printf "%s: %.1f MB uncompressed (docker image inspect), %.1f MB as layer tars\n", n, i / 1e6, t / 1e6
  printf "%s: %.1f MB compressed as a registry stores it (each layer gzip -6), %.1f MB as docker save | gzip\n", n, g / 1e6, w / 1e6
}'
