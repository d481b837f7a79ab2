#!/usr/bin/env bash
# Benchmark (not a test): simulated LL-HLS viewers (tests/integration/llhls_viewers.py,
# doing what hls.js does) on the origin directly, through one nginx edge and
# through two, edges configured from contrib/edge/. For each it prints viewers
# held (got parts to the end), origin requests/s, the edges' CPU per 1,000
# viewers, and the part delay each viewer sees: time from a part being listed
# at the origin (a probe viewer on the origin) to its arrival (median, p99).
# Usage: scripts/bench-edge.sh [SECONDS_PER_RUN (20)] [VIEWER COUNTS (1000 5000 10000)]
# Run it alone (flock /tmp/onair-cpu.lock): the load generator shares the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-20}
shift || true
COUNTS=("${@:-1000 5000 10000}")
read -r -a COUNTS <<< "${COUNTS[*]}"
SIM=tests/integration/llhls_viewers.py
PROCS=2 # load generator processes per run

scripts/setup.sh --test >/dev/null
. scripts/bench_lib.sh
bench_init onair-bench-edge

ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=640x360:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 -c:v libx264 -preset veryfast \
  -g 30 -bf 0 -pix_fmt yuv420p -c:a aac -b:a 96k -f flv "$work/in.flv"

RP=$(free_port); HP=$(free_port)
cat > "$work/onair.yaml" <<EOC
rtmp: { listen: "127.0.0.1:$RP" }
http: { listen: "127.0.0.1:$HP", threads: 2 }
hls: { segment_seconds: 1, window_segments: 10, part_seconds: 0.333 }
log: { level: debug }
EOC
build/onair --config "$work/onair.yaml" > /dev/null 2> "$work/onair.log" &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HP/healthz" >/dev/null && break; sleep 0.1; done
ffmpeg -nostdin -v error -re -stream_loop -1 -i "$work/in.flv" -c copy -f flv "rtmp://127.0.0.1:$RP/live/b" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HP/live/b/media.m3u8" | grep -q EXTINF && break; sleep 0.1; done

declare -A EDGE_PORT EDGE_PID
start_edge() { # name
  local d=$work/$1 p
  p=$(free_port)
  mkdir -p "$d/tmp"
  contrib/edge/render.sh ORIGIN="127.0.0.1:$HP" LISTEN="127.0.0.1:$p" CACHE_DIR="$d/cache" \
    PART_LOCK="${PART_LOCK:-100ms}" PLAYLIST_LOCK="${PLAYLIST_LOCK:-10s}" > "$d/edge.conf"
  cat > "$d/nginx.conf" <<EOC
user root;
worker_processes 1;
worker_rlimit_nofile 40000;
pid $d/nginx.pid;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body; proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi; uwsgi_temp_path $d/tmp/uwsgi; scgi_temp_path $d/tmp/scgi;
  include $d/edge.conf;
}
EOC
  nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;' &
  EDGE_PID[$1]=$!; pids+=($!)
  EDGE_PORT[$1]=$p
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.1; done
}
start_edge a
start_edge b
edge_pids() { local n; for n in "$@"; do echo "${EDGE_PID[$n]}" $(pgrep -P "${EDGE_PID[$n]}" || true); done; }

# run LABEL VIEWERS TARGET... (TARGET: origin or an edge name)
run() {
  local label=$1 n=$2; shift 2
  local targets=("$@") k=0 i url per t0 t1 l0 l1 c0 c1 out=()
  per=$(( n / PROCS / ${#targets[@]} ))
  l0=$(grep -c '] GET /live/' "$work/onair.log" || true)
  c0=$(cpu_ticks $(edge_pids "${targets[@]/origin/}" 2>/dev/null))
  t0=$(date +%s.%N)
  for tgt in "${targets[@]}"; do
    if [[ $tgt == origin ]]; then url="http://127.0.0.1:$HP/live/b/media.m3u8"
    else url="http://127.0.0.1:${EDGE_PORT[$tgt]}/live/b/media.m3u8"; fi
    for ((i = 0; i < PROCS; i++)); do
      python3 "$SIM" "$url" "$per" "$DUR" --ramp 5 --probe "http://127.0.0.1:$HP/live/b/media.m3u8" \
        > "$work/sim.$k.json" &
      out+=("$work/sim.$k.json"); k=$((k + 1))
    done
  done
  wait_sims=$(jobs -p | tail -n "$k")
  for p in $wait_sims; do wait "$p" || true; done
  t1=$(date +%s.%N)
  l1=$(grep -c '] GET /live/' "$work/onair.log" || true)
  c1=$(cpu_ticks $(edge_pids "${targets[@]/origin/}" 2>/dev/null))
  python3 - "$label" "$n" "$t0" "$t1" "$((l1 - l0))" "$((c1 - c0))" "$HZ" "${targets[*]}" "${out[@]}" <<'EOP'
import json, sys
label, n, t0, t1, oreq, ticks, hz, targets = sys.argv[1:9]
res = [json.load(open(f)) for f in sys.argv[9:]]
secs = float(t1) - float(t0)
hist = {}
for r in res:
    for k, v in r["delay_hist"].items():
        hist[int(k)] = hist.get(int(k), 0) + v
def pct(q):
    tot = sum(hist.values()); acc = 0
    for k in sorted(hist):
        acc += hist[k]
        if acc >= q * tot:
            return k
held = sum(r["viewers"] - r["viewers_without_units"] - r["viewers_with_errors"] for r in res)
reqs = sum(r["requests"] for r in res)
gaps = sum(r["gaps"] for r in res)
origin = int(oreq) / secs if "origin" not in targets else reqs / secs
edge_cpu = "-" if "origin" in targets else "%.2f" % (int(ticks) / int(hz) / secs / (int(n) / 1000))
print("| %s | %s | %d | %.0f | %s | %s / %s | %d |" % (
    label, n, held, origin, edge_cpu, pct(0.5), pct(0.99), gaps))
EOP
}

echo
echo "onair $(build/onair --version | awk '{print $2}'), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(nproc) cores, ${DUR} s per run, PART_LOCK=${PART_LOCK:-100ms}, PLAYLIST_LOCK=${PLAYLIST_LOCK:-10s}, load generator: $PROCS python processes per target"
echo
echo "| path | viewers | held | origin req/s | edge CPU s/s per 1,000 viewers | part delay ms p50 / p99 | gaps |"
echo "|---|---|---|---|---|---|---|"
for n in "${COUNTS[@]}"; do
  run "origin directly" "$n" origin
  run "one edge" "$n" a
  run "two edges" "$n" a b
done
