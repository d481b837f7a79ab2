#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs onair on its
# built-in defaults (or pass --config FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/onair "$@"
