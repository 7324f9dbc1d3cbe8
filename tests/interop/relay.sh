#!/usr/bin/env bash
# A second, tiny Postfix instance whose only job is to be an SMTP AUTH *client*: it
# relays everything to `authspec serve` with smtp_sasl_auth_enable=yes.
#
#   relay.sh up PLAIN_PORT STARTTLS_PORT TLS_PORT   write config, (re)start, wait
#   relay.sh down                                   stop it and empty its queue
#
# It is separate from the peers of postfix-up.sh (own config, queue and data
# directories), so their discard-only transports stay as they are. It has no inet
# listener: mail is injected with `sendmail -C $RELAY_CONF`. The SMTP client
# transport (and so the SASL mechanism, through smtp_sasl_mechanism_filter) and the
# credentials are chosen by the envelope sender, which lets one running instance
# cover every mechanism and a wrong password without reloads:
#
#   sender <mech>-<user>-<good|bad>@relay.test -> transport smtp-<mech>, user:password
#
# mech is plain, login, cram-md5, digest-md5, scram-sha-1, scram-sha-256 (cleartext to
# PLAIN_PORT), digest-md5-again (DIGEST-MD5 through a single smtp process, alice good
# only), starttls (PLAIN after STARTTLS, smtp_tls_security_level=encrypt, to
# STARTTLS_PORT) or tls (PLAIN in wrapper mode, to TLS_PORT).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=peers.env
. "$here/peers.env"

: "${RELAY_CONF:=$PEERS_ETC/relay}"
: "${RELAY_QUEUE:=/var/spool/authspec-relay}"
: "${RELAY_DATA:=/var/lib/authspec-relay}"
: "${RELAY_LOG:=$PEERS_LOG_DIR/relay.log}"
RELAY_MECHS=(plain login cram-md5 digest-md5 scram-sha-1 scram-sha-256)

die() {
  echo "relay.sh: FAILED: $*" >&2
  [[ -f $RELAY_LOG ]] && tail -n 30 "$RELAY_LOG" >&2
  exit 1
}

pf() { timeout 30 postfix -c "$RELAY_CONF" "$@" </dev/null; }

down() {
  if [[ -f $RELAY_CONF/main.cf ]]; then
    if pf status >/dev/null 2>&1; then
      timeout 30 postsuper -c "$RELAY_CONF" -d ALL >/dev/null 2>&1 || true
      pf stop >/dev/null 2>&1 || true
      for _ in $(seq 1 50); do pf status >/dev/null 2>&1 || break; sleep 0.2; done
      if pf status >/dev/null 2>&1; then die "still running after 10s"; fi
      echo "relay.sh: stopped"
    fi
  fi
}

up() {
  local plain=$1 starttls=$2 tls=$3
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  install -d -m 0755 "$RELAY_CONF" "$PEERS_LOG_DIR"
  install -d -m 0755 "$RELAY_QUEUE"
  install -d -m 0700 -o postfix -g postfix "$RELAY_DATA"

  cat >"$RELAY_CONF/main.cf" <<EOF
# Written by tests/interop/relay.sh: an SMTP AUTH client relaying to authspec serve.
compatibility_level = 3.6
mail_owner = postfix
setgid_group = postdrop
queue_directory = $RELAY_QUEUE
data_directory = $RELAY_DATA
myhostname = relay.$PEERS_REALM
mydomain = $PEERS_REALM
myorigin = \$myhostname
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
biff = no

# Everything goes to authspec serve, never anywhere else.
relayhost = [$PEERS_HOST]:$plain
default_transport = smtp
relay_transport = smtp
local_transport = error:no local delivery
sender_dependent_default_transport_maps = texthash:$RELAY_CONF/sender_transport
smtp_dns_support_level = disabled
smtp_host_lookup = native

smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = texthash:$RELAY_CONF/sasl_passwd
smtp_sender_dependent_authentication = yes
smtp_sasl_security_options = noanonymous
smtp_sasl_tls_security_options = noanonymous
smtp_tls_security_level = none
# A wrong password must show as a deferral in the log, not loop quickly.
smtp_sasl_auth_soft_bounce = yes
minimal_backoff_time = 300s
maximal_backoff_time = 600s
queue_run_delay = 300s
notify_classes =
bounce_notice_recipient = postmaster

# The whole SMTP dialogue of the smtp client goes to the log (> / < lines), so a
# failure can be read there.
debug_peer_list = $PEERS_HOST
debug_peer_level = 2

maillog_file = $RELAY_LOG
maillog_file_prefixes = /var, /dev/stdout
EOF

  {
    cat <<'EOF'
# Written by tests/interop/relay.sh. No inet services.
# service  type  private unpriv  chroot  wakeup  maxproc command + args
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
smtp      unix  -       -       n       -       -       smtp
EOF
    local m
    for m in "${RELAY_MECHS[@]}"; do
      echo "smtp-$m unix - - n - - smtp"
      echo "  -o smtp_sasl_mechanism_filter=$m"
    done
    # One process only, so that a second message surely meets the process that
    # authenticated the first (Cyrus's DIGEST-MD5 reauthentication cache is per process).
    echo "smtp-digest-md5-again unix - - n - 1 smtp"
    echo "  -o smtp_sasl_mechanism_filter=digest-md5"
    echo "smtp-starttls unix - - n - - smtp"
    echo "  -o smtp_sasl_mechanism_filter=plain -o smtp_tls_security_level=encrypt"
    echo "smtp-tls unix - - n - - smtp"
    echo "  -o smtp_sasl_mechanism_filter=plain -o smtp_tls_wrappermode=yes -o smtp_tls_security_level=encrypt"
  } >"$RELAY_CONF/master.cf"

  # texthash values are the rest of the line, inner spaces included.
  local user pass m port kind
  umask 077
  : >"$RELAY_CONF/sasl_passwd.new"
  : >"$RELAY_CONF/sender_transport"
  for m in "${RELAY_MECHS[@]}" starttls tls; do
    case $m in
      starttls) port=$starttls ;;
      tls) port=$tls ;;
      *) port=$plain ;;
    esac
    for user in "$PEERS_USER1" "$PEERS_USER2"; do
      if [[ $user == "$PEERS_USER1" ]]; then pass=$PEERS_PASS1; else pass=$PEERS_PASS2; fi
      for kind in good bad; do
        echo "$m-$user-$kind@relay.test smtp-$m:[$PEERS_HOST]:$port" >>"$RELAY_CONF/sender_transport"
        if [[ $kind == good ]]; then
          echo "$m-$user-$kind@relay.test $user:$pass" >>"$RELAY_CONF/sasl_passwd.new"
        else
          echo "$m-$user-$kind@relay.test $user:not-$pass" >>"$RELAY_CONF/sasl_passwd.new"
        fi
      done
    done
  done
  echo "digest-md5-again-$PEERS_USER1-good@relay.test smtp-digest-md5-again:[$PEERS_HOST]:$plain" >>"$RELAY_CONF/sender_transport"
  echo "digest-md5-again-$PEERS_USER1-good@relay.test $PEERS_USER1:$PEERS_PASS1" >>"$RELAY_CONF/sasl_passwd.new"
  umask 022
  mv "$RELAY_CONF/sasl_passwd.new" "$RELAY_CONF/sasl_passwd"
  # Read by the smtp client running as postfix.
  chown root:postfix "$RELAY_CONF/sasl_passwd"
  chmod 0640 "$RELAY_CONF/sasl_passwd"
  chmod 0644 "$RELAY_CONF/sender_transport" "$RELAY_CONF/main.cf" "$RELAY_CONF/master.cf"

  timeout 30 postfix -c "$RELAY_CONF" set-permissions create-missing >/dev/null 2>&1 || true
  timeout 30 postfix -c "$RELAY_CONF" check >"$PEERS_LOG_DIR/relay-check.log" 2>&1 \
    || { cat "$PEERS_LOG_DIR/relay-check.log" >&2; die "postfix check rejected $RELAY_CONF"; }
  if pf status >/dev/null 2>&1; then
    timeout 30 postsuper -c "$RELAY_CONF" -d ALL >/dev/null 2>&1 || true
    pf reload >>"$PEERS_LOG_DIR/relay.start.log" 2>&1 || die "reload failed"
  else
    pf start >>"$PEERS_LOG_DIR/relay.start.log" 2>&1 || die "start failed: $(tail -n 5 "$PEERS_LOG_DIR/relay.start.log")"
  fi
  for _ in $(seq 1 50); do
    if pf status >/dev/null 2>&1 && [[ -p $RELAY_QUEUE/public/pickup || -S $RELAY_QUEUE/public/pickup ]]; then
      echo "relay.sh: up, relaying to 127.0.0.1:$plain (STARTTLS :$starttls, TLS :$tls)"
      return 0
    fi
    sleep 0.2
  done
  die "not running after 10s"
}

case ${1:-} in
  up) shift; [[ $# -eq 3 ]] || die "usage: relay.sh up PLAIN_PORT STARTTLS_PORT TLS_PORT"; up "$@" ;;
  down) down ;;
  *) echo "usage: relay.sh up PLAIN_PORT STARTTLS_PORT TLS_PORT | down" >&2; exit 2 ;;
esac
