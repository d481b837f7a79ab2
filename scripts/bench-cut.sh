#!/usr/bin/env bash
# Benchmark (not a test), issue 11: do segment cuts stall other publishers?
# A heavy publisher (1080p30 noise, ~40 Mbit/s, one keyframe every 10 s, sent
# with ffmpeg -re -c copy in a loop) makes big segments and frequent cuts;
# meanwhile a probe (scripts/bench_cut_probe.py) publishes a small stream on
# the same server and sends an RTMP PingRequest every 5 ms: the round trip to
# its PingResponse is how long the server's ingest loop kept that other
# publisher waiting. Runs, in this order:
#   onair, LL-HLS on (the defaults: 333 ms parts, 2 s target, 32 MiB cap):
#     forced cuts without a keyframe every 2 s;
#   onair, LL-HLS off (part_seconds 0: a whole segment is one fragment),
#     2 s target: forced cuts every 2 s, ~12 MB segments;
#   onair, LL-HLS off, 10 s target: segments cut by hls.max_segment_bytes
#     (default 32 MiB), the biggest segments the defaults allow;
#   nginx-rtmp (hls on, hls_fragment 2s, hls_path in tmpfs, one worker so
#     the probe shares the heavy publisher's event loop, as with onair): it
#     cuts on keyframes only, so every 10 s;
# each preceded in its server by a short baseline with the probe alone.
# Prints a side-by-side table: ping RTT p50 / p99 / p99.9 / max, pings over
# 5 and 20 ms, segments cut during the measurement and their sizes.
# Usage: flock /tmp/onair-cpu.lock scripts/bench-cut.sh [SECONDS_PER_MEASUREMENT (default 60)]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-60}
BASE=${BASE:-5}          # seconds of probe alone before each server's runs
HEAVY_SECONDS=10 # length of the looped heavy file; its first frame is its only keyframe
WARMUP=4         # seconds of heavy publishing before the probe starts

[[ -x build/onair ]] || { echo "bench-cut: build/onair missing (scripts/setup.sh builds it)"; exit 1; }
missing=()
for p in libnginx-mod-rtmp nginx-light; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
. scripts/bench_lib.sh
bench_init onair-bench-cut
shm=$(mktemp -d /dev/shm/onair-bench-cut.XXXXXX) # nginx-rtmp's hls_path: tmpfs, as onair's memory
trap 'bench_cleanup; rm -rf "$shm"' EXIT

# VBV keeps every frame under 0.5 MB: nginx-rtmp's HLS drops NAL units over 1 MB
# ("hls: not enough buffer for NAL"), keyframes included, and then never cuts.
echo "bench-cut: encoding ${HEAVY_SECONDS} s of 1080p30 noise at ~40 Mbit/s + AAC, one keyframe (once, not measured)"
ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30,noise=alls=24:allf=t" \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$HEAVY_SECONDS" \
  -c:v libx264 -preset ultrafast -b:v 48M -maxrate 48M -bufsize 4M \
  -g 100000 -keyint_min 100000 -sc_threshold 0 -bf 0 -pix_fmt yuv420p \
  -c:a aac -b:a 128k -f flv "$work/heavy.flv"
ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=160x90:rate=30 \
  -f lavfi -i sine=frequency=880:sample_rate=48000 -t 10 \
  -c:v libx264 -preset ultrafast -b:v 100k -g 30 -bf 0 -pix_fmt yuv420p \
  -c:a aac -b:a 32k -f flv "$work/small.flv"
heavy_mbps=$(ffprobe -v error -show_entries format=bit_rate -of csv=p=0 "$work/heavy.flv" |
  awk '{ printf "%.1f", $1 / 1e6 }')

declare -A res

probe() { # $1 label, $2 rtmp port, $3 seconds
  python3 scripts/bench_cut_probe.py "$2" probe "$3" "$work/small.flv" > "$work/probe-$1.json"
}

json() { # $1 label, $2 key
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(v if v is not None else "-")' \
    "$work/probe-$1.json" "$2"
}

start_heavy() { # $1 rtmp port
  ffmpeg -nostdin -v error -re -stream_loop -1 -i "$work/heavy.flv" -c copy -f flv \
    "rtmp://127.0.0.1:$1/live/heavy" 2>> "$work/heavy-ffmpeg.log" &
  HEAVY=$!; pids+=("$HEAVY")
}

stop_heavy() {
  kill "$HEAVY" 2>/dev/null || true
  wait "$HEAVY" 2>/dev/null || true
}

# ---- onair ---------------------------------------------------------------------------
start_onair() { # $1 label, $2 hls settings
  RP=$(free_port); HP=$(free_port); AP=$(free_port)
  cat > "$work/onair-$1.yaml" <<EOC
rtmp: { listen: "127.0.0.1:$RP" }
http: { listen: "127.0.0.1:$HP", threads: 2 }
admin: { listen: "127.0.0.1:$AP" }
hls: { $2 }
log: { level: debug }
EOC
  build/onair --config "$work/onair-$1.yaml" > /dev/null 2> "$work/onair-$1.log" &
  ONAIR=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HP/healthz" >/dev/null && break; sleep 0.1; done
}


onair_run() { # $1 label, $2 hls settings
  local before after
  start_onair "$1" "$2"
  probe "$1-base" "$RP" "$BASE"
  start_heavy "$RP"
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$HP/live/heavy/media.m3u8" -o /dev/null && break
    sleep 0.2
  done
  sleep "$WARMUP"
  before=$(wc -l < "$work/onair-$1.log")
  probe "$1" "$RP" "$DUR"
  after=$(wc -l < "$work/onair-$1.log")
  stop_heavy
  sed -n "$((before + 1)),${after}p" "$work/onair-$1.log" > "$work/window-$1.log"
  # cut times: the log time of each finished segment (after its copy and store_put)
  { grep 'heavy: segment [0-9]*:' "$work/window-$1.log" || true; } | python3 -c '
import datetime, sys
for line in sys.stdin:
    t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    print("%.3f" % t.replace(tzinfo=datetime.timezone.utc).timestamp())' > "$work/cuts-$1.txt"
  python3 scripts/bench_cut_probe.py cuts "$work/probe-$1.json" "$work/cuts-$1.txt" > "$work/near-$1.json"
  # "segment N: D s, P parts, B bytes" (debug): the ones finished during the probe
  { grep 'heavy: segment [0-9]*:' "$work/window-$1.log" || true; } |
    sed -E 's/.*: ([0-9.]+) s, ([0-9]+) parts, ([0-9]+) bytes.*/\1 \3/' > "$work/segs-$1.txt"
  res[cuts_$1]=$(wc -l < "$work/segs-$1.txt")
  res[sizes_$1]=$(awk 'NR == 1 || $2 < min { min = $2 } $2 > max { max = $2 }
    END { if (NR) printf "%.1f-%.1f MB", min / 1e6, max / 1e6; else printf "-" }' "$work/segs-$1.txt")
  res[bytecuts_$1]=$(grep -c 'max_segment_bytes): cut' "$work/window-$1.log" || true)
  grep -E '^[^ ]+ error ' "$work/onair-$1.log" | head -3 || true
  kill "$ONAIR"; wait "$ONAIR" || true; ONAIR=
}

echo "bench-cut: onair, LL-HLS on (defaults), ${DUR} s"
onair_run llhls "segment_seconds: 2"
echo "bench-cut: onair, LL-HLS off, 2 s target, ${DUR} s"
onair_run std2 "segment_seconds: 2, part_seconds: 0"
echo "bench-cut: onair, LL-HLS off, 10 s target (cut at max_segment_bytes 32 MiB), ${DUR} s"
onair_run cap "segment_seconds: 10, part_seconds: 0, max_segment_bytes: 32MiB"

# ---- nginx-rtmp ----------------------------------------------------------------------
NRP=$(free_port)
mkdir -p "$work/nginx/logs" "$shm/hls"
cat > "$work/nginx/nginx.conf" <<EOC
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
user root;
worker_processes 1;
error_log $work/nginx/logs/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
rtmp {
  server {
    listen 127.0.0.1:$NRP;
    max_message 16M;
    application live { live on; hls on; hls_path $shm/hls; hls_fragment 2s; hls_playlist_length 12s; }
  }
}
EOC
echo "bench-cut: nginx-rtmp, hls on, hls_fragment 2s, ${DUR} s"
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>>"$work/nginx/logs/error.log" &
NGINX=$!; pids+=("$NGINX")
sleep 0.5
kill -0 "$NGINX" 2>/dev/null || { echo "bench-cut: nginx did not start:"; cat "$work/nginx/logs/error.log"; exit 1; }
# Fragment files, their birth times (the cut that started them) and sizes, once a second.
frag_sampler() {
  while :; do
    stat -c '%n %W %s' "$shm"/hls/heavy-*.ts 2>/dev/null || true
    sleep 1
  done
}
probe nginx-base "$NRP" "$BASE"
start_heavy "$NRP"
for _ in $(seq 150); do [[ -s $shm/hls/heavy.m3u8 ]] && break; sleep 0.2; done
frag_sampler > "$work/frags.txt" &
SAMPLER=$!; pids+=("$SAMPLER")
sleep "$WARMUP"
probe nginx "$NRP" "$DUR"
sleep 1.5
kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true
stop_heavy
# A cut during the probe: a fragment born then. Sizes: the fragments it ended.
python3 - "$work/frags.txt" "$work/probe-nginx.json" "$work/cuts-nginx.txt" > "$work/segs-nginx.txt" <<'EOP'
import json, sys
p = json.load(open(sys.argv[2]))
t0, t1 = p["t0"], p["t0"] + p["seconds"]
birth, size = {}, {}
for line in open(sys.argv[1]):
    name, b, sz = line.split()
    birth[name] = float(b)
    size[name] = max(size.get(name, 0), int(sz))
order = sorted(birth, key=birth.get)
with open(sys.argv[3], "w") as f:
    for prev, name in zip(order, order[1:]):
        if t0 <= birth[name] <= t1:
            f.write("%.3f\n" % birth[name])
            print("- %d" % size[prev])
EOP
res[cuts_nginx]=$(wc -l < "$work/segs-nginx.txt")
res[sizes_nginx]=$(awk 'NR == 1 || $2 < min { min = $2 } $2 > max { max = $2 }
    END { if (NR) printf "%.1f-%.1f MB", min / 1e6, max / 1e6; else printf "-" }' "$work/segs-nginx.txt")
res[bytecuts_nginx]=
python3 scripts/bench_cut_probe.py cuts "$work/probe-nginx.json" "$work/cuts-nginx.txt" > "$work/near-nginx.json"
grep -v 'signal process started' "$work/nginx/logs/error.log" | grep -E '\[(error|crit|alert|emerg)\]' | head -3 || true

# ---- table ---------------------------------------------------------------------------
labels=(llhls std2 cap nginx)
echo
echo "onair $(build/onair --version | awk '{print $2}') vs nginx-rtmp $(dpkg-query -W -f='${Version}' libnginx-mod-rtmp) (nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')), $(nproc) cores;"
echo "heavy publisher: 1080p30 noise ${heavy_mbps} Mbit/s + AAC, one keyframe every ${HEAVY_SECONDS} s (ffmpeg -re -c copy);"
echo "probe: a small publisher on the same server, PingRequest every 5 ms, ${DUR} s per run"
printf '%-32s | %-27s | %-27s | %-27s | %s\n' "" "onair LL-HLS (defaults)" "onair std HLS, 2 s target" "onair std HLS, 32 MiB cap" "nginx-rtmp (peer)"
row() { # $1 title, $2 function of a label
  printf '%-32s' "$1"
  for l in "${labels[@]}"; do printf ' | %-27s' "$($2 "$l")"; done
  echo
}
rtt() { echo "$(json "$1" p50) / $(json "$1" p99) / $(json "$1" p999) / $(json "$1" max)"; }
rtt_base() { rtt "$1-base"; }
over() { echo "$(json "$1" over_5ms) / $(json "$1" over_20ms) of $(json "$1" answered)"; }
lost() { json "$1" lost; }
cuts() { if [[ -n ${res[bytecuts_$1]} ]]; then echo "${res[cuts_$1]} (${res[bytecuts_$1]} by size)"; else echo "${res[cuts_$1]} (on keyframes)"; fi; }
sizes() { echo "${res[sizes_$1]}"; }
near() { # the longest RTT of a ping sent from 250 ms before to 50 ms after a cut, and of the others
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); f=lambda v: "%.1f" % v if v is not None else "<2"
print("%s / %s" % (f(d["max_at_cut"]), f(d["max_elsewhere"])))' "$work/near-$1.json"
}
row "ping RTT ms p50/p99/p99.9/max" rtt
row "max RTT ms: at a cut / elsewhere" near
row "pings > 5 ms / > 20 ms" over
row "pings unanswered" lost
row "segments cut during the run" cuts
row "segment sizes" sizes
row "probe alone (${BASE} s): RTT ms" rtt_base
echo "(at a cut: pings sent from 250 ms before to 50 ms after one; RTT = send() to the kernel's receive time of the answer)"
# onair logs a byte cut when it decides it ("segment reached N bytes") and the
# finished segment after its copy and store_put: the ingest thread's time in the cut.
python3 - "$work/window-cap.log" <<'EOP'
import datetime, sys
t = lambda l: datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
start, d = None, []
for line in open(sys.argv[1]):
    if "(max_segment_bytes): cut" in line:
        start = t(line)
    elif start is not None and "heavy: segment" in line:
        d.append((t(line) - start) * 1000)
        start = None
if d:
    d.sort()
    print("onair's log, 32 MiB run: a cut took %.0f / %.0f / %.0f ms (min / median / max of %d; "
          "from deciding to cut to the segment in the store)" % (d[0], d[len(d) // 2], d[-1], len(d)))
EOP
echo
for l in "${labels[@]}"; do
  echo "stalls over 20 ms, $l (start s, max ms): $(python3 -c 'import json,sys; print(" ".join("%s:%s" % tuple(x) for x in json.load(open(sys.argv[1]))["stalls"][:20]) or "none")' "$work/probe-$l.json")"
done
