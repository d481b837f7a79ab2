#!/usr/bin/env bash
# Runs every test suite: the normal build, then an AddressSanitizer +
# UndefinedBehaviorSanitizer build of the same unit, fuzz-replay and
# integration tests. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

status=0
echo "== tests (build/)"
meson test -C build --print-errorlogs || status=1

echo "== tests under ASan+UBSan (build-asan/)"
if [[ ! -f build-asan/build.ninja ]]; then
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug >/dev/null
fi
ninja -C build-asan >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C build-asan --print-errorlogs --timeout-multiplier 3 || status=1

if ((status)); then echo "test.sh: FAILED"; else echo "test.sh: all suites passed"; fi
exit $status
