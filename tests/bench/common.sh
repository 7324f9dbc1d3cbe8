# Shared by the tests/bench scripts: build once, start `authspec serve` on a loopback
# port, read a process's RSS and CPU time, take medians. Source it; do not run it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/authspec-loadbench.XXXXXX")
SERVE_PID=""

bench_cleanup() {
  if [ -n "$SERVE_PID" ]; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT

# The release binary: measurements of a debug build say nothing.
build_release() {
  if [ -z "${AUTHSPEC_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release -q -p authspec) >&2
    AUTHSPEC_BIN="$ROOT/target/release/authspec"
  fi
  export AUTHSPEC_BIN
}

# start_serve [-o name=value ...]: starts the reference server on 127.0.0.1:0 with
# alice/wonderland and sets SERVE_PID and SERVE_ADDR.
start_serve() {
  printf 'alice:{PLAIN}wonderland\n' >"$BENCH_TMP/users"
  # The background job opens its own redirections: create the file first so the
  # polling below never races it.
  : >"$BENCH_TMP/serve.out"
  # SERVE_WRAP (e.g. "taskset -c 0") runs the server under a wrapper that execs it,
  # so $! is still the server's pid.
  # shellcheck disable=SC2086 # SERVE_WRAP is a command line
  ${SERVE_WRAP:-} "$AUTHSPEC_BIN" serve --listen 127.0.0.1:0 --users "$BENCH_TMP/users" "$@" \
    >"$BENCH_TMP/serve.out" 2>"$BENCH_TMP/serve.err" &
  SERVE_PID=$!
  for _ in $(seq 100); do
    SERVE_ADDR=$(sed -n 's/^listening on //p' "$BENCH_TMP/serve.out")
    [ -n "$SERVE_ADDR" ] && return 0
    sleep 0.05
  done
  echo "authspec serve did not start:" >&2
  cat "$BENCH_TMP/serve.err" >&2
  exit 1
}

# rss_kib PID: resident set size in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# cpu_ticks PID: user + system time in clock ticks (fields 14 and 15 after the name).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

machine() {
  printf '%s cores (nproc %s), %s\n' \
    "$(grep -c ^processor /proc/cpuinfo)" "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
}

# tree_cpu_ticks PID...: CPU ticks (user + system) of every live process below and
# including the given roots, plus what the roots have collected from children they
# reaped (cutime + cstime). Take the difference of two readings: processes that exit
# in between are counted through their parent's cutime, so the difference is the
# work done in between, give or take the earlier lifetime of those that exited.
tree_cpu_ticks() {
  local roots=" $* "
  # Processes come and go while the glob expands: cat skips the ones that vanished.
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v roots="$roots" '
    {
      pid = $1
      line = $0
      sub(/^.*\) /, "", line)
      n = split(line, f, " ")
      ppid[pid] = f[2]; own[pid] = f[12] + f[13]; reaped[pid] = f[14] + f[15]
    }
    END {
      total = 0
      for (p in ppid) {
        q = p; hops = 0
        while (q != "" && q != "0" && index(roots, " " q " ") == 0 && hops < 64) { q = ppid[q]; hops++ }
        if (q != "" && q != "0" && index(roots, " " q " ") > 0) {
          total += own[p]
          if (index(roots, " " p " ") > 0) total += reaped[p]
        }
      }
      print total
    }'
}
