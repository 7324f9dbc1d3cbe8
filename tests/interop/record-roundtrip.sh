#!/usr/bin/env bash
# Records real clients (swaks, Python's smtplib) talking to the real Postfix peers
# through `authspec record`, then replays every recorded scenario:
#   - client role against the same Postfix port (--var user=… --var password-env=PW);
#   - server role against the same client command;
# and checks that no recorded file holds the password, its base64 at any alignment,
# or the base64 of the PLAIN message. Exits non-zero on the first failure.
#
# Needs the peers up (postfix-up.sh) and an authspec binary: $AUTHSPEC, or
# target/debug/authspec (built with `cargo build -p authspec` when missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=peers.env
. "$here/peers.env"

AUTHSPEC=${AUTHSPEC:-$root/target/debug/authspec}
if [[ ! -x $AUTHSPEC ]]; then
  (cd "$root" && cargo build -q -p authspec)
fi
command -v swaks >/dev/null || { echo "record-roundtrip.sh: swaks is not installed" >&2; exit 2; }
command -v python3 >/dev/null || { echo "record-roundtrip.sh: python3 is not installed" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ ${KEEP:-} == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

export PW=$PEERS_PASS1
user=$PEERS_USER1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Starts a recording proxy in front of HOST:PORT writing to DIR; sets $proxy_port.
start_proxy() {
  local target=$1 dir=$2
  mkdir -p "$dir"
  "$AUTHSPEC" record --listen 127.0.0.1:0 --target "$target" --out "$dir" >"$dir/proxy.log" 2>"$dir/proxy.err" &
  pids+=($!)
  for _ in $(seq 1 100); do
    # The backgrounded proxy may not have created its log yet; under set -e a failing
    # sed here would end the whole script.
    proxy_port=$(sed -n 's/^listening on 127\.0\.0\.1://p' "$dir/proxy.log" 2>/dev/null || true)
    [[ -n $proxy_port ]] && return 0
    sleep 0.1
  done
  echo "record-roundtrip.sh: the proxy did not start" >&2
  cat "$dir/proxy.err" >&2
  exit 1
}

# Waits until the proxy has reported N sessions.
wait_sessions() {
  local dir=$1 n=$2
  for _ in $(seq 1 200); do
    [[ $(grep -c '^recorded session\|^session ' "$dir/proxy.log" || true) -ge $n ]] && return 0
    sleep 0.1
  done
  fail "the proxy reported fewer than $n sessions"; cat "$dir/proxy.log"
}

cat >"$work/smtplib-client.py" <<'EOF'
import os, smtplib, ssl, sys
host, port, mech = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = smtplib.SMTP(host, port, timeout=20)
s.ehlo("smtplib.example")
s.user, s.password = os.environ["AUTHSPEC_USER"], os.environ["AUTHSPEC_PASSWORD"]
auth = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}[mech]
s.auth(mech, auth, initial_response_ok=(mech != "CRAM-MD5"))
s.sendmail("alice@peers.test", ["bob@example.net"], "Subject: recorded\r\n\r\nhello\r\n")
s.quit()
EOF

# --- Plaintext AUTH on :2525 (Cyrus): swaks and smtplib ---------------------------
target=$PEERS_HOST:$PEERS_PORT_CYRUS
dir=$work/cyrus
start_proxy "$target" "$dir"
clients=()
for mech in PLAIN LOGIN CRAM-MD5 DIGEST-MD5; do
  # Single-quoted: sh -c expands $AUTHSPEC_USER / $AUTHSPEC_PASSWORD, which both this
  # script and `authspec run --client-command` set.
  cmd='swaks --server {host}:{port} --auth '"$mech"' --auth-user "$AUTHSPEC_USER" --auth-password "$AUTHSPEC_PASSWORD" --from alice@peers.test --to x@example.com'
  clients+=("$cmd")
done
for mech in PLAIN LOGIN CRAM-MD5; do
  clients+=("python3 $work/smtplib-client.py {host} {port} $mech")
done
n=0
for cmd in "${clients[@]}"; do
  n=$((n + 1))
  run=${cmd//\{host\}/127.0.0.1}
  run=${run//\{port\}/$proxy_port}
  if ! AUTHSPEC_USER=$user AUTHSPEC_PASSWORD=$PW sh -c "$run" >"$dir/client-$n.out" 2>&1; then
    fail "client through the proxy: $run"; cat "$dir/client-$n.out"
  fi
  wait_sessions "$dir" "$n"
  stamp_n=$(printf '%03d' "$n")
  cfile=$(ls "$dir"/*-"$stamp_n"-client.yaml)
  sfile=$(ls "$dir"/*-"$stamp_n"-server.yaml)
  if "$AUTHSPEC" run "$cfile" --target "$target" --var "user=$user" --var password-env=PW >"$dir/replay-$n-client.txt" 2>&1; then
    echo "ok   client role  $(basename "$cfile")  ($cmd)"
  else
    fail "client-role replay of $cfile"; cat "$dir/replay-$n-client.txt"
  fi
  if "$AUTHSPEC" run "$sfile" --client-command "$cmd" --var "user=$user" --var password-env=PW --timeout 20 >"$dir/replay-$n-server.txt" 2>&1; then
    echo "ok   server role  $(basename "$sfile")  ($cmd)"
  else
    fail "server-role replay of $sfile"; cat "$dir/replay-$n-server.txt"
  fi
done

# --- STARTTLS on :2528 (AUTH only after TLS): swaks --tls through the interception --
target=$PEERS_HOST:$PEERS_PORT_STARTTLS
dir=$work/starttls
start_proxy "$target" "$dir"
if swaks --server "127.0.0.1:$proxy_port" --tls --auth PLAIN --auth-user "$user" --auth-password "$PW" \
    --from alice@peers.test --to x@example.com >"$dir/client.out" 2>&1; then
  wait_sessions "$dir" 1
  cfile=$(ls "$dir"/*-001-client.yaml)
  grep -q 'starttls: {}' "$cfile" || fail "$cfile has no starttls step"
  grep -q 'mechanism: PLAIN' "$cfile" || fail "$cfile did not record AUTH inside TLS"
  if "$AUTHSPEC" run "$cfile" --target "$target" --ca-file "$PEERS_TLS_CA" --sni "$PEERS_SERVER_NAME" \
      --var "user=$user" --var password-env=PW >"$dir/replay.txt" 2>&1; then
    echo "ok   client role  $(basename "$cfile")  (swaks --tls, STARTTLS intercepted)"
  else
    fail "client-role replay of $cfile"; cat "$dir/replay.txt"
  fi
else
  fail "swaks --tls through the proxy"; cat "$dir/client.out"
fi

# --- No secret in any recorded file ------------------------------------------------
if ! python3 - "$work" "$PW" "$user" <<'EOF'
import base64, pathlib, sys
work, pw, user = pathlib.Path(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
forms = [pw.decode(), base64.b64encode(b"\0" + user + b"\0" + pw).decode()]
for k in range(3):
    enc = base64.b64encode(b"x" * k + pw).decode().rstrip("=")
    forms.append(enc[(8 * k + 5) // 6 : 8 * (k + len(pw)) // 6])
bad = 0
files = list(work.rglob("*.yaml"))
for f in files:
    text = f.read_text()
    for form in forms:
        if form and form in text:
            print(f"FAIL: {f} contains {form!r}")
            bad += 1
print(f"checked {len(files)} recorded files for {len(forms)} forms of the password")
sys.exit(1 if bad or not files else 0)
EOF
then
  failures=$((failures + 1))
fi

if [[ $failures -gt 0 ]]; then
  echo "record-roundtrip.sh: $failures failure(s)"
  KEEP=1
  exit 1
fi
echo "record-roundtrip.sh: all recorded sessions replayed in both roles"
