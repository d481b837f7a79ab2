#!/usr/bin/env bash
# Installs what onair needs on Debian 12 and builds it into build/.
#   scripts/setup.sh          runtime + build dependencies, hls.js
#   scripts/setup.sh --test   also the test tools (GStreamer, Chromium, wrk, nginx...)
# Safe to run again: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ ${1:-} == --test ]] && want_test=1

pkgs=(meson ninja-build pkg-config gcc libc6-dev
      libavformat-dev libavcodec-dev libavutil-dev libmicrohttpd-dev libgnutls28-dev
      libevent-dev libssl-dev libyaml-dev zlib1g-dev
      libcurl4-openssl-dev libjansson-dev libswscale-dev)
# Node.js may come from another repository (nodesource ships npm inside its
# nodejs package): ask Debian for it only when the commands are missing.
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
if ((want_test)); then
  pkgs+=(python3 ffmpeg
         gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
         gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
         glib-networking
         chromium wrk nginx-light curl openssl prometheus jq)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# hls.js for the player page (and playwright-core and shaka-player for the browser
# tests), from npm.
if [[ ! -f node_modules/hls.js/dist/hls.min.js ]] ||
   { ((want_test)) && [[ ! -d node_modules/playwright-core ||
                         ! -f node_modules/shaka-player/dist/shaka-player.compiled.js ]]; }; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [[ ! -f build/build.ninja ]]; then
  meson setup build --buildtype=debugoptimized >/dev/null
fi
ninja -C build >/dev/null
echo "setup: built build/onair"
