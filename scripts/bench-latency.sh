#!/usr/bin/env bash
# Latency benchmark (not a test): one 720p30 stream with a keyframe every 1 s,
# pre-encoded once and published in real time (ffmpeg -re -c copy, looped), and
#   (a) how long after a part is complete its blocking reload is answered,
#       for part targets 0.2, 0.333 and 0.5 s (scripts/bench_latency.py parts);
#   (b) hls.js's latency in headless Chromium for the same part targets (and
#       at 0.333 s once more with hls.js allowed to play faster to reach its
#       target), next to the same player on onair's standard HLS and on
#       nginx-rtmp's HLS (2 s and 1 s fragments) measured in the same run
#       (scripts/bench_latency_viewer.js);
#   (c) 10,000 blocking reloads held at once: server RSS, CPU and threads
#       before and while they wait, and how fast they are all answered
#       (scripts/bench_latency.py held).
# Each measurement lasts SECONDS (default 60); the whole run about 15 x that.
# Run it under the shared CPU lock: flock /tmp/onair-cpu.lock scripts/bench-latency.sh 60
# Usage: scripts/bench-latency.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-60}
WARMUP=6         # s of playback before hls.js is sampled (it settles its latency)
SESSIONS=$(((${DUR%.*} + 14) / 15)) # fresh hls.js starts per configuration
HELD=10000
MEDIA_SECONDS=30 # the FLV is looped

scripts/setup.sh --test >/dev/null
missing=()
for p in libnginx-mod-rtmp nginx-light; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < HELD + 200)); then
  echo "bench-latency: the open-file limit $(ulimit -n) is below $((HELD + 200))" >&2
  exit 1
fi

. scripts/bench_lib.sh
bench_init onair-latency
res="$work/results"
mkdir -p "$res"
fail() { echo "bench-latency: $*" >&2; exit 1; }
stop() { # stops the given pids (ours) and forgets them
  local p keep=()
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do [[ " $* " == *" $p "* ]] || keep+=("$p"); done
  pids=("${keep[@]}")
}
wait_url() { # $1 url, $2 seconds, $3 what, $4 pid that must stay alive
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -sf "$1" -o /dev/null && return 0
    kill -0 "$4" 2>/dev/null || fail "$3 exited"
    sleep 0.1
  done
  fail "$3: no answer from $1 after $2 s"
}
wait_segments() { # $1 playlist url, $2 count, $3 pattern of a segment line
  local i
  for ((i = 0; i < 300; i++)); do
    (($(curl -sf "$1" | grep -c "$3" || true) >= $2)) && return 0
    kill -0 "$PUB" 2>/dev/null || fail "the publisher exited"
    sleep 0.1
  done
  fail "fewer than $2 segments in $1 after 30 s"
}
publish() { # $1 rtmp url; sets PUB
  ffmpeg -nostdin -v error -re -stream_loop -1 -i "$work/in.flv" -c copy -f flv "$1" \
    2>>"$work/ffmpeg.log" &
  PUB=$!
  pids+=("$PUB")
}

echo "bench-latency: encoding ${MEDIA_SECONDS} s of 720p30 H.264 (keyframe every 1 s, no B-frames) + AAC (once)"
ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$MEDIA_SECONDS" \
  -c:v libx264 -preset veryfast -b:v 3M -maxrate 3M -bufsize 3M -g 30 -keyint_min 30 \
  -sc_threshold 0 -bf 0 -pix_fmt yuv420p -c:a aac -b:a 128k -f flv "$work/in.flv"

# ---- onair ------------------------------------------------------------------------
ONAIR=
start_onair() { # $1 = hls.part_seconds; sets ONAIR, HP, PUB
  local rp
  rp=$(free_port)
  HP=$(free_port)
  cat >"$work/onair.yaml" <<EOC
rtmp: { listen: "127.0.0.1:$rp" }
http: { listen: "127.0.0.1:$HP" }
hls: { segment_seconds: 2, window_segments: 6, part_seconds: $1 }
log: { level: warn }
EOC
  build/onair --config "$work/onair.yaml" >/dev/null 2>>"$work/onair.log" &
  ONAIR=$!
  pids+=("$ONAIR")
  wait_url "http://127.0.0.1:$HP/healthz" 5 "onair" "$ONAIR"
  publish "rtmp://127.0.0.1:$rp/live/show"
  wait_segments "http://127.0.0.1:$HP/live/show/media.m3u8" 3 '^seg-'
}
viewer() { # $1 playlist url, $2 hls.js url, $3 ll|std, $4 output, $5 pdt|name
  if ! node scripts/bench_latency_viewer.js "$1" "$2" "$3" "$DUR" "$WARMUP" "$SESSIONS" "$5" \
    >"$res/$4"; then
    fail "hls.js run on $1 failed: $(cat "$res/$4")"
  fi
}

for part in 0.2 0.333 0.5; do
  echo "bench-latency: onair, hls.part_seconds $part: blocking reloads for ${DUR} s, then hls.js for ${DUR} s"
  start_onair "$part"
  base="http://127.0.0.1:$HP/live/show"
  python3 scripts/bench_latency.py parts "$base" "$DUR" "$res/parts-$part.json"
  viewer "$base/index.m3u8" "http://127.0.0.1:$HP/static/hls.min.js" ll "view-$part.json" pdt
  if [[ $part == 0.333 ]]; then
    echo "bench-latency: onair, hls.part_seconds $part: hls.js with maxLiveSyncPlaybackRate 1.5 for ${DUR} s"
    viewer "$base/index.m3u8" "http://127.0.0.1:$HP/static/hls.min.js" llrate "view-$part-rate.json" pdt
    echo "bench-latency: onair, hls.part_seconds $part: $HELD blocking reloads held at once"
    python3 scripts/bench_latency.py held "$base" "$HELD" "$ONAIR" "$res/held.json"
  fi
  kill -0 "$ONAIR" 2>/dev/null || fail "onair died"
  stop "$PUB" "$ONAIR"
done

echo "bench-latency: onair, standard HLS (hls.part_seconds 0): hls.js for ${DUR} s"
start_onair 0
viewer "http://127.0.0.1:$HP/live/show/index.m3u8" "http://127.0.0.1:$HP/static/hls.min.js" \
  std view-0.json pdt
stop "$PUB" "$ONAIR"
if grep -qi 'error' "$work/onair.log"; then
  echo "bench-latency: onair logged errors:"
  grep -i error "$work/onair.log" | head
fi

# ---- nginx-rtmp (peer) --------------------------------------------------------------
for frag in 2 1; do
  echo "bench-latency: nginx-rtmp, hls_fragment ${frag}s: hls.js for ${DUR} s"
  NP=$(free_port)
  NRP=$(free_port)
  rm -rf "$work/nginx"
  mkdir -p "$work/nginx/hls" "$work/nginx/logs"
  cat >"$work/nginx/nginx.conf" <<EOC
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
user root;
worker_processes 1;
error_log $work/nginx/logs/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server {
    listen 127.0.0.1:$NP;
    location /hls/ {
      alias $work/nginx/hls/;
      add_header Cache-Control no-cache;
      add_header Access-Control-Allow-Origin *;
    }
  }
}
rtmp {
  server {
    listen 127.0.0.1:$NRP;
    application live {
      live on;
      hls on;
      hls_path $work/nginx/hls;
      hls_fragment ${frag}s;
      hls_playlist_length 12s;
      hls_fragment_naming system;
    }
  }
}
EOC
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>>"$work/nginx/logs/error.log" &
  NGINX=$!
  pids+=("$NGINX")
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NP/" && break; sleep 0.1; done
  kill -0 "$NGINX" 2>/dev/null || fail "nginx did not start: $(cat "$work/nginx/logs/error.log")"
  publish "rtmp://127.0.0.1:$NRP/live/show"
  wait_segments "http://127.0.0.1:$NP/hls/show.m3u8" 3 '\.ts$'
  name=view-nginx.json
  [[ $frag == 1 ]] && name=view-nginx1.json
  viewer "http://127.0.0.1:$NP/hls/show.m3u8" "file://$PWD/node_modules/hls.js/dist/hls.min.js" \
    std "$name" name
  stop "$PUB" "$NGINX"
done

python3 - "$res/meta.json" "$DUR" "$(build/onair --version | awk '{print $2}')" \
  "$(chromium --version 2>/dev/null | awk '{print $1, $2}')" "$res/view-0.333.json" \
  "$(dpkg-query -W -f='${Version}' libnginx-mod-rtmp | sed 's/^[0-9]*://; s/[+-].*//')" \
  "$SESSIONS" <<'EOP'
import json, sys
hlsjs = json.load(open(sys.argv[5])).get("hlsjs", "?")
json.dump({"seconds": int(float(sys.argv[2])), "version": sys.argv[3], "player": sys.argv[4],
           "hlsjs": hlsjs, "nginx_rtmp": sys.argv[6], "sessions": int(sys.argv[7])},
          open(sys.argv[1], "w"))
EOP
echo
python3 scripts/bench_latency.py report "$res"
