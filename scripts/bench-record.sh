#!/usr/bin/env bash
# Recording benchmark (not a test), issue 9:
#   1. ingest CPU of onair for 8 streams (720p ~2 Mbit/s, real time) with
#      recording off, then on (goal: on/off under 1.2x); the MP4 remuxes after
#      the streams end are measured apart;
#   2. MP4 replay throughput over HTTP (wrk, c=10 and c=100) from onair's
#      /vod/NAME/ID.mp4 next to nginx serving the same file (goal >= 1.0x);
#   3. one replay's ffprobe summary.
# Usage: scripts/bench-record.sh [SECONDS_PER_WRK_RUN (default 10)] (run it under the CPU lock)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
MEDIA_SECONDS=60
STREAMS=8

for p in wrk nginx-light; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    { echo "bench-record: needs $p (scripts/bench.sh installs it)"; exit 1; }
done
. scripts/bench_lib.sh
bench_init onair-bench-record

echo "bench-record: encoding ${MEDIA_SECONDS} s of 720p30 H.264 ~2 Mbit/s + AAC (once, not measured)"
ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$MEDIA_SECONDS" \
  -c:v libx264 -preset ultrafast -b:v 2M -maxrate 2M -bufsize 4M -g 60 -bf 0 -pix_fmt yuv420p \
  -c:a aac -b:a 128k -f flv "$work/in.flv"

start_onair() { # $1 = record enabled (true/false)
  RP=$(free_port); HP=$(free_port)
  cat > "$work/onair.yaml" <<EOC
rtmp: { listen: "127.0.0.1:$RP", max_connections: 100 }
http: { listen: "127.0.0.1:$HP", threads: 2 }
hls: { segment_seconds: 2, window_segments: 6 }
record: { enabled: $1, path: "$work/rec" }
log: { level: info }
EOC
  build/onair --config "$work/onair.yaml" > /dev/null 2> "$work/onair-$1.log" &
  ONAIR=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HP/healthz" >/dev/null && break; sleep 0.1; done
}

thread_ticks() { # $1 pid, $2 thread name: utime+stime of that thread
  local t=0 d
  for d in /proc/"$1"/task/*; do
    [[ $(cat "$d/comm" 2>/dev/null) == "$2" ]] && t=$((t + $(awk '{print $14 + $15}' "$d/stat")))
  done
  echo "$t"
}

ingest_run() { # $1 = record enabled; sets ingest_cpu and remux_cpu (seconds); leaves onair up
  local before mid after i ffs=()
  start_onair "$1"
  before=$(cpu_ticks "$ONAIR")
  for i in $(seq "$STREAMS"); do
    ffmpeg -nostdin -v error -re -i "$work/in.flv" -c copy -f flv "rtmp://127.0.0.1:$RP/live/s$i" &
    ffs+=($!)
  done
  wait "${ffs[@]}"
  sleep 1 # the last segments
  mid=$(cpu_ticks "$ONAIR")
  if [[ $1 == true ]]; then
    for _ in $(seq 300); do
      [[ $(grep -c 'replay.mp4 ready' "$work/onair-$1.log") -ge $STREAMS ]] && break
      sleep 0.1
    done
  fi
  after=$(cpu_ticks "$ONAIR")
  # The MP4 jobs start as each stream ends: their thread is counted apart.
  local remux=$(thread_ticks "$ONAIR" rec-remux) writer=$(thread_ticks "$ONAIR" rec-writer)
  ingest_cpu=$(awk -v a=$((after - before - remux)) -v hz="$HZ" 'BEGIN { printf "%.2f", a / hz }')
  remux_cpu=$(awk -v b="$remux" -v hz="$HZ" 'BEGIN { printf "%.2f", b / hz }')
  writer_cpu=$(awk -v b="$writer" -v hz="$HZ" 'BEGIN { printf "%.2f", b / hz }')
}

echo "bench-record: $STREAMS streams x ${MEDIA_SECONDS} s in real time, recording off"
ingest_run false
off_cpu=$ingest_cpu
kill "$ONAIR"; wait "$ONAIR" || true; ONAIR=
echo "bench-record: the same, recording on"
ingest_run true
on_cpu=$ingest_cpu
rec_bytes=$(du -sb "$work/rec" | cut -f1)
grep -E 'error' "$work/onair-true.log" | head -3 || true

# ---- 2. MP4 throughput ----------------------------------------------------------
id=$(ls "$work/rec/s1")
mp4="$work/rec/s1/$id/replay.mp4"
mp4_bytes=$(stat -c %s "$mp4")
NP=$(free_port)
mkdir -p "$work/nginx/html" "$work/nginx/logs"
cp "$mp4" "$work/nginx/html/replay.mp4"
cat > "$work/nginx/nginx.conf" <<EOC
user root;
worker_processes 2;
error_log $work/nginx/logs/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  open_file_cache max=100 inactive=60s;
  types { video/mp4 mp4; }
  server { listen 127.0.0.1:$NP; root $work/nginx/html; }
}
EOC
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>>"$work/nginx/logs/error.log" &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NP/" && break; sleep 0.1; done

wrk_mbps() { # $1 connections, $2 url -> "req/s MB/s"
  wrk -t2 -c"$1" -d"${DUR}s" "$2" 2>/dev/null |
    awk '/Requests\/sec/ {r=$2} /Transfer\/sec/ {t=$2} END {printf "%s req/s %s/s", r, t}'
}
declare -A res
for c in 10 100; do
  res[onair_$c]=$(wrk_mbps "$c" "http://127.0.0.1:$HP/vod/s1/$id.mp4")
  res[nginx_$c]=$(wrk_mbps "$c" "http://127.0.0.1:$NP/replay.mp4")
done

echo
echo "onair $(build/onair --version | awk '{print $2}'), $(nproc) cores; $STREAMS x ${MEDIA_SECONDS} s of 720p ~2 Mbit/s"
printf '%-46s %s\n' "ingest CPU s, recording off" "$off_cpu"
printf '%-46s %s (%s x off)\n' "ingest CPU s, recording on" "$on_cpu" \
  "$(awk -v a="$on_cpu" -v b="$off_cpu" 'BEGIN { printf "%.2f", a / b }')"
printf '%-46s %s (of which the disk writer thread: %s)\n' "" "" "$writer_cpu"
printf '%-46s %s (all %d MP4s, after the end)\n' "MP4 remux CPU s" "$remux_cpu" "$STREAMS"
printf '%-46s %s bytes\n' "recorded (segments, playlists, MP4s)" "$rec_bytes"
for c in 10 100; do
  printf '%-46s onair %s | nginx %s\n' "MP4 ($mp4_bytes B) c=$c" "${res[onair_$c]}" "${res[nginx_$c]}"
done
echo
echo "ffprobe of /vod/s1/$id.mp4:"
ffprobe -v error -show_entries format=duration,size,bit_rate:stream=codec_name,codec_type,width,height,r_frame_rate,sample_rate,channels,duration \
  -of compact "http://127.0.0.1:$HP/vod/s1/$id.mp4"
