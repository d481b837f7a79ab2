#!/usr/bin/env bash
# Benchmark (not a test): what observing costs.
#   1. ingest CPU seconds per minute of one 720p ~4 Mbit/s stream with statistics
#      off (admin.listen "") and on (admin port up, /metrics scraped every second),
#      alternated twice;
#   2. wrk playlist requests/s at 100 connections with statistics on, without and
#      with a /metrics scrape every second (alternated three times);
#   3. server CPU per /metrics answer (wrk, one connection, 5 s).
# Usage: scripts/bench-metrics.sh [SECONDS_PER_WRK_RUN (default 10)] [MEDIA_SECONDS (default 60)]
#        SKIP_INGEST=1 runs part 2 only.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
MEDIA_SECONDS=${2:-60}

scripts/setup.sh --test >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d /tmp/onair-bench-metrics.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

echo "bench-metrics: encoding ${MEDIA_SECONDS} s of 720p30 H.264 ~4 Mbit/s + AAC (not measured)"
ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$MEDIA_SECONDS" \
  -c:v libx264 -preset ultrafast -b:v 4M -maxrate 4M -bufsize 8M -g 30 -bf 0 -pix_fmt yuv420p \
  -c:a aac -b:a 128k -f flv "$work/in.flv"

# start_onair ADMIN_LISTEN: starts onair, sets RP HP AP ONAIR
start_onair() {
  RP=$(free_port); HP=$(free_port); AP=$(free_port)
  local admin=""
  [[ $1 == on ]] && admin="127.0.0.1:$AP"
  cat > "$work/onair.yaml" <<EOC
rtmp: { listen: "127.0.0.1:$RP" }
http: { listen: "127.0.0.1:$HP", threads: 2 }
admin: { listen: "$admin" }
log: { level: warn }
EOC
  build/onair --config "$work/onair.yaml" > /dev/null 2>> "$work/onair.log" &
  ONAIR=$!; pids+=("$ONAIR")
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HP/healthz" >/dev/null && break; sleep 0.1; done
}

stop_onair() { kill "$ONAIR"; wait "$ONAIR" 2>/dev/null || true; }

scraper() { # every second, like Prometheus
  while sleep 1; do curl -sf -o /dev/null "http://127.0.0.1:$AP/metrics" || true; done
}

# ingest MODE: CPU seconds per minute while the file is published in real time
ingest() {
  start_onair "$1"
  local t0 t1 spid=""
  [[ $1 == on ]] && { scraper & spid=$!; pids+=("$spid"); }
  t0=$(cpu_ticks "$ONAIR")
  ffmpeg -nostdin -v error -re -i "$work/in.flv" -c copy -f flv "rtmp://127.0.0.1:$RP/live/show"
  t1=$(cpu_ticks "$ONAIR")
  [[ -n $spid ]] && kill "$spid"
  stop_onair
  awk -v t="$((t1 - t0))" -v hz="$HZ" -v s="$MEDIA_SECONDS" 'BEGIN { printf "%.2f", t / hz * 60 / s }'
}

# alternated twice: the spread between runs of the same mode is the noise
offs=(); ons=()
for _ in $( ((${SKIP_INGEST:-0})) || echo 1 2); do
  offs+=("$(ingest off)")
  ons+=("$(ingest on)")
done
echo "ingest CPU s per minute, statistics off: ${offs[*]}"
echo "ingest CPU s per minute, statistics on + scrape every 1 s: ${ons[*]}"

# ---- playlist requests/s with and without a scrape ------------------------------
start_onair on
ffmpeg -nostdin -v error -re -stream_loop -1 -i "$work/in.flv" -c copy -f flv \
  "rtmp://127.0.0.1:$RP/live/show" 2>/dev/null &
pids+=("$!")
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$HP/live/show/media.m3u8" && break; sleep 0.1
done
sleep 3
url="http://127.0.0.1:$HP/live/show/media.m3u8"
wrk_rps() { wrk -t2 -c100 -d"${DUR}s" --latency "$url" | awk '/Requests\/sec/ {print $2}'; }
# alternated three times (the machine is shared: the spread is the noise); medians compared
nos=(); withs=()
for _ in 1 2 3; do
  nos+=("$(wrk_rps)")
  scraper & spid=$!; pids+=("$spid")
  withs+=("$(wrk_rps)")
  kill "$spid"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
a=$(median "${nos[@]}"); b=$(median "${withs[@]}")
echo "playlist req/s, 100 conns, no scrape: ${nos[*]} (median $a)"
echo "playlist req/s, 100 conns, scrape every 1 s: ${withs[*]} (median $b)"
awk -v a="$a" -v b="$b" 'BEGIN { printf "scrape costs %.1f%% of playlist req/s (medians)\n", (a - b) / a * 100 }'
# what one scrape costs the server: CPU per /metrics answer, scraped back to back
t0=$(cpu_ticks "$ONAIR")
n=$(wrk -t1 -c1 -d5s "http://127.0.0.1:$AP/metrics" | awk '/requests in/ {print $1}')
t1=$(cpu_ticks "$ONAIR")
awk -v t="$((t1 - t0))" -v hz="$HZ" -v n="$n" 'BEGIN {
  printf "/metrics: %d scrapes in 5 s, %.3f ms server CPU each (ingest included): one scrape a second = %.3f%% of a core\n",
         n, t / hz / n * 1000, t / hz / n * 100 }'
stop_onair
