# Shared by scripts/bench*.sh and scripts/soak.sh (sourced, not run).
# bench_init PREFIX: raises the open-file limit, makes $work, and arranges for
# every pid in $pids (and $ONAIR, if set) to be stopped and $work removed at exit.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cpu_ticks() { # utime+stime of the given pids, in clock ticks
  local t=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)

bench_cleanup() {
  local p
  for p in "${pids[@]}" ${ONAIR:-}; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}" ${ONAIR:-}; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

bench_init() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}
