#!/usr/bin/env bash
# Fuzzing (not a CI test; CI replays the committed corpora): builds the
# libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined) in
# build-fuzz/, then runs each target in turn for SECONDS, seeded with its
# committed corpus (tests/fuzz/corpus/NAME), at nice 19. Afterwards the inputs
# that add coverage are merged into the committed corpus (-merge=1: only what
# the committed corpus does not already cover). Crashes, leaks, timeouts and
# OOMs are kept in $FUZZ_WORK/NAME/artifacts/ and reported; a crash input
# belongs in the corpus together with its fix.
# Usage: scripts/fuzz.sh [SECONDS (600)] [TARGET...]   (default: every target)
# The build step takes the shared CPU lock; the fuzzing itself does not (it
# runs at nice 19 so that other builds go first).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
shift || true
ALL=(amf chunk handshake flv codec http config segmenter range recplaylist)
TARGETS=("${@:-${ALL[@]}}")
read -r -a TARGETS <<< "${TARGETS[*]}"
WORK=${FUZZ_WORK:-/tmp/onair-fuzz}
B=build-fuzz
MAX_CORPUS_KB=2048

command -v clang >/dev/null || { echo "fuzz: clang is needed (scripts/setup.sh --test)" >&2; exit 1; }
if [[ ! -f $B/build.ninja ]]; then
  CC=clang flock /tmp/onair-cpu.lock meson setup "$B" -Dfuzzing=true \
    -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized >/dev/null
fi
flock /tmp/onair-cpu.lock ninja -C "$B" $(printf 'tests/fuzz/fuzz_%s ' "${TARGETS[@]}") >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
printf '%-10s %6s %12s %8s %8s %8s %8s %s\n' target secs execs exec/s cov ft corpus+ crashes
status=0
for t in "${TARGETS[@]}"; do
  d=$WORK/$t
  corpus=tests/fuzz/corpus/$t
  rm -rf "$d/artifacts"
  mkdir -p "$d/grown" "$d/artifacts"
  before=$(ls "$corpus" | wc -l)
  rc=0
  t0=$(date +%s)
  nice -n 19 "$B/tests/fuzz/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$d/artifacts/" "$d/grown" "$corpus" \
    > "$d/log" 2>&1 || rc=$?
  el=$(($(date +%s) - t0))
  # Keep only what adds coverage to the committed corpus.
  nice -n 19 "$B/tests/fuzz/fuzz_$t" -merge=1 "$corpus" "$d/grown" > "$d/merge.log" 2>&1 || true
  after=$(ls "$corpus" | wc -l)
  kb=$(du -sk "$corpus" | cut -f1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$d/log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$d/log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$d/log" | tail -1 | cut -d' ' -f2)
  crashes=$(find "$d/artifacts" -type f | wc -l)
  printf '%-10s %6s %12s %8s %8s %8s %8s %s\n' "$t" "$el" "${execs:-?}" "${eps:-?}" \
    "${cov:-?}" "${ft:-?}" "+$((after - before))" "$crashes"
  if ((rc != 0 || crashes > 0)); then
    status=1
    echo "  $t: exit $rc; artifacts in $d/artifacts; log $d/log" >&2
    grep -m3 -E 'ERROR|invariant failed|runtime error' "$d/log" | sed 's/^/  /' >&2 || true
  fi
  ((kb <= MAX_CORPUS_KB)) || echo "  $t: corpus is ${kb} KB (> ${MAX_CORPUS_KB} KB): prune it" >&2
done
exit $status
