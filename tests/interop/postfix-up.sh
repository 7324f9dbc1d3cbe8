#!/usr/bin/env bash
# Writes the configuration of the real SMTP AUTH peers and (re)starts them:
#   Postfix with Cyrus SASL on :2525, :2526 and :2528, Postfix with Dovecot SASL on :2529.
# Then waits until every port greets with 220 and advertises what README.md says,
# and fails (non-zero, with the logs) when one does not. Run install.sh first.
# Re-running it rewrites the configuration and reloads what is already running.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=peers.env
. "$here/peers.env"

PF_CONF=$PEERS_ETC/postfix       # postfix -c: Debian's /etc/postfix is left alone
# Cyrus reads <smtpd_sasl_path>.conf from here. Debian's Postfix looks only in
# $config_directory/sasl whatever cyrus_sasl_config_path says, so that is where it goes
# (cyrus_sasl_config_path names it too, for builds that honour it).
SASL_CONF=$PF_CONF/sasl
SASLDB=$SASL_CONF/sasldb2
TLS_DIR=$PEERS_ETC/tls
DOVECOT_CONF=$PEERS_ETC/dovecot/dovecot.conf
DOVECOT_USERS=$PEERS_ETC/dovecot/users
DOVECOT_BASE=$PEERS_RUN_DIR/dovecot
QUEUE=/var/spool/postfix
WAIT_SECONDS=${PEERS_WAIT_SECONDS:-30}

die() {
  echo "postfix-up.sh: FAILED: $*" >&2
  for log in "$PEERS_LOG_DIR/postfix.log" "$PEERS_LOG_DIR/dovecot.log"; do
    if [[ -f $log ]]; then
      echo "---- last lines of $log ----" >&2
      tail -n 40 "$log" >&2
    fi
  done
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root"
for tool in postfix postconf saslpasswd2 dovecot openssl python3; do
  command -v "$tool" >/dev/null || die "$tool not installed; run tests/interop/install.sh"
done

install -d -m 0755 "$PEERS_ETC" "$PF_CONF" "$TLS_DIR" "$PEERS_ETC/dovecot" "$PEERS_RUN_DIR"
install -d -m 0750 -o root -g postfix "$SASL_CONF"
install -d -m 0755 "$PEERS_LOG_DIR"

# Bind [::1] only where the loopback has IPv6; otherwise Postfix refuses to start.
if grep -qE '^0{31}1 .* lo$' /proc/net/if_inet6 2>/dev/null; then
  inet_protocols=all
  listen6="[$PEERS_HOST6]:$PEERS_PORT_CYRUS"
else
  inet_protocols=ipv4
  listen6=
fi

# ---------------------------------------------------------------- TLS (:2528)
# Kept across runs so a client's copy of the CA stays valid. An end-entity
# certificate (CA:FALSE, serverAuth) so that WebPKI clients such as rustls accept
# it as their own trust anchor; OpenSSL's default -x509 profile would mark it a CA.
if [[ ! -s $TLS_DIR/cert.pem || ! -s $TLS_DIR/key.pem ]]; then
  cat >"$TLS_DIR/openssl.cnf" <<EOF
[req]
prompt = no
distinguished_name = dn
x509_extensions = peer
[dn]
CN = $PEERS_SERVER_NAME
[peer]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:$PEERS_SERVER_NAME, DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -config "$TLS_DIR/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -days 3650 -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null \
    || die "openssl could not make the :$PEERS_PORT_STARTTLS certificate"
fi
chmod 0600 "$TLS_DIR/key.pem"
chmod 0644 "$TLS_DIR/cert.pem"

# ---------------------------------------------------------------- Cyrus SASL
# mech_list is an upper bound: smtpd_sasl_security_options filters it per port,
# which is why ANONYMOUS is listed for :2525 but not advertised there.
write_cyrus_app() { # app mech_list
  cat >"$SASL_CONF/$1.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $SASLDB
mech_list: $2
EOF
  chmod 0644 "$SASL_CONF/$1.conf"
}
write_cyrus_app smtpd "PLAIN LOGIN CRAM-MD5 DIGEST-MD5 ANONYMOUS"
write_cyrus_app smtpd-2526 "PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256 SCRAM-SHA-512 ANONYMOUS"

# Built afresh each run so the passwords always match peers.env.
rm -f "$SASLDB"
printf '%s' "$PEERS_PASS1" | saslpasswd2 -p -c -f "$SASLDB" -u "$PEERS_REALM" "$PEERS_USER1"
printf '%s' "$PEERS_PASS2" | saslpasswd2 -p -c -f "$SASLDB" -u "$PEERS_REALM" "$PEERS_USER2"
# smtpd runs as postfix; the Debian default /etc/sasldb2 is root:sasl and unreadable to it.
chown root:postfix "$SASLDB"
chmod 0640 "$SASLDB"

# ---------------------------------------------------------------- Dovecot (auth only)
# passwd-file cannot hold ':' in the password field, so passwords are stored as
# PLAIN.B64; a plaintext-equivalent scheme is what CRAM-MD5, DIGEST-MD5 and SCRAM need.
b64() { printf '%s' "$1" | base64 -w0; }
umask 027
cat >"$DOVECOT_USERS" <<EOF
$PEERS_USER1:{PLAIN.B64}$(b64 "$PEERS_PASS1")
$PEERS_USER2:{PLAIN.B64}$(b64 "$PEERS_PASS2")
EOF
umask 022
chown root:dovecot "$DOVECOT_USERS"
chmod 0640 "$DOVECOT_USERS"

cat >"$DOVECOT_CONF" <<EOF
# Dovecot as a SASL backend for Postfix only: no IMAP/POP listeners.
protocols = none
listen = 127.0.0.1
base_dir = $DOVECOT_BASE
log_path = $PEERS_LOG_DIR/dovecot.log
ssl = no
# Plaintext mechanisms over a cleartext link are the point of some tests.
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 digest-md5 scram-sha-1 scram-sha-256
auth_default_realm = $PEERS_REALM
auth_realms = $PEERS_REALM
auth_verbose = yes
# No delay before a failure reply (default 2 s) and, below, no growing per-IP "auth
# penalty" (2, 4, 8, then 15 s before each reply to an IP with failures). Every test
# client is 127.0.0.1 and a scenario run fails authentication on purpose dozens of
# times, so AUTH soon waited past smtpd's patience: Postfix then answered "454 4.7.0
# Temporary authentication failure: Connection lost to authentication server" and about
# twenty scenarios failed at random (authspec run against :2529). login_trusted_networks
# does not exempt Postfix's requests; closing anvil's penalty socket does.
auth_failure_delay = 0
passdb {
  driver = passwd-file
  # %n drops the realm, so both alice and alice@$PEERS_REALM find the entry.
  args = username_format=%n $DOVECOT_USERS
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  unix_listener $QUEUE/private/dovecot-auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
chmod 0644 "$DOVECOT_CONF"

# ---------------------------------------------------------------- Postfix
cat >"$PF_CONF/main.cf" <<EOF
# Written by tests/interop/postfix-up.sh. Loopback only; nothing leaves the machine.
compatibility_level = 3.6
mail_owner = postfix
setgid_group = postdrop
queue_directory = $QUEUE
myhostname = $PEERS_SERVER_NAME
mydomain = $PEERS_REALM
myorigin = \$myhostname
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.1/32
inet_interfaces = loopback-only
inet_protocols = $inet_protocols
biff = no
append_dot_mydomain = no

# No outbound path: every transport discards, there is no smtp/lmtp client service,
# and no name is ever looked up.
default_transport = discard:peers-no-outbound
relay_transport = discard:peers-no-outbound
local_transport = discard:peers-no-outbound
virtual_transport = discard:peers-no-outbound
smtpd_peername_lookup = no
smtp_dns_support_level = disabled

# Only an authenticated client may relay.
smtpd_relay_restrictions = permit_sasl_authenticated, reject

smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $SASL_CONF
smtpd_sasl_local_domain = $PEERS_REALM
smtpd_sasl_security_options = noanonymous
broken_sasl_auth_clients = yes

smtpd_tls_security_level = none
smtpd_tls_cert_file = $TLS_DIR/cert.pem
smtpd_tls_key_file = $TLS_DIR/key.pem
smtpd_tls_loglevel = 1

# Logging without syslog.
maillog_file = $PEERS_LOG_DIR/postfix.log
maillog_file_prefixes = /var, /dev/stdout
EOF

{
  cat <<'EOF'
# Written by tests/interop/postfix-up.sh. chroot is "n" everywhere: the Cyrus
# configuration and sasldb live outside the queue directory.
# service  type  private unpriv  chroot  wakeup  maxproc command + args
EOF
  smtpd() { # listen banner-suffix extra -o lines...
    local listen=$1 suffix=$2
    shift 2
    echo "$listen inet n - n - - smtpd"
    echo "  -o { smtpd_banner = \$myhostname ESMTP \$mail_name $suffix }"
    local o
    for o in "$@"; do echo "  -o $o"; done
  }
  smtpd "$PEERS_HOST:$PEERS_PORT_CYRUS" "peer-$PEERS_PORT_CYRUS"
  if [[ -n $listen6 ]]; then smtpd "$listen6" "peer-$PEERS_PORT_CYRUS"; fi
  smtpd "$PEERS_HOST:$PEERS_PORT_CYRUS_NOPLAINTEXT" "peer-$PEERS_PORT_CYRUS_NOPLAINTEXT" \
    smtpd_sasl_path=smtpd-2526 broken_sasl_auth_clients=no smtpd_sasl_security_options=noplaintext
  smtpd "$PEERS_HOST:$PEERS_PORT_STARTTLS" "peer-$PEERS_PORT_STARTTLS" \
    smtpd_tls_security_level=may smtpd_tls_auth_only=yes
  smtpd "$PEERS_HOST:$PEERS_PORT_DOVECOT" "peer-$PEERS_PORT_DOVECOT-dovecot" \
    smtpd_sasl_type=dovecot smtpd_sasl_path=private/dovecot-auth
  cat <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
} >"$PF_CONF/master.cf"
chmod 0644 "$PF_CONF/main.cf" "$PF_CONF/master.cf"

postfix -c "$PF_CONF" check >"$PEERS_LOG_DIR/postfix-check.log" 2>&1 \
  || { cat "$PEERS_LOG_DIR/postfix-check.log" >&2; die "postfix check rejected $PF_CONF"; }

# ---------------------------------------------------------------- start or reload
# Dovecot keeps the caller's stdio open after it daemonizes: redirect it, or a
# caller that pipes this script (CI | tee) waits for Dovecot to exit.
if [[ -f $DOVECOT_BASE/master.pid ]] && kill -0 "$(cat "$DOVECOT_BASE/master.pid")" 2>/dev/null; then
  dovecot -c "$DOVECOT_CONF" reload </dev/null >/dev/null 2>&1 || die "dovecot reload failed"
else
  dovecot -c "$DOVECOT_CONF" </dev/null >>"$PEERS_LOG_DIR/dovecot.start.log" 2>&1 \
    || die "dovecot did not start ($(tail -n 5 "$PEERS_LOG_DIR/dovecot.start.log"))"
fi

if postfix -c "$PF_CONF" status >/dev/null 2>&1; then
  postfix -c "$PF_CONF" reload </dev/null >>"$PEERS_LOG_DIR/postfix.start.log" 2>&1 || die "postfix reload failed"
else
  postfix -c "$PF_CONF" start </dev/null >>"$PEERS_LOG_DIR/postfix.start.log" 2>&1 \
    || die "postfix did not start ($(tail -n 5 "$PEERS_LOG_DIR/postfix.start.log"))"
fi

# ---------------------------------------------------------------- wait for every peer
# A port is ready when it greets with 220 and its EHLO advertises what the peers
# README promises; for :2529 that also proves Postfix reaches Dovecot's socket.
probe() { # host port expected-AUTH-line-or-"-" [capability that must be present]
  python3 - "$@" <<'EOF'
import socket, sys
host, port, want = sys.argv[1], int(sys.argv[2]), sys.argv[3]
need = sys.argv[4] if len(sys.argv) > 4 else None
try:
    with socket.create_connection((host, port), timeout=3) as s:
        f = s.makefile("rb")
        greet = f.readline()
        if not greet.startswith(b"220 "):
            sys.exit(f"greeting {greet!r}")
        s.sendall(b"EHLO probe.peers.test\r\n")
        lines = []
        while True:
            line = f.readline()
            if not line:
                sys.exit("closed during EHLO")
            lines.append(line.decode("ascii", "replace").rstrip("\r\n"))
            if line[3:4] == b" ":
                break
        s.sendall(b"QUIT\r\n")
        auth = [l[4:] for l in lines if l[4:].startswith("AUTH ")]
        got = auth[0] if auth else "-"
        if got != want:
            sys.exit(f"EHLO advertised {got!r}, expected {want!r}")
        if need and need not in (l[4:] for l in lines):
            sys.exit(f"EHLO did not advertise {need}")
except OSError as e:
    sys.exit(str(e))
EOF
}

declare -A expect=(
  ["$PEERS_HOST $PEERS_PORT_CYRUS"]="AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5"
  ["$PEERS_HOST $PEERS_PORT_CYRUS_NOPLAINTEXT"]="AUTH CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256 SCRAM-SHA-512 ANONYMOUS"
  ["$PEERS_HOST $PEERS_PORT_STARTTLS"]="-"
  ["$PEERS_HOST $PEERS_PORT_DOVECOT"]="AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256"
)
if [[ -n $listen6 ]]; then expect["$PEERS_HOST6 $PEERS_PORT_CYRUS"]="AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5"; fi

deadline=$((SECONDS + WAIT_SECONDS))
for key in "${!expect[@]}"; do
  read -r host port <<<"$key"
  need=
  if [[ $port == "$PEERS_PORT_STARTTLS" ]]; then need=STARTTLS; fi
  until why=$(probe "$host" "$port" "${expect[$key]}" $need 2>&1); do
    if ((SECONDS >= deadline)); then
      die "peer $host:$port not ready after ${WAIT_SECONDS}s: $why"
    fi
    sleep 0.3
  done
  echo "postfix-up.sh: $host:$port ready (${expect[$key]})"
done
echo "postfix-up.sh: all peers up; logs in $PEERS_LOG_DIR"
