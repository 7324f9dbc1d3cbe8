#!/usr/bin/env bash
# The interoperability run: authspec against real SMTP AUTH software, both ways.
#
#   A  authspec's client (probe, send, run) against Postfix with Cyrus SASL and with
#      Dovecot SASL (the peers of postfix-up.sh on :2525 :2526 :2528 :2529), and against
#      Exim and OpenSMTPD (servers-up.sh: :2530 :2531 :2532);
#   B  real clients (swaks, gsasl, curl, msmtp, Python smtplib, Postfix's smtp client,
#      lettre, nodemailer, aiosmtplib) against `authspec serve`, and the server-role
#      scenarios judging the last three.
#
# Every check is one command with a known good outcome (right password accepted and,
# where the client sends mail, the message found in serve's maildir) or bad outcome
# (wrong password rejected, nothing delivered). The result is a peer x mechanism x
# direction table, printed and written to tests/interop/matrix.md
# (tests/interop/update-readme.sh copies it into README.md). Exit status is non-zero
# when any check that is expected to pass did not.
#
# Meant for a throwaway Debian 12 machine, as root (CI calls it from .ci/run). Every
# external command is bounded by `timeout`. Environment:
#   AUTHSPEC=path         use this binary instead of `cargo build --release -p authspec`
#   INTEROP_PROFILE=debug build/use target/debug/authspec instead (no release build)
#   INTEROP_OUT=dir       logs, reports, maildir (default target/interop)
#   INTEROP_ONLY="A B"    directions to run (default both)
#   INTEROP_KEEP_PEERS=1  leave the peers running (Postfix/Dovecot if this run started them; Exim, OpenSMTPD)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=peers.env
. "$here/peers.env"

OUT=${INTEROP_OUT:-$root/target/interop}
ONLY=${INTEROP_ONLY:-A B}
CMD_TIMEOUT=${INTEROP_CMD_TIMEOUT:-30}
# One `authspec run` plays ~100 scenarios; Dovecot's failure delays add up.
RUN_TIMEOUT=${INTEROP_RUN_TIMEOUT:-180}
RELAY_WAIT=${INTEROP_RELAY_WAIT:-20}
MATRIX=$here/matrix.md
EXPECT_DIR=$here/expectations

rm -rf "$OUT"
mkdir -p "$OUT/logs" "$OUT/msg" "$OUT/reports"
LOGS=$OUT/logs
RESULTS=$OUT/results.tsv
MAILDIR=$OUT/maildir
: >"$RESULTS"
RUN_ID=$(date +%s)-$$

# ------------------------------------------------------------------ bookkeeping
declare -a TIMINGS=()
phase_name=
phase_start=$SECONDS
phase() {
  if [[ -n $phase_name ]]; then TIMINGS+=("$(printf '%-34s %4ds' "$phase_name" $((SECONDS - phase_start)))"); fi
  phase_name=$1
  phase_start=$SECONDS
  printf '\n=== %s (+%ds)\n' "$1" "$SECONDS"
}

# Checks that fail for a known, documented reason: "direction|peer|column|check-glob" -> reason.
# Such a failure shows as xfail and does not fail the run; a pass is reported as
# "unexpected pass" so the entry can be removed.
declare -A XFAIL=(
  # gsasl 2.2.0 over TLS 1.3: SCRAM-SHA-* (not -PLUS) stops with "mechanism error: Error
  # authenticating user" right after the server's empty 334, before sending anything.
  # It wants tls-unique channel-binding data, which TLS 1.3 does not define; --no-cb works.
  ["B|gsasl|STARTTLS|*channel binding on*"]="gsasl 2.2.0 needs tls-unique, which TLS 1.3 lacks (client-side, nothing sent)"
)

n_fail=0
n_ok=0
n_xfail=0
record() { # direction peer column check result detail
  local dir=$1 peer=$2 col=$3 check=$4 result=$5 detail=$6 key reason=
  for key in "${!XFAIL[@]}"; do
    # shellcheck disable=SC2053 # the check part of the key is a glob on purpose
    if [[ "$dir|$peer|$col|$check" == $key ]]; then reason=${XFAIL[$key]}; fi
  done
  if [[ -n $reason && $result == FAIL ]]; then
    result=xfail detail="$reason; $detail"
  elif [[ -n $reason ]]; then
    detail="unexpected pass: remove the XFAIL entry in run.sh ($reason)"
    echo "  NOTE  $check passed although XFAIL says: $reason" >&2
  fi
  case $result in
    ok) n_ok=$((n_ok + 1)) ;;
    xfail) n_xfail=$((n_xfail + 1)) ;;
    *) n_fail=$((n_fail + 1)) ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$dir" "$peer" "$col" "$check" "$result" "${detail//$'\t'/ }" >>"$RESULTS"
  printf '  %-5s %-3s %-24s %-14s %s%s\n' "$result" "$dir" "$peer" "$col" "$check" \
    "$([[ $result == ok ]] || printf ' -- %s' "$detail")"
}

mail_file() { # token -> path of the delivered message, if any
  [[ -d $MAILDIR ]] || return 1
  timeout 10 grep -rlF -- "X-Interop-Token: $1" "$MAILDIR" 2>/dev/null | head -n 1 | grep . 
}
wait_mail() { # token seconds
  local until=$((SECONDS + $2))
  while ! mail_file "$1" >/dev/null; do
    ((SECONDS < until)) || return 1
    sleep 0.2
  done
}

new_message() { # token -> path of an RFC 5322 message carrying it
  local f=$OUT/msg/$1.eml
  printf 'From: <alice@authspec.test>\r\nTo: <rcpt@example.com>\r\nSubject: interop %s\r\nMessage-ID: <%s@interop.authspec.test>\r\nX-Interop-Token: %s\r\n\r\nauthspec interop test message %s\r\n' \
    "$1" "$1" "$1" "$1" >"$f"
  echo "$f"
}

# check DIR PEER COL NAME WANT [--grep RE]... [--nogrep RE]... [--mail TOKEN] [--nomail TOKEN]
#       [--stdin FILE] [--timeout SECONDS] -- CMD...
#   WANT: an exit status, or "!0" for any failure. Output goes to $LOGS/<name>.log.
check() {
  local dir=$1 peer=$2 col=$3 name=$4 want=$5
  shift 5
  local -a greps=() nogreps=()
  local mail='' nomail='' stdin=/dev/null limit=$CMD_TIMEOUT
  while [[ $# -gt 0 && $1 != -- ]]; do
    case $1 in
      --grep) greps+=("$2") ;;
      --nogrep) nogreps+=("$2") ;;
      --mail) mail=$2 ;;
      --nomail) nomail=$2 ;;
      --stdin) stdin=$2 ;;
      --timeout) limit=$2 ;;
      *) echo "run.sh: check: bad option $1" >&2; exit 2 ;;
    esac
    shift 2
  done
  shift
  local id log rc=0 why='' re
  id=$(printf '%s_%s_%s_%s' "$dir" "$peer" "$col" "$name" | tr -c 'A-Za-z0-9._-' '_' | cut -c1-150)
  # Names may share their first 150 characters; a checksum of the whole keeps logs apart.
  id+=_$(printf '%s' "$dir$peer$col$name" | cksum | cut -d' ' -f1)
  log=$LOGS/$id.log
  { printf '#'; printf ' %q' "$@"; printf '\n'; } >"$log"
  timeout -k 5 "$limit" "$@" <"$stdin" >>"$log" 2>&1 || rc=$?
  # curl -v and msmtp --debug print the protocol lines with their CR.
  sed -i 's/\r$//' "$log"
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    why="timed out after ${limit}s"
  elif [[ $want == '!0' ]]; then
    [[ $rc -ne 0 ]] || why="exit 0, want a failure"
  elif [[ $rc -ne $want ]]; then
    why="exit $rc, want $want"
  fi
  for re in "${greps[@]}"; do
    grep -Eq -- "$re" "$log" || why+="${why:+; }no /$re/ in the output"
  done
  for re in "${nogreps[@]}"; do
    if grep -Eq -- "$re" "$log"; then why+="${why:+; }/$re/ in the output"; fi
  done
  if [[ -n $mail ]] && ! wait_mail "$mail" 5; then why+="${why:+; }message not in the maildir"; fi
  if [[ -n $nomail ]] && mail_file "$nomail" >/dev/null; then why+="${why:+; }message delivered anyway"; fi
  if [[ -z $why ]]; then
    record "$dir" "$peer" "$col" "$name" ok "exit $rc"
  else
    # The last lines say what the client saw; the full dialogue is in the log.
    why+=" [log ${log#"$root"/}: $({ grep -v '^#' "$log" || true; } | tail -n 3 | tr '\n\r' '  ' | cut -c1-300)]"
    record "$dir" "$peer" "$col" "$name" FAIL "$why"
  fi
}

# ------------------------------------------------------------------ cleanup
declare -a SERVE_PIDS=()
relay_started=0
peers_started=0
servers_started=0
cleanup() {
  local pid
  for pid in "${SERVE_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${SERVE_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ $relay_started -eq 1 ]]; then timeout 60 "$here/relay.sh" down >/dev/null 2>&1 || true; fi
  if [[ $peers_started -eq 1 && -z ${INTEROP_KEEP_PEERS:-} ]]; then
    timeout 60 "$here/postfix-down.sh" >/dev/null 2>&1 || true
  fi
  if [[ $servers_started -eq 1 && -z ${INTEROP_KEEP_PEERS:-} ]]; then
    timeout 60 "$here/servers-down.sh" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ 1. set-up
phase "install peers and clients"
timeout 900 "$here/install.sh"

phase "start Postfix/Cyrus and Postfix/Dovecot peers"
if ! timeout 10 postfix -c "$PEERS_ETC/postfix" status >/dev/null 2>&1; then peers_started=1; fi
# A peer that does not come up fails the run here (postfix-up.sh exits non-zero).
timeout 120 "$here/postfix-up.sh"

phase "start Exim and OpenSMTPD peers"
servers_started=1
# servers-up.sh (re)starts them and fails when a port does not greet and advertise AUTH.
timeout 120 "$here/servers-up.sh"

phase "build authspec"
if [[ -n ${AUTHSPEC:-} ]]; then
  echo "using AUTHSPEC=$AUTHSPEC"
else
  # release by default; INTEROP_PROFILE=debug reuses what `cargo test --workspace` built
  # (the checks take the same time either way: they wait on the peers, not on authspec).
  profile=${INTEROP_PROFILE:-release}
  (cd "$root" && timeout 1200 cargo build --profile "$([[ $profile == debug ]] && echo dev || echo "$profile")" -p authspec)
  AUTHSPEC=${CARGO_TARGET_DIR:-$root/target}/$profile/authspec
fi
[[ -x $AUTHSPEC ]] || { echo "run.sh: $AUTHSPEC is not executable" >&2; exit 1; }
authspec_help=$(timeout 10 "$AUTHSPEC" --help 2>&1 || true)
has_cmd() { grep -Eq "^ +$1( |$)" <<<"$authspec_help"; }
for c in serve send probe run; do
  if ! has_cmd "$c"; then echo "run.sh: WARNING: this authspec has no '$c' subcommand; its checks will FAIL" >&2; fi
done

# ------------------------------------------------------------------ 2. direction A
A_PEERS=(
  # name port tls-args mechanisms-both-sides-offer expectations-file
  "postfix-cyrus|$PEERS_PORT_CYRUS||PLAIN LOGIN CRAM-MD5 DIGEST-MD5|postfix-cyrus.yaml"
  "postfix-cyrus-noplaintext|$PEERS_PORT_CYRUS_NOPLAINTEXT||CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256 SCRAM-SHA-512|postfix-cyrus-noplaintext.yaml"
  "postfix-cyrus-starttls|$PEERS_PORT_STARTTLS|--starttls|PLAIN LOGIN CRAM-MD5 DIGEST-MD5|postfix-cyrus-starttls.yaml"
  "postfix-dovecot|$PEERS_PORT_DOVECOT||PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256|postfix-dovecot.yaml"
)

# What `authspec probe --format json` must show for each port (helpers.py probe-check).
declare -A PROBE_FACTS=(
  [postfix-cyrus]="auth-has:PLAIN auth-has:LOGIN auth-has:CRAM-MD5 auth-has:DIGEST-MD5 auth-lacks:ANONYMOUS auth-eq"
  [postfix-cyrus-noplaintext]="auth-has:CRAM-MD5 auth-has:DIGEST-MD5 auth-has:SCRAM-SHA-1 auth-has:SCRAM-SHA-256 auth-has:SCRAM-SHA-512 auth-has:ANONYMOUS auth-lacks:PLAIN auth-lacks:LOGIN no-auth-eq"
  [postfix-cyrus-starttls]="cap:STARTTLS no-auth-before-tls auth-after-tls-has:PLAIN auth-after-tls-has:DIGEST-MD5"
  [postfix-dovecot]="auth-has:PLAIN auth-has:LOGIN auth-has:CRAM-MD5 auth-has:DIGEST-MD5 auth-has:SCRAM-SHA-1 auth-has:SCRAM-SHA-256 auth-eq"
)

direction_a() {
  local entry name port tls mechs expfile m peer tlsargs=()
  for entry in "${A_PEERS[@]}"; do
    IFS='|' read -r name port tls mechs expfile <<<"$entry"
    peer="$name:$port"
    tlsargs=()
    if [[ -n $tls ]]; then tlsargs=(--starttls -o smtp_tls_security_level=verify -o "smtp_tls_CAfile=$PEERS_TLS_CA"); fi

    # probe: the facts the peers README promises.
    local pj=$OUT/reports/probe-$name.json rc=0
    timeout "$CMD_TIMEOUT" "$AUTHSPEC" probe "$PEERS_HOST:$port" ${tls:+--starttls --ca-file "$PEERS_TLS_CA" --tls-verify} \
      --format json >"$pj" 2>"$LOGS/A_probe_$name.err" || rc=$?
    if [[ $rc -ne 0 ]]; then
      record A "$peer" probe "probe json" FAIL "exit $rc: $(tail -n 2 "$LOGS/A_probe_$name.err" | tr '\n' ' ')"
    else
      # shellcheck disable=SC2086 # the facts are words
      check A "$peer" probe "facts: ${PROBE_FACTS[$name]}" 0 -- python3 "$here/helpers.py" probe-check "$pj" ${PROBE_FACTS[$name]}
    fi

    # send: every mechanism both sides offer, right and wrong password, two users.
    for m in $mechs; do
      local t
      t=A-$name-$m-alice-$RUN_ID
      check A "$peer" "$m" "alice right password" 0 --grep "^C: AUTH $m( |\$)" --grep "^S: 235" -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" "${tlsargs[@]}" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --body "$(new_message "$t")" \
        --user "$PEERS_USER1" --password-env PEER_PW --mechanism "$m"
      check A "$peer" "$m" "alice wrong password -> 4" 4 -- \
        env PEER_PW="not-$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" "${tlsargs[@]}" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" \
        --user "$PEERS_USER1" --password-env PEER_PW --mechanism "$m"
      check A "$peer" "$m" "bob (p@ss w0rd:x) right password" 0 -- \
        env PEER_PW="$PEERS_PASS2" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" "${tlsargs[@]}" \
        --from "$PEERS_USER2@$PEERS_REALM" --to "rcpt@example.com" \
        --user "$PEERS_USER2" --password-env PEER_PW --mechanism "$m"
    done

    # No --mechanism: whatever the client's policy picks must work.
    check A "$peer" auto "alice, mechanism chosen by smtp_sasl_* defaults" 0 -- \
      env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" "${tlsargs[@]}" \
      --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW

    # smtp_sasl_security_options=noplaintext: never PLAIN or LOGIN, even where offered.
    if [[ $name == postfix-cyrus || $name == postfix-dovecot ]]; then
      check A "$peer" noplaintext "-o smtp_sasl_security_options=noplaintext picks no PLAIN/LOGIN" 0 \
        --grep "^C: AUTH (CRAM-MD5|DIGEST-MD5|SCRAM-SHA-1|SCRAM-SHA-256)" --nogrep "^C: AUTH (PLAIN|LOGIN)" -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" \
        -o smtp_sasl_security_options=noplaintext \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW
    fi
    if [[ $name == postfix-cyrus ]]; then
      check A "$peer" noplaintext "noplaintext + noanonymous + nodictionary: CRAM/DIGEST are dictionary-prone -> 5" 5 -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" \
        -o "smtp_sasl_security_options=noplaintext, noanonymous, nodictionary" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW
    fi

    # :2526 offers ANONYMOUS: the AUTH succeeds but Postfix does not let it relay.
    if [[ $name == postfix-cyrus-noplaintext ]]; then
      check A "$peer" ANONYMOUS "AUTH ANONYMOUS 235, then RCPT refused -> 1" 1 --grep "235" -- \
        env PEER_PW=trace "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" \
        -o smtp_sasl_security_options= \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user anonymous --password-env PEER_PW --mechanism ANONYMOUS
      check A "$peer" noplaintext "--mechanism PLAIN where not offered -> 5" 5 -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW --mechanism PLAIN
    fi

    # :2528 with smtpd_tls_auth_only=yes: no AUTH in cleartext, and the client must say so.
    if [[ -n $tls ]]; then
      check A "$peer" STARTTLS "without --starttls: AUTH not offered -> 5" 5 -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW
      # Like Postfix, certificates are checked only at smtp_tls_security_level=verify/secure.
      check A "$peer" STARTTLS "STARTTLS, level encrypt (no certificate check)" 0 -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" --starttls \
        -o smtp_tls_security_level=encrypt \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW
      check A "$peer" STARTTLS "STARTTLS, level verify, the peer's certificate as CA file" 0 -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" --starttls \
        -o smtp_tls_security_level=verify -o "smtp_tls_CAfile=$PEERS_TLS_CA" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW
      check A "$peer" STARTTLS "STARTTLS, level verify, no CA file: certificate rejected -> 3" 3 -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" --starttls \
        -o smtp_tls_security_level=verify \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW
    fi

    # The :2525 peer also listens on [::1] when the loopback has IPv6.
    if [[ $name == postfix-cyrus ]] && timeout 5 python3 -c "import socket,sys; socket.create_connection(('$PEERS_HOST6', $port), 2).close()" 2>/dev/null; then
      check A "$name:[$PEERS_HOST6]:$port" PLAIN "alice over IPv6" 0 --grep "^C: AUTH PLAIN" -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "[$PEERS_HOST6]:$port" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW --mechanism PLAIN
      check A "$name:[$PEERS_HOST6]:$port" DIGEST-MD5 "bob over IPv6" 0 --grep "^C: AUTH DIGEST-MD5" -- \
        env PEER_PW="$PEERS_PASS2" "$AUTHSPEC" send -v --server "[$PEERS_HOST6]:$port" \
        --from "$PEERS_USER2@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER2" --password-env PEER_PW --mechanism DIGEST-MD5
    fi

    # run: the bundled scenarios, with the peer's known deviations. --timeout 15: Dovecot
    # delays each failed authentication by 2 s and Postfix adds its error sleep.
    local runargs=()
    if [[ -n $tls ]]; then runargs=(--starttls --ca-file "$PEERS_TLS_CA"); fi
    a_run "$peer" "$port" "$expfile" "$name" "${tls:+ --starttls}" "${runargs[@]}"
    if [[ -n $tls ]]; then
      # Scenarios that do STARTTLS themselves cannot start inside TLS: a second pass
      # in cleartext runs just those.
      a_run "$peer" "$port" "${expfile%.yaml}-cleartext.yaml" "$name-cleartext" ", cleartext pass: scenarios doing STARTTLS" \
        --ca-file "$PEERS_TLS_CA" \
        --filter 'starttls/*' --filter 'rfc4954/example-4.1-*-under-tls' --filter 'rfc4954/auth-encryption-required-538'
    fi
  done
}

a_run() { # peer port expectations-file report-name label [run args...]
  local peer=$1 port=$2 expfile=$3 rname=$4 label=$5 junit=$OUT/reports/junit-$4.xml
  shift 5
  check A "$peer" scenarios "authspec run$label (expectations/$expfile)" 0 --timeout "$RUN_TIMEOUT" -- \
    env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" run --target "$PEERS_HOST:$port" "$@" --timeout 15 \
    --var "user=$PEERS_USER1" --var password-env=PEER_PW \
    --expect-file "$EXPECT_DIR/$expfile" --format junit --output "$junit"
  if [[ -s $junit ]]; then
    echo "        $rname junit: $(timeout 10 python3 "$here/helpers.py" junit "$junit" 2>&1 || true)"
  fi
}

# ------------------------------------------------------------------ 2b. direction A, not Postfix
# Exim and OpenSMTPD (servers-up.sh). Their certificate is $PEERS_SERVERS_TLS_CA.
S_PEERS=(
  # name port starttls(0|1) mechanisms-both-sides-offer expectations-file probe-facts
  "exim|$PEERS_PORT_EXIM|0|PLAIN LOGIN CRAM-MD5|exim.yaml|auth-has:PLAIN auth-has:LOGIN auth-has:CRAM-MD5 auth-lacks:SCRAM-SHA-256 no-auth-eq cap:STARTTLS"
  "exim-dovecot|$PEERS_PORT_EXIM_DOVECOT|0|PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256|exim-dovecot.yaml|auth-has:PLAIN auth-has:LOGIN auth-has:CRAM-MD5 auth-has:SCRAM-SHA-1 auth-has:SCRAM-SHA-256 no-auth-eq cap:STARTTLS"
  "opensmtpd|$PEERS_PORT_OPENSMTPD|1|PLAIN LOGIN|opensmtpd.yaml|cap:STARTTLS no-auth-before-tls auth-after-tls-has:PLAIN auth-after-tls-has:LOGIN"
)

direction_a_servers() {
  local entry name port starttls mechs expfile facts peer m t pj rc tlsargs=() runargs=()
  local verify=(-o smtp_tls_security_level=verify -o "smtp_tls_CAfile=$PEERS_SERVERS_TLS_CA")
  for entry in "${S_PEERS[@]}"; do
    IFS='|' read -r name port starttls mechs expfile facts <<<"$entry"
    peer="$name:$port"
    tlsargs=()
    if [[ $starttls == 1 ]]; then tlsargs=(--starttls "${verify[@]}"); fi

    pj=$OUT/reports/probe-$name.json rc=0
    timeout "$CMD_TIMEOUT" "$AUTHSPEC" probe "$PEERS_HOST:$port" --ca-file "$PEERS_SERVERS_TLS_CA" --tls-verify \
      --format json >"$pj" 2>"$LOGS/A_probe_$name.err" || rc=$?
    if [[ $rc -ne 0 ]]; then
      record A "$peer" probe "probe json" FAIL "exit $rc: $(tail -n 2 "$LOGS/A_probe_$name.err" | tr '\n' ' ')"
    else
      # shellcheck disable=SC2086 # the facts are words
      check A "$peer" probe "facts: $facts" 0 -- python3 "$here/helpers.py" probe-check "$pj" $facts
    fi

    for m in $mechs; do
      t=A-$name-$m-alice-$RUN_ID
      check A "$peer" "$m" "alice right password" 0 --grep "^C: AUTH $m( |\$)" --grep "^S: 235" -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" "${tlsargs[@]}" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --body "$(new_message "$t")" \
        --user "$PEERS_USER1" --password-env PEER_PW --mechanism "$m"
      check A "$peer" "$m" "alice wrong password -> 4" 4 -- \
        env PEER_PW="not-$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" "${tlsargs[@]}" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" \
        --user "$PEERS_USER1" --password-env PEER_PW --mechanism "$m"
      check A "$peer" "$m" "bob (p@ss w0rd:x) right password" 0 -- \
        env PEER_PW="$PEERS_PASS2" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" "${tlsargs[@]}" \
        --from "$PEERS_USER2@$PEERS_REALM" --to "rcpt@example.com" \
        --user "$PEERS_USER2" --password-env PEER_PW --mechanism "$m"
    done
    if [[ $starttls == 1 ]]; then
      # Postfix's defaults, which the client keeps: smtp_sasl_security_options = noplaintext,
      # noanonymous, and the TLS variant inherits it; a server with only PLAIN and LOGIN
      # leaves no mechanism (exit 5) until the TLS options allow plaintext.
      check A "$peer" auto "defaults (noplaintext): no mechanism left -> 5" 5 --grep "no mechanism left" -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" "${tlsargs[@]}" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW
      check A "$peer" auto "-o smtp_sasl_tls_security_options=noanonymous picks PLAIN or LOGIN" 0 \
        --grep "^C: AUTH (PLAIN|LOGIN)" --grep "^S: 235" -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" "${tlsargs[@]}" \
        -o smtp_sasl_tls_security_options=noanonymous \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW
    else
      check A "$peer" auto "alice, mechanism chosen by smtp_sasl_* defaults" 0 -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" "${tlsargs[@]}" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW
    fi

    if [[ $starttls == 1 ]]; then
      # OpenSMTPD offers AUTH only inside TLS: without STARTTLS the client has no mechanism.
      check A "$peer" STARTTLS "without --starttls: AUTH not offered -> 5" 5 -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW
      runargs=(--starttls --ca-file "$PEERS_SERVERS_TLS_CA")
    else
      check A "$peer" STARTTLS "STARTTLS, level verify, the peer's certificate as CA file, PLAIN" 0 --grep "^C: AUTH PLAIN" -- \
        env PEER_PW="$PEERS_PASS1" "$AUTHSPEC" send -v --server "$PEERS_HOST:$port" --starttls "${verify[@]}" \
        --from "$PEERS_USER1@$PEERS_REALM" --to "rcpt@example.com" --user "$PEERS_USER1" --password-env PEER_PW \
        --mechanism PLAIN
      # Cleartext; scenarios that do STARTTLS themselves verify against the CA file.
      runargs=(--ca-file "$PEERS_SERVERS_TLS_CA")
    fi
    a_run "$peer" "$port" "$expfile" "$name" "$([[ $starttls == 1 ]] && echo " --starttls")" "${runargs[@]}"
  done
}

# ------------------------------------------------------------------ 3. direction B
SERVE_USERS=$OUT/users
start_serve() { # name extra-args... -> sets SERVE_PORT
  local name=$1 out=$OUT/serve-$1.out
  shift
  # Bounded like every other command: the whole run must not outlive this.
  # -v logs each authentication (sasl_method=, sasl_username=) and every line-level
  # deviation of a client, Postfix-style, to serve-NAME.err.
  timeout -k 5 900 "$AUTHSPEC" -v serve --listen "$PEERS_HOST:0" --users "$SERVE_USERS" \
    --maildir "$MAILDIR" "$@" >"$out" 2>"$OUT/serve-$name.err" &
  SERVE_PIDS+=($!)
  local pid=$! until=$((SECONDS + 15))
  SERVE_PORT=
  while [[ -z $SERVE_PORT ]]; do
    SERVE_PORT=$(sed -nE 's/^listening on [0-9.]+:([0-9]+)$/\1/p' "$out" | head -n 1)
    [[ -n $SERVE_PORT ]] && break
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= until)); then
      echo "run.sh: authspec serve ($name) did not start: $(cat "$OUT/serve-$name.err")" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "authspec serve ($name): 127.0.0.1:$SERVE_PORT $*"
}

direction_b() {
  # Dovecot passwd-file; bob's password has ':' so it is stored base64.
  printf '%s:{PLAIN}%s\n%s:{PLAIN.B64}%s\n' "$PEERS_USER1" "$PEERS_PASS1" \
    "$PEERS_USER2" "$(printf '%s' "$PEERS_PASS2" | base64 -w0)" >"$SERVE_USERS"
  chmod 0600 "$SERVE_USERS"
  local P S W X CERT_S=$OUT/cert-starttls.pem CERT_W=$OUT/cert-wrapper.pem
  start_serve plain -o authspec_require_auth=yes || { record B "authspec serve" PLAIN "serve starts" FAIL "see $OUT/serve-plain.err"; return; }
  P=$SERVE_PORT
  start_serve starttls -o authspec_require_auth=yes -o smtpd_tls_security_level=may --write-cert "$CERT_S" \
    || { record B "authspec serve" STARTTLS "serve starts" FAIL "see $OUT/serve-starttls.err"; return; }
  S=$SERVE_PORT
  start_serve wrapper -o authspec_require_auth=yes -o smtpd_tls_wrappermode=yes --write-cert "$CERT_W" \
    || { record B "authspec serve" TLS "serve starts" FAIL "see $OUT/serve-wrapper.err"; return; }
  W=$SERVE_PORT
  start_serve xoauth2-only -o authspec_require_auth=yes -o "smtpd_sasl_mechanism_filter=xoauth2, plain" \
    || { record B "authspec serve" XOAUTH2 "serve starts" FAIL "see $OUT/serve-xoauth2-only.err"; return; }
  X=$SERVE_PORT
  local u p t f m col

  # ---- swaks
  phase "B: swaks"
  for m in PLAIN LOGIN CRAM-MD5 DIGEST-MD5; do
    for u in "$PEERS_USER1" "$PEERS_USER2"; do
      if [[ $u == "$PEERS_USER1" ]]; then p=$PEERS_PASS1; else p=$PEERS_PASS2; fi
      t=B-swaks-$m-$u-$RUN_ID
      check B swaks "$m" "$u right password, mail delivered" 0 --mail "$t" --grep "^ -> AUTH $m( |\$)" -- \
        swaks --server "$PEERS_HOST:$P" --auth "$m" --auth-user "$u" --auth-password "$p" \
        --from "$u@authspec.test" --to rcpt@example.com --header "X-Interop-Token: $t"
    done
    t=B-swaks-$m-bad-$RUN_ID
    check B swaks "$m" "alice wrong password -> 28" 28 --grep "^<[~*]* +535" --nomail "$t" -- \
      swaks --server "$PEERS_HOST:$P" --auth "$m" --auth-user "$PEERS_USER1" --auth-password "not-$PEERS_PASS1" \
      --from "$PEERS_USER1@authspec.test" --to rcpt@example.com --header "X-Interop-Token: $t"
  done
  t=B-swaks-starttls-$RUN_ID
  check B swaks STARTTLS "--tls, PLAIN, alice, mail delivered" 0 --mail "$t" --grep "STARTTLS" -- \
    swaks --server "$PEERS_HOST:$S" --tls --auth PLAIN --auth-user "$PEERS_USER1" --auth-password "$PEERS_PASS1" \
    --from "$PEERS_USER1@authspec.test" --to rcpt@example.com --header "X-Interop-Token: $t"
  t=B-swaks-starttls-bad-$RUN_ID
  check B swaks STARTTLS "--tls, PLAIN, wrong password -> 28" 28 --nomail "$t" -- \
    swaks --server "$PEERS_HOST:$S" --tls --auth PLAIN --auth-user "$PEERS_USER1" --auth-password "not-$PEERS_PASS1" \
    --from "$PEERS_USER1@authspec.test" --to rcpt@example.com --header "X-Interop-Token: $t"
  t=B-swaks-tls-$RUN_ID
  check B swaks TLS "--tls-on-connect, LOGIN, bob, mail delivered" 0 --mail "$t" -- \
    swaks --server "$PEERS_HOST:$W" --tls-on-connect --auth LOGIN --auth-user "$PEERS_USER2" --auth-password "$PEERS_PASS2" \
    --from "$PEERS_USER2@authspec.test" --to rcpt@example.com --header "X-Interop-Token: $t"

  # ---- gsasl: authenticates, then QUIT; no mail.
  phase "B: gsasl"
  for m in SCRAM-SHA-1 SCRAM-SHA-256 DIGEST-MD5 CRAM-MD5 PLAIN LOGIN; do
    for u in "$PEERS_USER1" "$PEERS_USER2"; do
      if [[ $u == "$PEERS_USER1" ]]; then p=$PEERS_PASS1; else p=$PEERS_PASS2; fi
      check B gsasl "$m" "$u right password -> 235" 0 --grep "^AUTH $m\$" --grep "^235" -- \
        gsasl --smtp --connect "$PEERS_HOST:$P" --authentication-id "$u" --password "$p" --mechanism "$m"
    done
    check B gsasl "$m" "alice wrong password -> 535, exit 1" '!0' --grep "^535" --nogrep "^235" -- \
      gsasl --smtp --connect "$PEERS_HOST:$P" --authentication-id "$PEERS_USER1" --password "not-$PEERS_PASS1" --mechanism "$m"
  done
  # gsasl checks the certificate's name against --connect's host: the written
  # certificate names localhost (and myhostname), not 127.0.0.1.
  check B gsasl STARTTLS "automatic STARTTLS, CA = written cert, PLAIN, bob -> 235" 0 --grep "^235" --grep "^STARTTLS" -- \
    gsasl --smtp --connect "localhost:$S" --x509-ca-file "$CERT_S" --authentication-id "$PEERS_USER2" \
    --password "$PEERS_PASS2" --mechanism PLAIN
  check B gsasl STARTTLS "automatic STARTTLS, --no-cb, SCRAM-SHA-256, alice -> 235" 0 --grep "^235" --grep "^STARTTLS" -- \
    gsasl --smtp --connect "localhost:$S" --no-cb --x509-ca-file "$CERT_S" --authentication-id "$PEERS_USER1" \
    --password "$PEERS_PASS1" --mechanism SCRAM-SHA-256
  check B gsasl STARTTLS "automatic STARTTLS, channel binding on (default), SCRAM-SHA-1, alice -> 235" 0 --grep "^235" -- \
    gsasl --smtp --connect "localhost:$S" --x509-ca-file "$CERT_S" --authentication-id "$PEERS_USER1" \
    --password "$PEERS_PASS1" --mechanism SCRAM-SHA-1

  # ---- gsasl, channel binding (issue 18): SCRAM-*-PLUS with tls-exporter over TLS 1.3
  # (gsasl 2.2.0 uses GnuTLS's exporter, an independent implementation of RFC 9266),
  # and the same through `authspec record`, which terminates TLS: -PLUS must fail there
  # while plain SCRAM passes. gsasl has no implicit-TLS mode, so STARTTLS only.
  for m in SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS; do
    check B gsasl -PLUS "STARTTLS, TLS 1.3 tls-exporter, $m, alice -> 235" 0 --grep "^AUTH $m\$" --grep "^235" -- \
      gsasl --smtp --connect "localhost:$S" --x509-ca-file "$CERT_S" --authentication-id "$PEERS_USER1" \
      --password "$PEERS_PASS1" --mechanism "$m"
  done
  check B gsasl -PLUS "STARTTLS, automatic choice prefers SCRAM-SHA-256-PLUS -> 235" 0 --grep "^AUTH SCRAM-SHA-256-PLUS\$" --grep "^235" -- \
    gsasl --smtp --connect "localhost:$S" --x509-ca-file "$CERT_S" --authentication-id "$PEERS_USER1" \
    --password "$PEERS_PASS1"
  # The client side judged the same way: the server-role scenarios serve -PLUS after
  # STARTTLS and verify gsasl's tls-exporter binding ({cafile}: the harness's cert).
  # gsasl gives up on the plain-SCRAM y-flag scenario before sending (it wants
  # tls-unique for that), which the scenario reports as not reached (info).
  check B gsasl -PLUS "server-role scenarios: gsasl's SCRAM-SHA-256-PLUS binds and is preferred" 0 \
    --grep "✔ client/scram-plus-binds-tls-exporter" --grep "✔ client/scram-plus-preferred-over-tls" -- \
    "$AUTHSPEC" run "$root/scenarios/client/scram-plus-binds-tls-exporter.yaml" \
    "$root/scenarios/client/scram-plus-preferred-over-tls.yaml" "$root/scenarios/client/scram-y-flag-when-plus-hidden.yaml" \
    --client-mechanisms SCRAM-SHA-256,SCRAM-SHA-256-PLUS --client-command \
    'gsasl --smtp --connect localhost:{port} --x509-ca-file {cafile} --authentication-id "$AUTHSPEC_USER" --password "$AUTHSPEC_PASSWORD"'
  local RP='' rec_pid CERT_R=$OUT/cert-record.pem
  timeout -k 5 60 "$AUTHSPEC" record --listen 127.0.0.1:0 --target "127.0.0.1:$S" --out "$OUT/record-mitm" \
    --cert-out "$CERT_R" --max-sessions 2 >"$OUT/record-mitm.log" 2>&1 &
  rec_pid=$!
  for _ in $(seq 100); do
    RP=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$OUT/record-mitm.log" | head -n1)
    [[ -n $RP ]] && break
    sleep 0.1
  done
  check B gsasl -PLUS "through authspec record (TLS intercepted), SCRAM-SHA-256-PLUS -> 535 (binding mismatch)" '!0' --grep "^535" --nogrep "^235" -- \
    gsasl --smtp --connect "localhost:$RP" --x509-ca-file "$CERT_R" --authentication-id "$PEERS_USER1" \
    --password "$PEERS_PASS1" --mechanism SCRAM-SHA-256-PLUS
  check B gsasl -PLUS "through authspec record, plain SCRAM-SHA-256 (--no-cb) -> 235 (the MITM goes unseen)" 0 --grep "^235" -- \
    gsasl --smtp --connect "localhost:$RP" --no-cb --x509-ca-file "$CERT_R" --authentication-id "$PEERS_USER1" \
    --password "$PEERS_PASS1" --mechanism SCRAM-SHA-256
  wait "$rec_pid" 2>/dev/null || true

  # ---- curl
  phase "B: curl"
  local -a cu=(curl -sS -v --max-time 20)
  for m in PLAIN LOGIN CRAM-MD5 DIGEST-MD5; do
    for u in "$PEERS_USER1" "$PEERS_USER2"; do
      if [[ $u == "$PEERS_USER1" ]]; then p=$PEERS_PASS1; else p=$PEERS_PASS2; fi
      t=B-curl-$m-$u-$RUN_ID
      f=$(new_message "$t")
      check B curl "$m" "$u right password, mail delivered" 0 --mail "$t" --grep "^> AUTH $m\$" -- \
        "${cu[@]}" "smtp://$PEERS_HOST:$P" --mail-from "$u@authspec.test" --mail-rcpt rcpt@example.com \
        --upload-file "$f" --user "$u:$p" --login-options "AUTH=$m"
    done
    t=B-curl-$m-bad-$RUN_ID
    f=$(new_message "$t")
    check B curl "$m" "alice wrong password -> 67" 67 --nomail "$t" -- \
      "${cu[@]}" "smtp://$PEERS_HOST:$P" --mail-from "$PEERS_USER1@authspec.test" --mail-rcpt rcpt@example.com \
      --upload-file "$f" --user "$PEERS_USER1:not-$PEERS_PASS1" --login-options "AUTH=$m"
  done
  t=B-curl-PLAIN-ir-$RUN_ID
  f=$(new_message "$t")
  check B curl PLAIN "--sasl-ir (initial response), alice, mail delivered" 0 --mail "$t" --grep "> AUTH PLAIN [A-Za-z0-9+/=]" -- \
    "${cu[@]}" --sasl-ir "smtp://$PEERS_HOST:$P" --mail-from "$PEERS_USER1@authspec.test" --mail-rcpt rcpt@example.com \
    --upload-file "$f" --user "$PEERS_USER1:$PEERS_PASS1" --login-options AUTH=PLAIN
  # OAuth 2.0: serve checks the bearer token against the user's stored password.
  # curl 7.88 uses OAUTHBEARER whenever it is advertised, even with AUTH=XOAUTH2, so
  # XOAUTH2 goes to a server that offers only XOAUTH2 and PLAIN.
  local port
  for m in OAUTHBEARER XOAUTH2; do
    if [[ $m == XOAUTH2 ]]; then port=$X; else port=$P; fi
    t=B-curl-$m-$RUN_ID
    f=$(new_message "$t")
    check B curl "$m" "alice, --oauth2-bearer = password, mail delivered" 0 --mail "$t" --grep "^> AUTH $m\$" -- \
      "${cu[@]}" "smtp://$PEERS_HOST:$port" --mail-from "$PEERS_USER1@authspec.test" --mail-rcpt rcpt@example.com \
      --upload-file "$f" --user "$PEERS_USER1:" --oauth2-bearer "$PEERS_PASS1" --login-options "AUTH=$m"
    t=B-curl-$m-bad-$RUN_ID
    f=$(new_message "$t")
    check B curl "$m" "alice, wrong bearer token -> 67" 67 --nomail "$t" --nogrep "^< 235" -- \
      "${cu[@]}" "smtp://$PEERS_HOST:$port" --mail-from "$PEERS_USER1@authspec.test" --mail-rcpt rcpt@example.com \
      --upload-file "$f" --user "$PEERS_USER1:" --oauth2-bearer "not-$PEERS_PASS1" --login-options "AUTH=$m"
  done
  t=B-curl-starttls-$RUN_ID
  f=$(new_message "$t")
  check B curl STARTTLS "--ssl-reqd, CA = written cert, PLAIN, bob, mail delivered" 0 --mail "$t" -- \
    "${cu[@]}" --ssl-reqd --cacert "$CERT_S" --resolve "localhost:$S:$PEERS_HOST" "smtp://localhost:$S" \
    --mail-from "$PEERS_USER2@authspec.test" --mail-rcpt rcpt@example.com \
    --upload-file "$f" --user "$PEERS_USER2:$PEERS_PASS2" --login-options AUTH=PLAIN
  t=B-curl-tls-$RUN_ID
  f=$(new_message "$t")
  check B curl TLS "smtps://, CA = written cert, CRAM-MD5, alice, mail delivered" 0 --mail "$t" -- \
    "${cu[@]}" --cacert "$CERT_W" --resolve "localhost:$W:$PEERS_HOST" "smtps://localhost:$W" \
    --mail-from "$PEERS_USER1@authspec.test" --mail-rcpt rcpt@example.com \
    --upload-file "$f" --user "$PEERS_USER1:$PEERS_PASS1" --login-options AUTH=CRAM-MD5

  # ---- msmtp: a configuration file; the password comes from passwordeval.
  phase "B: msmtp"
  local msmtprc=$OUT/msmtprc
  cat >"$msmtprc" <<EOF
defaults
auth on
from alice@authspec.test
passwordeval printenv MSMTP_PW
logfile -
account plain
host $PEERS_HOST
port $P
tls off
account starttls
host localhost
port $S
tls on
tls_starttls on
tls_trust_file $CERT_S
account tls
host localhost
port $W
tls on
tls_starttls off
tls_trust_file $CERT_W
EOF
  chmod 0600 "$msmtprc"
  for m in plain login cram-md5 digest-md5 scram-sha-1 scram-sha-256 oauthbearer xoauth2; do
    col=${m^^}
    for u in "$PEERS_USER1" "$PEERS_USER2"; do
      if [[ $u == "$PEERS_USER1" ]]; then p=$PEERS_PASS1; else p=$PEERS_PASS2; fi
      t=B-msmtp-$m-$u-$RUN_ID
      if [[ $m == oauthbearer || $m == xoauth2 ]] && [[ $u == "$PEERS_USER2" ]]; then
        # A bearer token is a b64token (RFC 6750 §2.1): bob's password, with a space,
        # is not one, and the server must refuse the message as malformed.
        check B msmtp "$col" "$u: password with a space is no bearer token -> 501, 77" 77 --nomail "$t" \
          --grep "^<-- 501" --stdin "$(new_message "$t")" -- \
          env MSMTP_PW="$p" msmtp -C "$msmtprc" -a plain --auth="$m" --user="$u" --debug rcpt@example.com
        continue
      fi
      check B msmtp "$col" "$u right password, mail delivered" 0 --mail "$t" --grep "^--> AUTH $col( |\$)" --stdin "$(new_message "$t")" -- \
        env MSMTP_PW="$p" msmtp -C "$msmtprc" -a plain --auth="$m" --user="$u" --debug rcpt@example.com
    done
    t=B-msmtp-$m-bad-$RUN_ID
    check B msmtp "$col" "alice wrong password -> 77" 77 --nomail "$t" --stdin "$(new_message "$t")" -- \
      env MSMTP_PW="not-$PEERS_PASS1" msmtp -C "$msmtprc" -a plain --auth="$m" --user="$PEERS_USER1" --debug rcpt@example.com
  done
  t=B-msmtp-starttls-$RUN_ID
  check B msmtp STARTTLS "STARTTLS, trust file = written cert, SCRAM-SHA-256, alice, mail delivered" 0 --mail "$t" --stdin "$(new_message "$t")" -- \
    env MSMTP_PW="$PEERS_PASS1" msmtp -C "$msmtprc" -a starttls --auth=scram-sha-256 --user="$PEERS_USER1" --debug rcpt@example.com
  t=B-msmtp-tls-$RUN_ID
  check B msmtp TLS "implicit TLS, trust file = written cert, PLAIN, bob, mail delivered" 0 --mail "$t" --stdin "$(new_message "$t")" -- \
    env MSMTP_PW="$PEERS_PASS2" msmtp -C "$msmtprc" -a tls --auth=plain --user="$PEERS_USER2" --debug rcpt@example.com

  # ---- Python smtplib
  phase "B: python smtplib"
  local -a py=(python3 "$here/helpers.py" smtplib)
  for m in PLAIN LOGIN CRAM-MD5; do
    for u in "$PEERS_USER1" "$PEERS_USER2"; do
      if [[ $u == "$PEERS_USER1" ]]; then p=$PEERS_PASS1; else p=$PEERS_PASS2; fi
      t=B-smtplib-$m-$u-$RUN_ID
      check B "python smtplib" "$m" "$u right password, mail delivered" 0 --mail "$t" --grep "^send: 'AUTH $m( |\\\\r)" -- \
        env PY_PW="$p" "${py[@]}" "$PEERS_HOST" "$P" "$m" "$u" PY_PW "$u@authspec.test" rcpt@example.com "$(new_message "$t")"
    done
    t=B-smtplib-$m-bad-$RUN_ID
    check B "python smtplib" "$m" "alice wrong password -> SMTPAuthenticationError" 4 --nomail "$t" -- \
      env PY_PW="not-$PEERS_PASS1" "${py[@]}" "$PEERS_HOST" "$P" "$m" "$PEERS_USER1" PY_PW "$PEERS_USER1@authspec.test" rcpt@example.com "$(new_message "$t")"
  done
  t=B-smtplib-login-noir-$RUN_ID
  check B "python smtplib" LOGIN "initial_response_ok=False, alice, mail delivered" 0 --mail "$t" -- \
    env PY_PW="$PEERS_PASS1" "${py[@]}" "$PEERS_HOST" "$P" LOGIN "$PEERS_USER1" PY_PW "$PEERS_USER1@authspec.test" rcpt@example.com "$(new_message "$t")" plain "" noir
  t=B-smtplib-auto-$RUN_ID
  check B "python smtplib" auto "login() picks the mechanism, alice, mail delivered" 0 --mail "$t" -- \
    env PY_PW="$PEERS_PASS1" "${py[@]}" "$PEERS_HOST" "$P" AUTO "$PEERS_USER1" PY_PW "$PEERS_USER1@authspec.test" rcpt@example.com "$(new_message "$t")"
  t=B-smtplib-starttls-$RUN_ID
  check B "python smtplib" STARTTLS "starttls(), CA = written cert, PLAIN, bob, mail delivered" 0 --mail "$t" -- \
    env PY_PW="$PEERS_PASS2" "${py[@]}" localhost "$S" PLAIN "$PEERS_USER2" PY_PW "$PEERS_USER2@authspec.test" rcpt@example.com "$(new_message "$t")" starttls "$CERT_S"
  t=B-smtplib-tls-$RUN_ID
  check B "python smtplib" TLS "SMTP_SSL, CA = written cert, LOGIN, alice, mail delivered" 0 --mail "$t" -- \
    env PY_PW="$PEERS_PASS1" "${py[@]}" localhost "$W" LOGIN "$PEERS_USER1" PY_PW "$PEERS_USER1@authspec.test" rcpt@example.com "$(new_message "$t")" tls "$CERT_W"

  # ---- library clients: lettre, nodemailer, aiosmtplib; and the client scenarios
  library_clients_b "$P"

  # ---- Postfix's smtp client (Cyrus SASL) relaying through authspec serve
  phase "B: Postfix smtp client relaying"
  relay_b "$P" "$S" "$W"
}

# Three client libraries (tests/interop/clients/, installed by its install.sh): each
# mechanism it implements against authspec serve (right password -> accepted, wrong ->
# refused), then the server-role scenarios with the client as --client-command and its
# expectations file (only real deviations, quoted). The README's swaks example too.
library_clients_b() { # plain-port
  local P=$1 c=$here/clients name m u p
  phase "B: library clients (lettre, nodemailer, aiosmtplib)"
  if ! timeout 1500 "$c/install.sh" >"$LOGS/clients-install.log" 2>&1; then
    record B "lettre" PLAIN "clients/install.sh" FAIL "$(tail -n 3 "$LOGS/clients-install.log" | tr '\n' ' ')"
    return
  fi
  local -A CMD=(
    [lettre]="$c/lettre/target/release/authspec-interop-lettre"
    [nodemailer]="node $c/nodemailer/send.js"
    [aiosmtplib]="python3 $c/aiosmtplib/send.py"
  )
  local -A MECHS=([lettre]="PLAIN LOGIN" [nodemailer]="PLAIN LOGIN CRAM-MD5" [aiosmtplib]="PLAIN LOGIN CRAM-MD5")
  for name in lettre nodemailer aiosmtplib; do
    for m in ${MECHS[$name]}; do
      for u in "$PEERS_USER1" "$PEERS_USER2"; do
        if [[ $u == "$PEERS_USER1" ]]; then p=$PEERS_PASS1; else p=$PEERS_PASS2; fi
        # shellcheck disable=SC2086 # the command is words
        check B "$name" "$m" "$u right password, accepted" 0 --grep "^accepted: " -- \
          env AUTHSPEC_USER="$u" AUTHSPEC_PASSWORD="$p" ${CMD[$name]} "$PEERS_HOST" "$P" "$m"
      done
      # shellcheck disable=SC2086
      check B "$name" "$m" "alice wrong password -> 1" 1 -- \
        env AUTHSPEC_USER="$PEERS_USER1" AUTHSPEC_PASSWORD="not-$PEERS_PASS1" ${CMD[$name]} "$PEERS_HOST" "$P" "$m"
    done
    # The client's own choice among what serve offers.
    # shellcheck disable=SC2086
    check B "$name" auto "alice, mechanism chosen by the client, accepted" 0 --grep "^accepted: " -- \
      env AUTHSPEC_USER="$PEERS_USER1" AUTHSPEC_PASSWORD="$PEERS_PASS1" ${CMD[$name]} "$PEERS_HOST" "$P"
    local junit=$OUT/reports/junit-client-$name.xml
    check B "$name" scenarios "authspec run scenarios/client (expectations/clients/$name.yaml)" 0 --timeout "$RUN_TIMEOUT" -- \
      "$AUTHSPEC" run "$root/scenarios/client" --client-command "${CMD[$name]} {host} {port}" \
      --expect-file "$EXPECT_DIR/clients/$name.yaml" --format junit --output "$junit"
    if [[ -s $junit ]]; then
      echo "        $name junit: $(timeout 10 python3 "$here/helpers.py" junit "$junit" 2>&1 || true)"
    fi
  done
  # README.md "Against your client": the --client-command example, as written.
  local example
  example=$(sed -n '/^## Against your client/,/^```$/p' "$root/README.md" | sed -n '/--client-command/,/--to /p' | tr -d '\\\n' | tr -s ' ')
  check B swaks scenarios "README's --client-command example: ${example:0:60}…" 0 --timeout "$RUN_TIMEOUT" -- \
    env -C "$root" PATH="$(dirname "$AUTHSPEC"):$PATH" sh -c "$example"
}

relay_b() { # plain-port starttls-port tls-port
  local peer="postfix smtp (Cyrus)"
  relay_started=1
  if ! timeout 120 "$here/relay.sh" up "$1" "$2" "$3" >"$LOGS/relay-up.log" 2>&1; then
    record B "$peer" PLAIN "relay instance starts" FAIL "$(tail -n 5 "$LOGS/relay-up.log" | tr '\n' ' ')"
    return
  fi
  RELAY_CONF=$PEERS_ETC/relay
  RELAY_LOG=$PEERS_LOG_DIR/relay.log
  RELAY_LOG_START=$(($(wc -l <"$RELAY_LOG" 2>/dev/null || echo 0) + 1))
  local m u kind
  RELAY_ITEMS=()
  for m in plain login cram-md5 digest-md5 scram-sha-1 scram-sha-256 starttls tls; do
    for u in "$PEERS_USER1" "$PEERS_USER2"; do
      for kind in good bad; do
        [[ $kind == bad && $u == "$PEERS_USER2" ]] && continue
        # Over TLS, bob with the right password and alice with a wrong one are enough.
        if [[ $m == starttls || $m == tls ]] && [[ $u-$kind == "$PEERS_USER1-good" ]]; then continue; fi
        relay_inject "$peer" "$m" "$u" "$kind" "$m-$u-$kind"
      done
    done
  done
  relay_settle
  relay_judge "$peer"
  # Cyrus's DIGEST-MD5 client remembers a successful authentication and, the next time
  # the same smtp process talks to the same server as the same user, sends
  # "subsequent authentication" (RFC 2831 §2.2): AUTH DIGEST-MD5 <digest-response> as an
  # initial response. A server that does not support it "sends a digest-challenge, and
  # authentication proceeds as in initial authentication". Two messages, one after the
  # other, through a transport with a single smtp process.
  local n
  for n in 1 2; do
    RELAY_ITEMS=()
    relay_inject "$peer" digest-md5-again "$PEERS_USER1" good "digest-md5-again-$n" "again-$n"
    relay_settle noflush
    relay_judge "$peer"
  done
}

relay_inject() { # peer mech user good|bad rcpt-local [label]
  local peer=$1 m=$2 u=$3 kind=$4 rcpt=$5@example.com label=${6:-} t
  t=B-relay-$5-$RUN_ID
  if timeout 20 sendmail -C "$RELAY_CONF" -f "$m-$u-$kind@relay.test" "$rcpt" <"$(new_message "$t")" 2>"$LOGS/relay-inject.err"; then
    RELAY_ITEMS+=("$m|$u|$kind|$t|$rcpt|$label")
  else
    record B "$peer" "${m^^}" "$u $kind: sendmail -C injects" FAIL "$(tr '\n' ' ' <"$LOGS/relay-inject.err")"
  fi
}

relay_settle() { # [noflush] -- wait (bounded) until every RELAY_ITEMS message is sent, deferred or bounced
  # Flushing retries deferred mail too, which would make the wrong-password messages
  # authenticate again; only the first round needs it.
  if [[ ${1:-} != noflush ]]; then timeout 20 postqueue -c "$RELAY_CONF" -f >/dev/null 2>&1 || true; fi
  local until=$((SECONDS + RELAY_WAIT)) item pending m u kind t rcpt label
  while :; do
    pending=0
    for item in "${RELAY_ITEMS[@]}"; do
      IFS='|' read -r m u kind t rcpt label <<<"$item"
      if ! tail -n "+$RELAY_LOG_START" "$RELAY_LOG" | grep -F "to=<$rcpt>" | grep -Eq "status=(sent|deferred|bounced)"; then
        pending=$((pending + 1))
      fi
    done
    [[ $pending -eq 0 ]] && break
    ((SECONDS < until)) || break
    sleep 0.5
  done
  tail -n "+$RELAY_LOG_START" "$RELAY_LOG" >"$LOGS/B_relay.log" || true
}

relay_judge() { # peer
  local peer=$1 item m u kind t rcpt label col status line name
  for item in "${RELAY_ITEMS[@]}"; do
    IFS='|' read -r m u kind t rcpt label <<<"$item"
    case $m in starttls) col=STARTTLS ;; tls) col=TLS ;; digest-md5-again) col=DIGEST-MD5 ;; *) col=${m^^} ;; esac
    # The first status line decides: a retry after a deferral must not hide it.
    line=$(grep -F "to=<$rcpt>" "$LOGS/B_relay.log" | grep -E "status=" | head -n 1 || true)
    status=$(sed -nE 's/.*status=([a-z]+).*/\1/p' <<<"$line")
    if [[ $kind == good ]]; then
      name="$u right password, relayed, mail delivered"
      [[ $label == again-1 ]] && name="$u through a single smtp process, first message"
      [[ $label == again-2 ]] && name="$u again, same smtp process (RFC 2831 §2.2 subsequent authentication)"
      if [[ $status == sent ]] && wait_mail "$t" 5; then
        record B "$peer" "$col" "$name" ok "status=sent"
      else
        record B "$peer" "$col" "$name" FAIL \
          "status=${status:-none after ${RELAY_WAIT}s}: $(sed -nE 's/.*status=[a-z]+ (.*)/\1/p' <<<"$line" | cut -c1-300) [log ${LOGS#"$root"/}/B_relay.log]"
      fi
    else
      name="$u wrong password -> SASL authentication failed, deferred"
      if [[ $status == deferred ]] && grep -q "SASL authentication failed" <<<"$line" && ! mail_file "$t" >/dev/null; then
        record B "$peer" "$col" "$name" ok "status=deferred"
      else
        record B "$peer" "$col" "$name" FAIL "status=${status:-none}: $(sed -nE 's/.*status=[a-z]+ (.*)/\1/p' <<<"$line" | cut -c1-300)"
      fi
    fi
  done
}

# ------------------------------------------------------------------ run
if [[ " $ONLY " == *" A "* ]]; then
  phase "A: authspec client against the real servers"
  direction_a
  phase "A: authspec client against Exim and OpenSMTPD"
  direction_a_servers
fi
if [[ " $ONLY " == *" B "* ]]; then
  phase "B: authspec serve"
  direction_b
fi

if [[ " $ONLY " == *" A "* ]]; then
  # authspec record: real clients through the proxy to real Postfix; every recording
  # replays in both roles and holds no secret.
  phase "R: record round trip against Postfix"
  if AUTHSPEC=$AUTHSPEC timeout 300 "$here/record-roundtrip.sh" >"$OUT/record-roundtrip.log" 2>&1; then
    record A "postfix-cyrus:2525" scenarios "authspec record round trip (swaks, smtplib; replay both roles)" ok ""
  else
    record A "postfix-cyrus:2525" scenarios "authspec record round trip (swaks, smtplib; replay both roles)" FAIL "$(tail -5 "$OUT/record-roundtrip.log" | tr '\n' ' ')"
  fi
fi

phase "matrix"
timeout 30 python3 "$here/helpers.py" matrix "$RESULTS" "$MATRIX"
phase "done"

echo
echo "timings:"
printf '  %s\n' "${TIMINGS[@]}"
printf '  %-34s %4ds\n' total "$SECONDS"
echo
echo "checks: $n_ok ok, $n_fail FAIL, $n_xfail xfail; matrix in ${MATRIX#"$root"/}, logs in $OUT"
if [[ $n_fail -gt 0 ]]; then
  echo "interop: FAILED"
  exit 1
fi
echo "interop: all expected-OK checks passed"
