#!/usr/bin/env bash
# Benchmarks (not tests): prints figures for this build next to a peer measured
# in the same run on the same machine.
#   1. ingest: CPU seconds onair spends per minute of one 720p ~4 Mbit/s stream,
#      next to nginx-rtmp (hls on) ingesting the same FLV;
#   2. delivery: wrk requests/s for the live playlist and a segment at 100 and
#      1,000 connections, next to nginx serving the same bytes from files.
# Usage: scripts/bench.sh [SECONDS_PER_WRK_RUN (default 10)]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
MEDIA_SECONDS=60

scripts/setup.sh --test >/dev/null
missing=()
for p in libnginx-mod-rtmp wrk nginx-light; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
. scripts/bench_lib.sh

bench_init onair-bench

echo "bench: encoding ${MEDIA_SECONDS} s of 720p30 H.264 ~4 Mbit/s + AAC (once, not measured)"
ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$MEDIA_SECONDS" \
  -c:v libx264 -preset ultrafast -b:v 4M -maxrate 4M -bufsize 8M -g 60 -bf 0 -pix_fmt yuv420p \
  -c:a aac -b:a 128k -f flv "$work/in.flv"

# ---- onair -------------------------------------------------------------------
RP=$(free_port); HP=$(free_port)
cat > "$work/onair.yaml" <<EOC
rtmp: { listen: "127.0.0.1:$RP", max_connections: 100 }
http: { listen: "127.0.0.1:$HP", threads: 2 }
hls: { segment_seconds: 2, window_segments: 6 }
log: { level: warn }
EOC
build/onair --config "$work/onair.yaml" > /dev/null 2> "$work/onair.log" &
ONAIR=$!; pids+=("$ONAIR")
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HP/healthz" >/dev/null && break; sleep 0.1; done

# ---- nginx (static files) and nginx-rtmp (ingest peer) ------------------------
NP=$(free_port); NRP=$(free_port)
mkdir -p "$work/nginx/html/live/show" "$work/nginx/hls" "$work/nginx/logs"
cat > "$work/nginx/nginx.conf" <<EOC
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
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
  types { application/vnd.apple.mpegurl m3u8; video/mp4 mp4; video/iso.segment m4s; }
  server { listen 127.0.0.1:$NP; root $work/nginx/html; }
}
rtmp {
  server {
    listen 127.0.0.1:$NRP;
    application live { live on; hls on; hls_path $work/nginx/hls; hls_fragment 2s; hls_playlist_length 12s; }
  }
}
EOC
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>>"$work/nginx/logs/error.log" &
NGINX=$!; pids+=("$NGINX")
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NP/" && break; sleep 0.1; done
kill -0 "$NGINX" 2>/dev/null || { echo "bench: nginx did not start:"; cat "$work/nginx/logs/error.log"; exit 1; }
nginx_pids() { echo "$NGINX" $(pgrep -P "$NGINX" || true); }

# ---- 1. ingest CPU -------------------------------------------------------------
ingest_cpu() { # $1 = rtmp url, rest = pids to measure; prints CPU seconds per media minute
  local url=$1; shift
  local before after
  before=$(cpu_ticks "$@")
  ffmpeg -nostdin -v error -re -i "$work/in.flv" -c copy -f flv "$url"
  after=$(cpu_ticks "$@")
  awk -v d=$((after - before)) -v hz="$HZ" -v m="$MEDIA_SECONDS" 'BEGIN { printf "%.3f", d / hz * 60 / m }'
}
echo "bench: ingesting ${MEDIA_SECONDS} s in real time into onair, then into nginx-rtmp"
onair_cpu=$(ingest_cpu "rtmp://127.0.0.1:$RP/live/bench" "$ONAIR")
nginx_cpu=$(ingest_cpu "rtmp://127.0.0.1:$NRP/live/bench" $(nginx_pids))

# ---- 2. delivery ---------------------------------------------------------------
# Keep a live stream going so the playlist is real and segments keep appearing.
ffmpeg -nostdin -v error -re -stream_loop -1 -i "$work/in.flv" -c copy -f flv \
  "rtmp://127.0.0.1:$RP/live/show" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HP/live/show/media.m3u8" -o /dev/null && break; sleep 0.2; done
sleep 3

wrk_rps() { # $1 connections, $2 url -> requests/s and MB/s
  wrk -t2 -c"$1" -d"${DUR}s" --latency "$2" 2>/dev/null |
    awk '/Requests\/sec/ {r=$2} /Transfer\/sec/ {t=$2} /^ +99%/ {p=$2} END {printf "%s req/s %s/s p99 %s", r, t, p}'
}
latest_segment() {
  curl -sf "http://127.0.0.1:$HP/live/show/media.m3u8" | grep -v '^#' | tail -n 1
}

declare -A res
for c in 100 1000; do
  curl -sf "http://127.0.0.1:$HP/live/show/media.m3u8" -o "$work/nginx/html/live/show/media.m3u8"
  res[pl_onair_$c]=$(wrk_rps "$c" "http://127.0.0.1:$HP/live/show/media.m3u8")
  res[pl_nginx_$c]=$(wrk_rps "$c" "http://127.0.0.1:$NP/live/show/media.m3u8")
  seg=$(latest_segment)
  curl -sf "http://127.0.0.1:$HP/live/show/$seg" -o "$work/nginx/html/live/show/$seg"
  seg_bytes=$(stat -c %s "$work/nginx/html/live/show/$seg")
  res[seg_onair_$c]=$(wrk_rps "$c" "http://127.0.0.1:$HP/live/show/$seg")
  res[seg_nginx_$c]=$(wrk_rps "$c" "http://127.0.0.1:$NP/live/show/$seg")
done
pl_bytes=$(stat -c %s "$work/nginx/html/live/show/media.m3u8")

grep -q 'error\|ERROR' "$work/onair.log" && { echo "onair logged errors:"; grep -i error "$work/onair.log" | head; }

echo
echo "onair $(build/onair --version | awk '{print $2}') vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(nproc) cores, wrk -t2 ${DUR}s per run"
printf '%-44s %-36s %s\n' "measure" "onair" "peer"
printf '%-44s %-36s %s\n' "ingest CPU s per minute (720p ~4 Mbit/s)" "$onair_cpu" "$nginx_cpu (nginx-rtmp, hls on, MPEG-TS)"
for c in 100 1000; do
  printf '%-44s %-36s %s\n' "playlist ($pl_bytes B) c=$c" "${res[pl_onair_$c]}" "${res[pl_nginx_$c]} (nginx file)"
  printf '%-44s %-36s %s\n' "segment (~${seg_bytes} B) c=$c" "${res[seg_onair_$c]}" "${res[seg_nginx_$c]} (nginx file)"
done
