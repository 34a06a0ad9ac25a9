#!/usr/bin/env bash
# The whole test suite: lint, types, then every test tier in one pytest run.
# Exit status is pytest's (or the first failing check's).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
t0=$(date +%s)

echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .
echo "== mypy"
$BIN/mypy events commands projections query_api infra
t1=$(date +%s)

echo "== pytest"
set +e
HYPOTHESIS_PROFILE=ci $BIN/pytest tests -q -p no:cacheprovider --durations=10
status=$?
set -e
t2=$(date +%s)
echo "== timings: checks $((t1 - t0))s, tests $((t2 - t1))s, total $((t2 - t0))s"
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
fi
exit "$status"
