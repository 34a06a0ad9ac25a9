#!/usr/bin/env bash
# ffmpeg/ffprobe make video posters and MP4 renditions. Install the Debian package only
# when it is missing, so repeated `make run` / `make test` cost nothing.
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
  exit 0
fi
echo "== ffmpeg: not found, installing the Debian package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends ffmpeg
