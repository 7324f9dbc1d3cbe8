#!/usr/bin/env bash
# Issue 15's measured bounds, on loopback, against a release `authspec serve`:
#   1. peak RSS under a recipient flood (10 connections x 200,000 RCPT TO);
#   2. peak RSS under a DATA flood (50 connections x 10 MB, into a maildir);
#   3. time to shed 500 silent implicit-TLS connections (smtpd_timeout=5s);
#   4. time and peak RSS of `authspec run` on each file bomb.
# Peak RSS is the kernel's VmHWM of the server process (a fresh server per figure).
#
#   tests/bench/hardening.sh
#
# Environment: RCPT_CONNS (10), RCPTS (200000), DATA_CONNS (50), DATA_MB (10),
# SILENT (500), AUTHSPEC_BIN.
set -euo pipefail
. "$(dirname "$0")/common.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

RCPT_CONNS=${RCPT_CONNS:-10}
RCPTS=${RCPTS:-200000}
DATA_CONNS=${DATA_CONNS:-50}
DATA_MB=${DATA_MB:-10}
SILENT=${SILENT:-500}

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
stop_serve() { kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""; }
port() { echo "${SERVE_ADDR##*:}"; }

build_release
echo "machine: $(machine)"
if [ "$(ulimit -n)" -lt $((SILENT + 256)) ]; then ulimit -n $((SILENT + 256)) 2>/dev/null || true; fi

echo "== 1. recipient flood: $RCPT_CONNS connections x $RCPTS RCPT TO"
start_serve -o smtpd_error_sleep_time=0
base=$(rss_kib "$SERVE_PID")
res=$(python3 "$HERE/flood.py" rcpt 127.0.0.1 "$(port)" "$RCPT_CONNS" "$RCPTS")
echo "   $res (replies the client read before the server's reset; the server closes"
echo "   after 1000 accepted, 1000 free overshoots and smtpd_hard_error_limit errors)"
echo "   server RSS at start ${base} KiB, peak $(hwm_kib "$SERVE_PID") KiB"
stop_serve

echo "== 2. DATA flood: $DATA_CONNS connections x $DATA_MB MB into a maildir"
mkdir -p "$BENCH_TMP/maildir"
start_serve --maildir "$BENCH_TMP/maildir" -o message_size_limit=0
base=$(rss_kib "$SERVE_PID")
start=$(date +%s.%N)
res=$(python3 "$HERE/flood.py" data 127.0.0.1 "$(port)" "$DATA_CONNS" "$DATA_MB")
end=$(date +%s.%N)
echo "   $res in $(echo "$end - $start" | bc) s; $(ls "$BENCH_TMP/maildir/new" | wc -l) files in new/, $(ls "$BENCH_TMP/maildir/tmp" | wc -l) left in tmp/"
echo "   server RSS at start ${base} KiB, peak $(hwm_kib "$SERVE_PID") KiB"
stop_serve
rm -rf "$BENCH_TMP/maildir"

echo "== 3. $SILENT silent implicit-TLS connections, smtpd_timeout=5s"
start_serve -o smtpd_tls_wrappermode=yes -o smtpd_timeout=5s
res=$(python3 "$HERE/flood.py" silent 127.0.0.1 "$(port)" "$SILENT")
echo "   $res (each is held at most smtpd_timeout)"
echo "   server open descriptors after: $(ls /proc/"$SERVE_PID"/fd | wc -l)"
stop_serve

echo "== 4. file bombs: authspec run, wall time and peak RSS (each must end with an error)"
bomb() {
  local name=$1; shift
  local out
  out=$( { /usr/bin/time -f "%e s, %M KiB" "$AUTHSPEC_BIN" "$@" >/dev/null 2>"$BENCH_TMP/bomb.err"; } 2>&1 || true)
  out=$(tail -1 "$BENCH_TMP/bomb.err")
  local msg
  msg=$(grep -v ' s, .* KiB$' "$BENCH_TMP/bomb.err" | head -1 | sed "s|$BENCH_TMP/bombs/||" | cut -c1-120 || true)
  printf '   %-28s %-22s %s\n' "$name" "$out" "$msg"
}
B="$BENCH_TMP/bombs"; mkdir -p "$B"/{alias,laughs,deep,chain,zero,fifo,huge,loop,waits}
python3 - "$B" <<'PY'
import sys
b = sys.argv[1]
big = "A" * (400 * 1024)
open(f"{b}/alias/a.yaml", "w").write(f"id: x/alias\ntitle: t\ntags: [&s {big}" + ", *s" * 150_000 + "]\nsteps:\n  - send: NOOP\n")
t = "id: x/laughs\ntitle: t\nsteps:\n  - send: [&a0 [" + ",".join(["x"] * 10) + "]"
for i in range(1, 9):
    t += f", &a{i} [" + ",".join([f"*a{i-1}"] * 10) + "]"
open(f"{b}/laughs/l.yaml", "w").write(t + "]\n")
d = 500 * 1024
open(f"{b}/deep/d.yaml", "w").write("id: x/deep\ntitle: t\nsteps: " + "[" * d + "]" * d + "\n")
names = ["smtpd_banner", "mail_name", "relayhost", "relay_domains", "smtp_helo_name",
         "smtpd_sasl_local_domain", "smtp_tls_CAfile", "smtpd_tls_cert_file", "smtpd_tls_key_file",
         "smtp_sasl_mechanism_filter", "smtp_sasl_password_maps", "smtpd_discard_ehlo_keywords",
         "smtpd_client_restrictions", "smtpd_recipient_restrictions", "smtpd_sasl_exceptions_networks",
         "mydestination", "smtp_tls_security_level", "smtpd_tls_security_level", "authspec_sasl_mech_list",
         "smtpd_sasl_authenticated_header", "myhostname"]
prof = "".join(f'  {a}: "${b_}${b_}"\n' for a, b_ in zip(names, names[1:])) + f'  {names[-1]}: ""\n'
open(f"{b}/chain/c.yaml", "w").write("id: x/chain\ntitle: t\nprofile:\n" + prof + "steps:\n  - expect: {code: 220}\n")
open(f"{b}/waits/w.yaml", "w").write("id: x/waits\ntitle: t\nsteps:\n  - expect: {code: 220}\n" + "  - wait: 60s\n" * 1000)
PY
ln -s /dev/zero "$B/zero/z.yaml"
mkfifo "$B/fifo/f.yaml"
truncate -s 4G "$B/huge/h.yaml"
ln -s .. "$B/loop/up"; ln -s . "$B/loop/self"; printf 'id: x/ok\ntitle: t\nsteps:\n  - send: NOOP\n' >"$B/loop/ok.yaml"
bomb "scalar alias (1 MB file)" run --list "$B/alias"
bomb "nested aliases (10^9)" run --list "$B/laughs"
bomb "deep nesting (1 MiB)" run --list "$B/deep"
bomb "profile \$a\$a chain" run "$B/chain"
bomb "1000 x wait: 60s" run --scenario-timeout 2 "$B/waits"
bomb "symlink to /dev/zero" run --list "$B/zero"
bomb "FIFO named *.yaml" run --list "$B/fifo"
bomb "4 GiB sparse file" run --list "$B/huge"
bomb "symlinks to .. and ." run --list "$B/loop"
