#!/usr/bin/env bash
# Make a local Debian base image with debootstrap, for machines that cannot pull the
# official Python image. The Debian mirror is read from this machine's apt sources at run
# time (deb822 *.sources or sources.list), so no mirror host is written into the repo.
#
#   agent/docker/base_image.sh [IMAGE]   # default local/debian:bookworm-slim; no-op if it exists
#
# Slim: dpkg is told (/etc/dpkg/dpkg.cfg.d/) to leave out docs, man and info pages, locales and
# glibc's iconv modules (gconv: 2.9 MB compressed; Python's codecs do not use them, and UTF-8 and
# ASCII are built into glibc), for the packages the Dockerfile installs later too, and what
# debootstrap put there is removed. The image carries the label to-bikes.base-version: an image of
# an older recipe is made again.
#
# Needs root, debootstrap and a running engine (agent/docker/engine.sh start).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
IMAGE="${1:-local/debian:bookworm-slim}"
SUITE="${TO_BIKES_DEBIAN_SUITE:-bookworm}"
VERSION=2 # raise when slim_rootfs changes

read_mirror() {
  # First apt source that serves "$SUITE" itself (not -updates/-security), deb822 first.
  local found=""
  shopt -s nullglob
  for file in /etc/apt/sources.list.d/*.sources; do
    found="$(awk -v suite="$SUITE" '
      function flush() { if (!done && uri != "" && ok && enabled && deb) { print uri; done=1; exit } uri=""; ok=0; enabled=1; deb=0 }
      BEGIN { enabled=1 }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { uri=$2 }
      /^Types:/ { for (i=2; i<=NF; i++) if ($i == "deb") deb=1 }
      /^Suites:/ { for (i=2; i<=NF; i++) if ($i == suite) ok=1 }
      /^Enabled:[[:space:]]*no/ { enabled=0 }
      END { flush() }' "$file")"
    [ -n "$found" ] && break
  done
  if [ -z "$found" ] && [ -f /etc/apt/sources.list ]; then
    found="$(sed -E 's/\[[^]]*\]//' /etc/apt/sources.list |
      awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }')"
  fi
  echo "$found"
}

slim_rootfs() {
  # No docs, man/info pages or locales now or for any package installed later; no apt caches.
  cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/01-to-bikes-slim" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
path-exclude=/usr/lib/x86_64-linux-gnu/gconv/*
EOF
  find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/lintian/*
  find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -rf "$ROOTFS"/usr/lib/x86_64-linux-gnu/gconv
  # Keep the package index out of the image; the Dockerfile runs apt-get update itself.
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/lib/apt/lists/*
  rm -rf "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/*
}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  if [ "$(docker image inspect -f '{{index .Config.Labels "to-bikes.base-version"}}' "$IMAGE")" = "$VERSION" ]; then
    echo "base image: $IMAGE already present"
    exit 0
  fi
  echo "base image: $IMAGE is of an older recipe; making it again"
fi
command -v debootstrap >/dev/null 2>&1 || {
  echo "base image: debootstrap is not installed; install it (apt-get install -y debootstrap)." >&2
  exit 1
}
MIRROR="$(read_mirror)"
[ -n "$MIRROR" ] || {
  echo "base image: no apt source for suite '$SUITE' in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list." >&2
  exit 1
}

ROOTFS="$STATE_DIR/debootstrap-$SUITE"
rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"
trap 'rm -rf "$ROOTFS"' EXIT
echo "base image: debootstrap --variant=minbase $SUITE from the machine's apt mirror"
start=$SECONDS
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$STATE_DIR/debootstrap.log" 2>&1 || {
  echo "base image: debootstrap failed; see $STATE_DIR/debootstrap.log:" >&2
  tail -n 15 "$STATE_DIR/debootstrap.log" >&2
  exit 1
}
slim_rootfs
tar -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' --change "LABEL to-bikes.base-version=$VERSION" - "$IMAGE" >/dev/null
echo "base image: $IMAGE made in $((SECONDS - start)) s ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
