#!/usr/bin/env bash
# Bounded soak: mixed `authspec load` (several mechanisms, TLS and plaintext) and
# `authspec fuzz` against one `authspec serve`, for SOAK_SECONDS (60–120 s). It ends
# with zero panics, zero unexpected errors and the server's RSS within its bound, and
# prints the figures. Everything runs on loopback and every command is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

SOAK_SECONDS="${SOAK_SECONDS:-60}"
RSS_BOUND_KIB="${RSS_BOUND_KIB:-65536}"   # 64 MiB for the whole server process (about 10 MiB seen)
if [ "$SOAK_SECONDS" -lt 10 ] || [ "$SOAK_SECONDS" -gt 120 ]; then
  echo "SOAK_SECONDS must be between 10 and 120"; exit 2
fi

cargo build --release -p authspec >/dev/null
BIN="$PWD/target/release/authspec"
WORK="$(mktemp -d)"
trap 'kill "${SERVE_PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

printf 'alice:{PLAIN}wonderland\nbob:{PLAIN.B64}cEBzcyB3MHJkOng=\n' > "$WORK/users"
"$BIN" serve --listen 127.0.0.1:0 --users "$WORK/users" \
  -o smtpd_tls_security_level=may -o smtpd_client_connection_count_limit=0 \
  -o smtpd_error_sleep_time=0s \
  >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$WORK/serve.out" 2>/dev/null && break
  sleep 0.1
done
ADDR="$(sed -n 's/^listening on //p' "$WORK/serve.out" | head -1)"
[ -n "$ADDR" ] || { echo "authspec serve did not start"; cat "$WORK/serve.err"; exit 1; }
echo "soak: authspec serve on $ADDR for ${SOAK_SECONDS}s"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVE_PID/status"; }
RSS_START="$(rss)"
export PW=wonderland
third=$(( SOAK_SECONDS / 3 ))
pids=()
i=0
for mech in PLAIN CRAM-MD5 SCRAM-SHA-256; do
  i=$((i + 1))
  extra=()
  [ "$mech" = "CRAM-MD5" ] && extra=(--starttls --tls-insecure)
  timeout $((SOAK_SECONDS + 60)) "$BIN" load --target "$ADDR" --mechanism "$mech" \
    --var user=alice --var password-env=PW --duration "$SOAK_SECONDS" --concurrency 8 \
    --transaction "${extra[@]}" --format json >"$WORK/load-$i.json" 2>"$WORK/load-$i.err" &
  pids+=($!)
done
timeout $((SOAK_SECONDS + 60)) "$BIN" fuzz --target "$ADDR" --duration "$SOAK_SECONDS" \
  --sessions 1000000 --seed 7 --var user=alice --var password-env=PW \
  --out "$WORK/findings" >"$WORK/fuzz.out" 2>"$WORK/fuzz.err" &
FUZZ_PID=$!

peak="$RSS_START"
for _ in $(seq 1 "$SOAK_SECONDS"); do
  sleep 1
  kill -0 "$SERVE_PID" 2>/dev/null || { echo "authspec serve died"; cat "$WORK/serve.err" | tail -20; exit 1; }
  r="$(rss)"; [ "$r" -gt "$peak" ] && peak="$r"
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
wait "$FUZZ_PID" || status=1
RSS_END="$(rss)"

python3 - "$WORK" <<'PY'
import json, sys, glob
work = sys.argv[1]
total = 0
for f in sorted(glob.glob(f"{work}/load-*.json")):
    d = json.load(open(f))
    total += d.get("sessions_ok", 0)
    print(f"  load {d.get('mechanism')}: {d.get('sessions_ok')} ok, "
          f"{d.get('sessions_per_second', 0):.0f}/s, p99 {d.get('latency', {}).get('p99_ms')} ms, "
          f"errors {d.get('errors')}")
print(f"  load total: {total} sessions")
PY
tail -5 "$WORK/fuzz.out" | sed 's/^/  fuzz: /'
echo "  server RSS: start ${RSS_START} KiB, peak ${peak} KiB, end ${RSS_END} KiB (bound ${RSS_BOUND_KIB} KiB)"

if grep -qi 'panicked' "$WORK"/*.err; then
  echo "soak: a panic was logged"; grep -i -A5 panicked "$WORK"/*.err | head -40; exit 1
fi
if [ "$peak" -gt "$RSS_BOUND_KIB" ]; then
  echo "soak: server RSS over its bound"; exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "soak: load or fuzz reported errors"
  cat "$WORK"/load-*.err "$WORK/fuzz.err" | tail -40
  ls "$WORK/findings" 2>/dev/null | head
  exit 1
fi
echo "soak: ok"
