#!/usr/bin/env bash
# Download every wheel pinned in requirements/image.txt (hash-checked) into agent/wheelhouse/,
# so the image build installs offline with --no-index --find-links --require-hashes.
# pip (uv has no download command) uses this machine's ordinary configuration (index, mirrors,
# find-links): the model env's pip from the lock, else python3's. The folder is emptied and
# refilled when the lock file changes, so no stale wheel reaches the image.
#
#   agent/docker/wheelhouse.sh
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
LOCK="$REPO_ROOT/requirements/image.txt"
WHEELHOUSE="$REPO_ROOT/agent/wheelhouse"
STAMP="$WHEELHOUSE/.lock.sha256"
LOG_FILE="$STATE_DIR/wheelhouse.log"
PYTHON="${TO_BIKES_WHEEL_PYTHON:-$REPO_ROOT/.venv/bin/python}"
"$PYTHON" -m pip --version >/dev/null 2>&1 || PYTHON=python3

[ -f "$LOCK" ] || {
  echo "wheelhouse: $LOCK is missing; run make lock." >&2
  exit 1
}
lock_sum="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$lock_sum" ]; then
  echo "wheelhouse: up to date with requirements/image.txt ($(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels)"
  exit 0
fi
rm -rf "$WHEELHOUSE"
mkdir -p "$WHEELHOUSE" "$(dirname "$LOG_FILE")"
start=$SECONDS
"$PYTHON" -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
  --dest "$WHEELHOUSE" -r "$LOCK" >"$LOG_FILE" 2>&1 || {
  grep -v "is ignored: it is neither a file nor a directory" "$LOG_FILE" | tail -n 20 >&2
  echo "wheelhouse: pip download of requirements/image.txt failed (log $LOG_FILE); the image cannot be built offline." >&2
  exit 1
}
echo "$lock_sum" >"$STAMP"
echo "wheelhouse: $(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1), in $((SECONDS - start)) s"
