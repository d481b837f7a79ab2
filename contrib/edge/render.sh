#!/bin/sh
# Renders onair-edge.conf.in into an nginx http{}-context file.
# usage: render.sh ORIGIN=HOST:PORT LISTEN=ADDR CACHE_DIR=DIR
#                  [TLS_LISTEN=ADDR CERT=PEM KEY=PEM] [ZONE=NAME] [PART_LOCK=500ms]
#                  [PLAYLIST_LOCK=10s]
#                  > onair-edge.conf
# Without CERT the TLS lines are left out (e.g. for a shield on a private network).
set -eu
ZONE=onair_edge PART_LOCK=500ms PLAYLIST_LOCK=10s ORIGIN= LISTEN= CACHE_DIR= TLS_LISTEN= CERT= KEY=
for kv in "$@"; do
  case $kv in
    ORIGIN=*|LISTEN=*|CACHE_DIR=*|TLS_LISTEN=*|CERT=*|KEY=*|ZONE=*|PART_LOCK=*|PLAYLIST_LOCK=*) eval "${kv%%=*}=\${kv#*=}" ;;
    *) echo "render.sh: unknown argument $kv" >&2; exit 2 ;;
  esac
done
for v in ORIGIN LISTEN CACHE_DIR; do
  eval "[ -n \"\$$v\" ]" || { echo "render.sh: $v= is required" >&2; exit 2; }
done
if [ -n "$CERT" ] && { [ -z "$KEY" ] || [ -z "$TLS_LISTEN" ]; }; then
  echo "render.sh: CERT= needs KEY= and TLS_LISTEN=" >&2; exit 2
fi
case $ZONE in *[!A-Za-z0-9_]*|'') echo "render.sh: ZONE= must be [A-Za-z0-9_]+" >&2; exit 2 ;; esac
esc() { printf '%s' "$1" | sed 's/[\\|&]/\\&/g'; }
if [ -n "$CERT" ]; then tls='s/[[:space:]]*#tls$//'; else tls='/#tls$/d'; fi
sed -e "$tls" \
    -e "s|@ORIGIN@|$(esc "$ORIGIN")|g" -e "s|@LISTEN@|$(esc "$LISTEN")|g" \
    -e "s|@TLS_LISTEN@|$(esc "$TLS_LISTEN")|g" -e "s|@CERT@|$(esc "$CERT")|g" \
    -e "s|@KEY@|$(esc "$KEY")|g" -e "s|@CACHE_DIR@|$(esc "$CACHE_DIR")|g" \
    -e "s|@ZONE@|$ZONE|g" -e "s|@PART_LOCK@|$(esc "$PART_LOCK")|g" \
    -e "s|@PLAYLIST_LOCK@|$(esc "$PLAYLIST_LOCK")|g" \
    "$(dirname "$0")/onair-edge.conf.in"
