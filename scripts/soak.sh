#!/usr/bin/env bash
# Soak (not a test): build/onair under a mixed load for MINUTES (default 10):
#   - 8 publishers (ffmpeg -re -c copy of pre-encoded FLVs, looped); s0
#     reconnects every 20 s, s1 is killed with SIGKILL every 45 s and restarts;
#   - 200 HLS viewers (scripts/soak_clients.py, asyncio) polling the media
#     playlists (blocking reloads when LL-HLS is on) and fetching segments;
#   - a client sending garbage to both ports every second;
#   - a 10 s connection flood every minute.
# Prints every minute: RSS, open descriptors, threads, viewer errors on the
# streams that were not interrupted (should be 0), blocking reloads refused
# (400/503: the viewer drops its _HLS_msn), and init-segment changes and
# discontinuities seen on s0/s1 next to their reconnects (one of each per
# reconnect). At the end: RSS after the first
# minute vs at the end (must stay within 10%).
# Usage: scripts/soak.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-10}
BIN=${ONAIR_BIN:-build/onair}
[[ -x $BIN ]] || { echo "soak: $BIN not built (scripts/setup.sh)" >&2; exit 1; }
. scripts/bench_lib.sh
bench_init onair-soak

echo "soak: encoding the publishers' FLV files"
for i in 0 1 2 3 4 5 6 7; do
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=320x180:rate=30" \
    -f lavfi -i "sine=frequency=$((300 + 50 * i)):sample_rate=48000" -t 60 \
    -c:v libx264 -preset veryfast -b:v 300k -g 30 -pix_fmt yuv420p -c:a aac -b:a 64k \
    -f flv "$work/s$i.flv"
done

cat >"$work/onair.yaml" <<YAML
rtmp:
  listen: "127.0.0.1:0"
http:
  listen: "127.0.0.1:0"
hls:
  segment_seconds: 1
YAML
"$BIN" --config "$work/onair.yaml" 2>"$work/onair.log" >/dev/null &
ONAIR=$!
for _ in $(seq 100); do grep -q "ready:" "$work/onair.log" && break; sleep 0.1; done
read -r RTMP HTTP < <(sed -n 's/.*ready: rtmp port \([0-9]*\), http port \([0-9]*\).*/\1 \2/p' "$work/onair.log")
echo "soak: onair pid $ONAIR, rtmp $RTMP, http $HTTP, $MINUTES minutes"

declare -A pub
publish() { # NAME
  ffmpeg -nostdin -v error -re -stream_loop -1 -i "$work/$1.flv" -c copy -f flv \
    "rtmp://127.0.0.1:$RTMP/live/$1" 2>>"$work/ffmpeg.log" &
  pub[$1]=$!
}
for i in 0 1 2 3 4 5 6 7; do publish "s$i"; done
sleep 3
python3 scripts/soak_clients.py "$HTTP" "$RTMP" s0,s1,s2,s3,s4,s5,s6,s7 200 "$work/report.json" &
pids+=($!)

rss() { awk '/^VmRSS/ {print $2}' "/proc/$ONAIR/status"; }
threads() { awk '/^Threads/ {print $2}' "/proc/$ONAIR/status"; }
fds() { ls "/proc/$ONAIR/fd" | wc -l; }
report() { # FIELD STREAMS... -> sum
  python3 - "$work/report.json" "$@" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print(0); sys.exit()
field, names = sys.argv[2], sys.argv[3:]
print(sum(r["streams"][n][field] for n in names))
PY
}

reconnects0=0 kills1=0 rss1=0 status=0
start=$(date +%s)
printf '%-4s %9s %5s %7s %14s %9s %26s %26s\n' min "RSS KiB" fds threads "viewer errors" refused \
  "s0 inits/discont/reconn" "s1 inits/discont/kills"
for ((sec = 1; sec <= MINUTES * 60; sec++)); do
  sleep $((start + sec - $(date +%s) > 0 ? start + sec - $(date +%s) : 0))
  kill -0 "$ONAIR" 2>/dev/null || { echo "soak: onair died"; tail -20 "$work/onair.log"; exit 1; }
  if ((sec % 20 == 0)); then # s0: a clean reconnect
    kill "${pub[s0]}" 2>/dev/null; wait "${pub[s0]}" 2>/dev/null || true
    publish s0; reconnects0=$((reconnects0 + 1))
  fi
  if ((sec % 45 == 0)); then # s1: SIGKILL, then back
    kill -9 "${pub[s1]}" 2>/dev/null; wait "${pub[s1]}" 2>/dev/null || true
    sleep 1; publish s1; kills1=$((kills1 + 1))
  fi
  if ((sec % 60 == 0)); then
    sleep 10 # the report file is written every 10 s
    r=$(rss)
    ((sec == 60)) && rss1=$r
    printf '%-4s %9s %5s %7s %14s %9s %26s %26s\n' $((sec / 60)) "$r" "$(fds)" "$(threads)" \
      "$(report errors s2 s3 s4 s5 s6 s7)" "$(report refused s0 s1 s2 s3 s4 s5 s6 s7)" \
      "$(report maps s0)/$(report discontinuities s0)/$reconnects0" \
      "$(report maps s1)/$(report discontinuities s1)/$kills1"
    start=$((start + 10))
  fi
done
r=$(rss)
echo "soak: RSS after minute 1: $rss1 KiB, at the end: $r KiB ($(( (r - rss1) * 100 / (rss1 ? rss1 : 1) ))%)"
echo "soak: errors on s0/s1 (interrupted on purpose): $(report errors s0 s1); log lines: $(wc -l <"$work/onair.log")"
python3 -c "import json; r=json.load(open('$work/report.json')); print('soak: flood', r['flood']); [print('soak:', n, s['last_error']) for n, s in r['streams'].items() if s['last_error']]"
if ((r > rss1 * 110 / 100)); then echo "soak: FAIL: RSS grew more than 10%"; status=1; fi
errs=$(report errors s2 s3 s4 s5 s6 s7)
if ((errs > 0)); then echo "soak: FAIL: $errs viewer errors on uninterrupted streams"; status=1; fi
kill "$ONAIR"; wait "$ONAIR" || { echo "soak: onair exited $?"; status=1; }
ONAIR=
exit $status
