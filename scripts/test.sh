#!/usr/bin/env bash
# The whole test suite: lint, types, the real servers of the scale stack, then
# every test tier in one pytest run. The servers are stopped whatever happens.
# Exit status is pytest's (or the first failing step's).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
t0=$(date +%s)

echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .
echo "== mypy"
$BIN/mypy events commands projections query_api infra
echo "== ffmpeg (video tests)"
./scripts/ensure-ffmpeg.sh
t1=$(date +%s)

echo "== servers: install (first run downloads into ~/.cache/glimpse)"
$BIN/python -m infra.servers.stack install
t2=$(date +%s)
echo "== servers: start"
trap '$BIN/python -m infra.servers.stack down || true' EXIT
eval "$($BIN/python -m infra.servers.stack up)"
t3=$(date +%s)

echo "== pytest"
set +e
HYPOTHESIS_PROFILE=ci $BIN/pytest tests -q -p no:cacheprovider --durations=10
status=$?
set -e
t4=$(date +%s)
echo "== timings: checks $((t1 - t0))s, server install $((t2 - t1))s, server start $((t3 - t2))s, tests $((t4 - t3))s, total $((t4 - t0))s"
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
fi
exit "$status"
