#!/usr/bin/env bash
# Benchmark (not a test): TLS costs of onair next to nginx with the same
# certificate, measured in the same run on the same machine.
#   1. HTTPS delivery: wrk requests/s for the live playlist and a segment over
#      keep-alive HTTPS connections (c=100 and c=1000), onair vs nginx serving
#      the same bytes from files;
#   2. new connections: wrk with "Connection: close" (one full TLS handshake +
#      one playlist request per connection), onair vs nginx;
#   3. ingest: CPU seconds onair spends per minute of one 720p ~4 Mbit/s stream
#      over RTMPS next to plain RTMP (the issue's goal: under 1.3x).
# Certificates: a test CA and an RSA-2048 leaf made here with the openssl CLI.
# Usage: scripts/bench-tls.sh [SECONDS_PER_WRK_RUN (default 10)]
# Run it under the shared CPU lock: flock /tmp/onair-cpu.lock scripts/bench-tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
MEDIA_SECONDS=30

scripts/setup.sh --test >/dev/null
. scripts/bench_lib.sh
bench_init onair-bench-tls

# ---- certificates ----------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 \
  -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$work/leaf.key" -out "$work/leaf.csr" \
  -subj "/CN=127.0.0.1" 2>/dev/null
echo "subjectAltName=IP:127.0.0.1" > "$work/ext.cnf"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -out "$work/leaf.only.pem" -days 2 -extfile "$work/ext.cnf" 2>/dev/null
cat "$work/leaf.only.pem" "$work/ca.pem" > "$work/leaf.pem"

echo "bench: encoding ${MEDIA_SECONDS} s of 720p30 H.264 ~4 Mbit/s + AAC (once, not measured)"
ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$MEDIA_SECONDS" \
  -c:v libx264 -preset ultrafast -b:v 4M -maxrate 4M -bufsize 8M -g 60 -bf 0 -pix_fmt yuv420p \
  -c:a aac -b:a 128k -f flv "$work/in.flv"

# ---- onair: HTTPS + RTMP + RTMPS -----------------------------------------------------
RP=$(free_port); RSP=$(free_port); HP=$(free_port)
cat > "$work/onair.yaml" <<EOC
rtmp: { listen: "127.0.0.1:$RP", max_connections: 100 }
rtmps: { listen: "127.0.0.1:$RSP", cert: "$work/leaf.pem", key: "$work/leaf.key" }
http: { listen: "127.0.0.1:$HP", threads: 2, tls_cert: "$work/leaf.pem", tls_key: "$work/leaf.key" }
hls: { segment_seconds: 2, window_segments: 6 }
log: { level: warn }
EOC
build/onair --config "$work/onair.yaml" > /dev/null 2> "$work/onair.log" &
ONAIR=$!; pids+=("$ONAIR")
for _ in $(seq 50); do curl -sf --cacert "$work/ca.pem" "https://127.0.0.1:$HP/healthz" >/dev/null && break; sleep 0.1; done

# ---- nginx: the same certificate, static files -------------------------------------
NP=$(free_port)
mkdir -p "$work/nginx/html/live/show" "$work/nginx/logs"
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
  types { application/vnd.apple.mpegurl m3u8; video/mp4 mp4; video/iso.segment m4s; }
  server {
    listen 127.0.0.1:$NP ssl;
    ssl_certificate $work/leaf.pem;
    ssl_certificate_key $work/leaf.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    root $work/nginx/html;
  }
}
EOC
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>>"$work/nginx/logs/error.log" &
NGINX=$!; pids+=("$NGINX")
for _ in $(seq 50); do curl -s -k -o /dev/null "https://127.0.0.1:$NP/" && break; sleep 0.1; done
kill -0 "$NGINX" 2>/dev/null || { echo "bench: nginx did not start:"; cat "$work/nginx/logs/error.log"; exit 1; }

# ---- 3. ingest CPU: RTMP vs RTMPS (first, while nothing else runs) -------------------
STREAMS=4
ingest_cpu() { # $1 = url prefix; STREAMS publishers at once; onair CPU s per stream-minute
  local before after i ff=()
  before=$(cpu_ticks "$ONAIR")
  for i in $(seq "$STREAMS"); do
    ffmpeg -nostdin -v error -re -i "$work/in.flv" -c copy -f flv "$1$i" &
    ff+=($!)
  done
  wait "${ff[@]}"
  after=$(cpu_ticks "$ONAIR")
  awk -v d=$((after - before)) -v hz="$HZ" -v m="$MEDIA_SECONDS" -v n="$STREAMS" \
    'BEGIN { printf "%.3f", d / hz * 60 / m / n }'
}
echo "bench: ingesting $STREAMS x ${MEDIA_SECONDS} s in real time over rtmp://, then over rtmps://"
cpu_rtmp=$(ingest_cpu "rtmp://127.0.0.1:$RP/live/plain")
cpu_rtmps=$(ingest_cpu "rtmps://127.0.0.1:$RSP/live/secure")

# ---- 1./2. HTTPS delivery ------------------------------------------------------------
ffmpeg -nostdin -v error -re -stream_loop -1 -i "$work/in.flv" -c copy -f flv \
  "rtmps://127.0.0.1:$RSP/live/show" &
pids+=($!)
for _ in $(seq 100); do
  curl -sf --cacert "$work/ca.pem" "https://127.0.0.1:$HP/live/show/media.m3u8" -o /dev/null && break
  sleep 0.2
done
sleep 3

wrk_rps() { # $1 connections, $2 url, rest: wrk options -> requests/s, MB/s, p99
  local c=$1 url=$2; shift 2
  wrk -t2 -c"$c" -d"${DUR}s" --latency "$@" "$url" 2>/dev/null |
    awk '/Requests\/sec/ {r=$2} /Transfer\/sec/ {t=$2} /^ +99%/ {p=$2} /Socket errors/ {e=$0}
         END {printf "%s req/s %s/s p99 %s%s", r, t, p, e ? " (" e ")" : ""}'
}
get() { curl -sf --cacert "$work/ca.pem" "https://127.0.0.1:$HP$1"; }

declare -A res
for c in 100 500; do
  get /live/show/media.m3u8 > "$work/nginx/html/live/show/media.m3u8"
  res[pl_onair_$c]=$(wrk_rps "$c" "https://127.0.0.1:$HP/live/show/media.m3u8")
  res[pl_nginx_$c]=$(wrk_rps "$c" "https://127.0.0.1:$NP/live/show/media.m3u8")
  seg=$(get /live/show/media.m3u8 | grep -v '^#' | tail -n 1)
  get "/live/show/$seg" > "$work/nginx/html/live/show/$seg"
  seg_bytes=$(stat -c %s "$work/nginx/html/live/show/$seg")
  res[seg_onair_$c]=$(wrk_rps "$c" "https://127.0.0.1:$HP/live/show/$seg")
  res[seg_nginx_$c]=$(wrk_rps "$c" "https://127.0.0.1:$NP/live/show/$seg")
done
pl_bytes=$(stat -c %s "$work/nginx/html/live/show/media.m3u8")
get /live/show/media.m3u8 > "$work/nginx/html/live/show/media.m3u8"
res[hs_onair]=$(wrk_rps 50 "https://127.0.0.1:$HP/live/show/media.m3u8" -H "Connection: close")
res[hs_nginx]=$(wrk_rps 50 "https://127.0.0.1:$NP/live/show/media.m3u8" -H "Connection: close")
# The same with an ECDSA P-256 leaf (what certbot issues by default): swapped on
# disk, onair reloads it on SIGHUP, nginx on "nginx -s reload".
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ec.key" \
  -out "$work/ec.csr" -subj "/CN=127.0.0.1" 2>/dev/null
openssl x509 -req -in "$work/ec.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -out "$work/ec.only.pem" -days 2 -extfile "$work/ext.cnf" 2>/dev/null
proto_rsa=$(echo | openssl s_client -connect "127.0.0.1:$HP" 2>/dev/null | awk '/Cipher is/ {print $NF}' | head -1)
cat "$work/ec.only.pem" "$work/ca.pem" > "$work/leaf.pem"
cp "$work/ec.key" "$work/leaf.key"
kill -HUP "$ONAIR"
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -s reload
sleep 2
echo | openssl s_client -connect "127.0.0.1:$HP" 2>/dev/null | grep -q "Server public key is 256 bit" ||
  echo "bench: onair did not switch to the ECDSA certificate"
res[hs_onair_ec]=$(wrk_rps 50 "https://127.0.0.1:$HP/live/show/media.m3u8" -H "Connection: close")
res[hs_nginx_ec]=$(wrk_rps 50 "https://127.0.0.1:$NP/live/show/media.m3u8" -H "Connection: close")
proto=$(echo | openssl s_client -connect "127.0.0.1:$HP" 2>/dev/null | awk '/Protocol|Cipher is/ {print}' | head -2 | tr -s ' ' | paste -sd' ')

grep -qi 'error' "$work/onair.log" && { echo "onair logged errors:"; grep -i error "$work/onair.log" | head; }

echo
echo "onair $(build/onair --version | awk '{print $2}') vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(nproc) cores, wrk -t2 ${DUR}s per run, RSA-2048 leaf, onair: $proto"
printf '%-48s %-44s %s\n' "measure" "onair" "nginx (same certificate, files)"
for c in 100 500; do
  printf '%-48s %-44s %s\n' "HTTPS playlist ($pl_bytes B) c=$c keep-alive" "${res[pl_onair_$c]}" "${res[pl_nginx_$c]}"
  printf '%-48s %-44s %s\n' "HTTPS segment (~${seg_bytes} B) c=$c keep-alive" "${res[seg_onair_$c]}" "${res[seg_nginx_$c]}"
done
printf '%-48s %-44s %s\n' "new connection + playlist, RSA-2048 leaf c=50" "${res[hs_onair]}" "${res[hs_nginx]}"
printf '%-48s %-44s %s\n' "new connection + playlist, ECDSA P-256 leaf" "${res[hs_onair_ec]}" "${res[hs_nginx_ec]}"
printf '%-48s %-44s %s\n' "ingest CPU s per stream-minute (720p 4 Mbit/s)" "RTMPS $cpu_rtmps" "RTMP $cpu_rtmp (onair, plain; $STREAMS streams)"
awk -v a="$cpu_rtmps" -v b="$cpu_rtmp" 'BEGIN { if (b > 0) printf "RTMPS/RTMP ingest CPU: %.2fx (goal < 1.3x)\n", a / b }'
