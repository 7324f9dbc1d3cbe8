#!/usr/bin/env bash
# Writes the configuration of the non-Postfix SMTP AUTH peers and (re)starts them:
#   Exim 4.96 (Debian's exim4-daemon-heavy) on :2530, built-in authenticators
#     (plaintext PLAIN and LOGIN, cram_md5), STARTTLS offered, AUTH also in cleartext;
#   Exim on :2531, the same daemon with its `dovecot` authenticators against a
#     Dovecot auth-only instance of its own (PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256);
#   OpenSMTPD 6.8 on :2532, STARTTLS, AUTH PLAIN/LOGIN only after TLS, credentials table.
# Both MTAs conflict with Postfix (mail-transport-agent), so install.sh unpacks them with
# `dpkg -x` under $PEERS_OPT and they run from there with configurations under
# $PEERS_ETC; nothing of Debian's /etc/exim4 or /etc/smtpd.conf is used.
#
# Nothing leaves the machine: both listen on 127.0.0.1 only; Exim has host_lookup and
# rfc1413_hosts empty and one router that routes every address to :blackhole:; OpenSMTPD
# has a single action, an mda that reads the message and drops it. Neither has a
# dnslookup/relay route.
#
# Idempotent: re-running rewrites the configuration and restarts both. Waits (bounded,
# $PEERS_WAIT_SECONDS) until each port greets with 220 and advertises the expected AUTH
# line, and fails with the logs when one does not. Run install.sh first.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=peers.env
. "$here/peers.env"

EXIM=$PEERS_OPT/exim/usr/sbin/exim4
SMTPD=$PEERS_OPT/opensmtpd/usr/sbin/smtpd
EXIM_ETC=$PEERS_ETC/exim
EXIM_SPOOL=/var/spool/authspec-exim
EXIM_PID=$PEERS_RUN_DIR/exim.pid
EXIM_PID_DOVECOT=$PEERS_RUN_DIR/exim-dovecot.pid
EXIM_DOVECOT_ETC=$PEERS_ETC/exim-dovecot
EXIM_DOVECOT_BASE=$PEERS_RUN_DIR/exim-dovecot
OSMTPD_ETC=$PEERS_ETC/opensmtpd
OSMTPD_PID=$PEERS_RUN_DIR/opensmtpd.pid
TLS_DIR=$PEERS_ETC/servers-tls
WAIT_SECONDS=${PEERS_WAIT_SECONDS:-30}

die() {
  echo "servers-up.sh: FAILED: $*" >&2
  for log in "$PEERS_LOG_DIR/exim-main.log" "$PEERS_LOG_DIR/exim-panic.log" \
    "$PEERS_LOG_DIR/exim-dovecot.log" "$PEERS_LOG_DIR/opensmtpd.log"; do
    if [[ -f $log ]]; then
      echo "---- last lines of $log ----" >&2
      tail -n 30 "$log" >&2
    fi
  done
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ -x $EXIM ]] || die "$EXIM missing; run tests/interop/install.sh"
[[ -x $SMTPD ]] || die "$SMTPD missing; run tests/interop/install.sh"
for tool in dovecot openssl python3; do
  command -v "$tool" >/dev/null || die "$tool not installed; run tests/interop/install.sh"
done

# The system users the packages' maintainer scripts would have made (dpkg -x runs none).
# Debian's exim4 looks up "Debian-exim" at start; its OpenSMTPD drops to opensmtpd and opensmtpq.
for u in Debian-exim opensmtpd opensmtpq; do
  if ! id "$u" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
  fi
done

install -d -m 0755 "$PEERS_ETC" "$PEERS_RUN_DIR" "$PEERS_LOG_DIR" "$TLS_DIR"

# ---------------------------------------------------------------- TLS
# One self-signed end-entity certificate for both servers (CN and SAN
# $PEERS_SERVER_NAME, localhost, 127.0.0.1), kept across runs so a client's copy stays
# valid: $PEERS_SERVERS_TLS_CA. Same profile as postfix-up.sh's (CA:FALSE, serverAuth),
# which rustls accepts as its own trust anchor, but an RSA key: OpenSMTPD 6.8's
# privilege-separated signing fails with an EC key under OpenSSL 3 (every handshake
# ends in "SSL routines::EVP lib").
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
  openssl req -x509 -config "$TLS_DIR/openssl.cnf" -newkey rsa:2048 \
    -nodes -days 3650 -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null \
    || die "openssl could not make the servers' certificate"
fi
chmod 0600 "$TLS_DIR/key.pem"
chmod 0644 "$TLS_DIR/cert.pem"

# ---------------------------------------------------------------- stop what runs
# A restart rather than a reload: both re-read everything at start, and a clean start
# makes the readiness check below mean something.
timeout 60 "$here/servers-down.sh" >/dev/null || die "servers-down.sh could not stop the old servers"

# ---------------------------------------------------------------- Dovecot for Exim :2531
# An auth-only Dovecot of its own (base_dir under $PEERS_RUN_DIR/exim-dovecot), apart from
# postfix-up.sh's, so this script needs nothing of Postfix. Exim's dovecot authenticator
# talks to its auth-client socket. No failure delay and no anvil penalty: a scenario run
# fails authentication on purpose dozens of times (see README.md, Postfix/Dovecot).
install -d -m 0755 "$EXIM_DOVECOT_ETC"
install -d -m 0755 "$EXIM_DOVECOT_BASE"
# passwd-file: ':' cannot appear in the password field, hence {PLAIN.B64} for both.
{
  printf '%s:{PLAIN.B64}%s\n' "$PEERS_USER1" "$(printf '%s' "$PEERS_PASS1" | base64 -w0)"
  printf '%s:{PLAIN.B64}%s\n' "$PEERS_USER2" "$(printf '%s' "$PEERS_PASS2" | base64 -w0)"
} >"$EXIM_DOVECOT_ETC/users"
chown root:dovecot "$EXIM_DOVECOT_ETC/users" 2>/dev/null || true
chmod 0640 "$EXIM_DOVECOT_ETC/users"
cat >"$EXIM_DOVECOT_ETC/dovecot.conf" <<EOF
# Auth-only Dovecot for the Exim peer on :$PEERS_PORT_EXIM_DOVECOT (servers-up.sh).
protocols = none
listen = 127.0.0.1
base_dir = $EXIM_DOVECOT_BASE
instance_name = authspec-exim-dovecot
log_path = $PEERS_LOG_DIR/exim-dovecot.log
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
auth_default_realm = $PEERS_REALM
auth_failure_delay = 0
disable_plaintext_auth = no
ssl = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $EXIM_DOVECOT_ETC/users
}
service auth {
  unix_listener auth-client {
    mode = 0660
    user = Debian-exim
    group = Debian-exim
  }
  # anvil's penalty socket closed: no per-IP slow-down on repeated failures.
  unix_listener auth-penalty {
    mode = 0
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
# Dovecot keeps the caller's stdio after daemonizing; redirect it (peers README, gotcha 5).
dovecot -c "$EXIM_DOVECOT_ETC/dovecot.conf" </dev/null >>"$PEERS_LOG_DIR/exim-dovecot.log" 2>&1 \
  || die "dovecot (for Exim) did not start"

# ---------------------------------------------------------------- Exim :2530 and :2531
install -d -m 0750 -o root -g Debian-exim "$EXIM_ETC"
install -d -m 0750 -o Debian-exim -g Debian-exim "$EXIM_SPOOL"
touch "$PEERS_LOG_DIR/exim-main.log" "$PEERS_LOG_DIR/exim-reject.log" "$PEERS_LOG_DIR/exim-panic.log"
chown Debian-exim:Debian-exim "$PEERS_LOG_DIR"/exim-{main,reject,panic}.log
install -m 0644 "$TLS_DIR/cert.pem" "$EXIM_ETC/cert.pem"
install -m 0640 -o root -g Debian-exim "$TLS_DIR/key.pem" "$EXIM_ETC/key.pem"
# lsearch file "user: password": the data is the rest of the line, so bob's space and
# colon need no quoting. The realm form works too, as on the Postfix peers.
{
  printf '%s: %s\n' "$PEERS_USER1" "$PEERS_PASS1" "$PEERS_USER1@$PEERS_REALM" "$PEERS_PASS1"
  printf '%s: %s\n' "$PEERS_USER2" "$PEERS_PASS2" "$PEERS_USER2@$PEERS_REALM" "$PEERS_PASS2"
} >"$EXIM_ETC/passwd"
chown root:Debian-exim "$EXIM_ETC/passwd"
chmod 0640 "$EXIM_ETC/passwd"

# Two Exim daemons, one per port, from one template: Exim refuses two authenticators
# with the same public name in one configuration, even on different ports.
exim_conf() { # port spool-dir pid-file authenticators
  cat <<EOF
# Exim peer for authspec's interop run (tests/interop/servers-up.sh). Generated.
primary_hostname = exim.$PEERS_REALM
qualify_domain = $PEERS_REALM
local_interfaces = <; 127.0.0.1.$1
exim_user = Debian-exim
# Exim re-executes itself (delivery, daemon restart); Debian's build says /usr/sbin/exim4.
exim_path = $EXIM
exim_group = Debian-exim
never_users = root
keep_environment =
spool_directory = $2
log_file_path = $PEERS_LOG_DIR/exim-%s.log
pid_file_path = $3
log_selector = +smtp_protocol_error +smtp_syntax_error +incoming_port -host_lookup_failed
smtp_banner = \$smtp_active_hostname ESMTP Exim \$version_number peer-$1

# No DNS and no ident: no reverse lookup of clients, no RFC 1413 query.
host_lookup =
rfc1413_hosts =
rfc1413_query_timeout = 0s
helo_lookup_domains =

# STARTTLS offered; AUTH offered with and without TLS (Exim's default).
tls_advertise_hosts = *
tls_certificate = $EXIM_ETC/cert.pem
tls_privatekey = $EXIM_ETC/key.pem
auth_advertise_hosts = *
# A scenario run makes many connections from 127.0.0.1 in a row.
smtp_accept_max_per_host = 50
smtp_accept_max = 100

acl_smtp_rcpt = acl_check_rcpt

begin acl
# As Exim's default configuration: only authenticated clients may relay; others get
# "550 relay not permitted" at RCPT.
acl_check_rcpt:
  accept authenticated = *
  deny   message = relay not permitted

begin routers
# Every address, local or remote, is discarded: no dnslookup, no smtp transport.
blackhole:
  driver = redirect
  data = :blackhole:

begin transports

begin retry
*  *  F,1h,15m

begin rewrite

begin authenticators
$4
EOF
}

# :$PEERS_PORT_EXIM - Exim's built-in authenticators. PLAIN: $auth1 authzid, $auth2
# authcid, $auth3 password; an authzid other than empty or the authcid is refused
# (RFC 4616 §2: the server decides whether the authcid may act as the authzid).
PW=$EXIM_ETC/passwd
exim_conf "$PEERS_PORT_EXIM" "$EXIM_SPOOL" "$EXIM_PID" "$(cat <<EOF
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if and{ {or{ {eq{\$auth1}{}} {eq{\$auth1}{\$auth2}} }} \\
                      {eq{\$auth3}{\${lookup{\$auth2}lsearch{$PW}{\$value}{\N:no user:\N}}}} }}
  server_set_id = \$auth2
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = \${if eq{\$auth2}{\${lookup{\$auth1}lsearch{$PW}{\$value}{\N:no user:\N}}}}
  server_set_id = \$auth1
cram:
  driver = cram_md5
  public_name = CRAM-MD5
  server_secret = \${lookup{\$auth1}lsearch{$PW}{\$value}fail}
  server_set_id = \$auth1
EOF
)" >"$EXIM_ETC/exim.conf"

# :$PEERS_PORT_EXIM_DOVECOT - the same build, every mechanism served by Dovecot through
# Exim's dovecot authenticator.
dc_auths=
for m in PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256; do
  dc_auths+="dc_${m//-/_}:
  driver = dovecot
  public_name = $m
  server_socket = $EXIM_DOVECOT_BASE/auth-client
  server_set_id = \$auth1
"
done
install -d -m 0750 -o Debian-exim -g Debian-exim "$EXIM_SPOOL-dovecot"
exim_conf "$PEERS_PORT_EXIM_DOVECOT" "$EXIM_SPOOL-dovecot" "$EXIM_PID_DOVECOT" "$dc_auths" \
  >"$EXIM_ETC/exim-dovecot.conf"

for conf in exim.conf exim-dovecot.conf; do
  chown root:root "$EXIM_ETC/$conf"
  chmod 0644 "$EXIM_ETC/$conf"
  "$EXIM" -C "$EXIM_ETC/$conf" -bV </dev/null >"$PEERS_LOG_DIR/exim-bV.out" 2>&1 \
    || { cat "$PEERS_LOG_DIR/exim-bV.out" >&2; die "exim rejects $EXIM_ETC/$conf"; }
  # -bd: listen (Exim daemonizes itself); no -q: nothing is ever queued for later.
  "$EXIM" -C "$EXIM_ETC/$conf" -bd </dev/null >>"$PEERS_LOG_DIR/exim-main.log" 2>&1 \
    || die "exim did not start with $conf"
done

# ---------------------------------------------------------------- OpenSMTPD :2532
install -d -m 0755 "$OSMTPD_ETC"
install -m 0644 "$TLS_DIR/cert.pem" "$OSMTPD_ETC/cert.pem"
install -m 0600 "$TLS_DIR/key.pem" "$OSMTPD_ETC/key.pem"
# Credentials table (table(5)): "user crypt(3)-hash". SHA-512 crypt, fixed salt so
# re-runs write the same file.
{
  printf '%s %s\n' "$PEERS_USER1" "$(printf '%s' "$PEERS_PASS1" | openssl passwd -6 -salt authspecpeers1 -stdin)"
  printf '%s %s\n' "$PEERS_USER2" "$(printf '%s' "$PEERS_PASS2" | openssl passwd -6 -salt authspecpeers2 -stdin)"
} >"$OSMTPD_ETC/creds"
chmod 0640 "$OSMTPD_ETC/creds"
chown root:opensmtpd "$OSMTPD_ETC/creds"
# Every recipient of an authenticated session goes to one mda that drops the message.
printf '@ nobody\n' >"$OSMTPD_ETC/sink"
cat >"$OSMTPD_ETC/smtpd.conf" <<EOF
# OpenSMTPD peer for authspec's interop run (tests/interop/servers-up.sh). Generated.
pki $PEERS_SERVER_NAME cert "$OSMTPD_ETC/cert.pem"
pki $PEERS_SERVER_NAME key "$OSMTPD_ETC/key.pem"
table creds file:$OSMTPD_ETC/creds
table sink file:$OSMTPD_ETC/sink
# tls: STARTTLS offered; auth <creds>: AUTH (offered only inside TLS), required
# before a transaction.
listen on $PEERS_HOST port $PEERS_PORT_OPENSMTPD tls pki $PEERS_SERVER_NAME auth <creds> hostname opensmtpd.$PEERS_REALM
action "sink" mda "/bin/sh -c 'cat >/dev/null'" virtual <sink> user nobody
match auth from any for any action "sink"
EOF
chmod 0644 "$OSMTPD_ETC/smtpd.conf"
install -d -m 0711 /var/spool/smtpd
# Paths compiled into Debian's smtpd: the privilege-separated processes chroot to
# /var/lib/opensmtpd/empty, and an mda action runs through
# /usr/libexec/opensmtpd/mail.mda. Point the latter at the unpacked copy (only when
# the path is free or already ours: a real opensmtpd package would own it).
install -d -m 0755 /var/lib/opensmtpd /var/lib/opensmtpd/empty
if [[ -L /usr/libexec/opensmtpd || ! -e /usr/libexec/opensmtpd ]]; then
  ln -sfn "$PEERS_OPT/opensmtpd/usr/libexec/opensmtpd" /usr/libexec/opensmtpd
fi
"$SMTPD" -n -f "$OSMTPD_ETC/smtpd.conf" >"$PEERS_LOG_DIR/opensmtpd-n.out" 2>&1 \
  || { cat "$PEERS_LOG_DIR/opensmtpd-n.out" >&2; die "smtpd rejects its configuration"; }
# -d: stay in the foreground and log to stderr (there is no syslog here); setsid and
# redirected stdio so it holds nothing of the caller. Its PID goes to a file of ours.
# No DNS: OpenSMTPD resolves every client's address (PTR, then the name forward) with
# its own resolver, which reads /etc/resolv.conf and has no setting to turn that off
# (its ASR_CONFIG variable does not reach the re-executed children). So it runs in a
# mount namespace of its own where /etc/resolv.conf says "lookup file": /etc/hosts
# only. The nameserver line is for anything that reads it with glibc: loopback.
printf 'nameserver 127.0.0.1\nlookup file\n' >"$OSMTPD_ETC/resolv.conf"
setsid unshare --mount --propagation private sh -c \
  'mount --bind "$1" /etc/resolv.conf && exec "$2" -d -f "$3"' sh \
  "$OSMTPD_ETC/resolv.conf" "$SMTPD" "$OSMTPD_ETC/smtpd.conf" \
  </dev/null >>"$PEERS_LOG_DIR/opensmtpd.log" 2>&1 &
echo $! >"$OSMTPD_PID"

# ---------------------------------------------------------------- wait until ready
# Ready: greets with 220 and its EHLO advertises the expected AUTH line (after
# STARTTLS for OpenSMTPD, whose cleartext EHLO must have no AUTH).
probe() { # port starttls(0|1) expected-AUTH-line-or-"-"
  python3 - "$PEERS_HOST" "$@" <<'PY'
import socket, ssl, sys
host, port, tls, want = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
def ehlo(f, s):
    s.sendall(b"EHLO probe.peers.test\r\n")
    lines = []
    while True:
        line = f.readline()
        if not line:
            sys.exit("closed during EHLO")
        lines.append(line.decode("ascii", "replace").rstrip("\r\n"))
        if line[3:4] == b" ":
            return [l[4:] for l in lines]
try:
    with socket.create_connection((host, port), timeout=3) as s:
        f = s.makefile("rb")
        greet = f.readline()
        if not greet.startswith(b"220 "):
            sys.exit(f"greeting {greet!r}")
        caps = ehlo(f, s)
        if tls:
            if any(c.startswith("AUTH") for c in caps):
                sys.exit("AUTH offered before STARTTLS")
            s.sendall(b"STARTTLS\r\n")
            if not f.readline().startswith(b"220"):
                sys.exit("STARTTLS refused")
            ctx = ssl._create_unverified_context()
            s = ctx.wrap_socket(s, server_hostname="localhost")
            f = s.makefile("rb")
            caps = ehlo(f, s)
        s.sendall(b"QUIT\r\n")
        auth = [c for c in caps if c.startswith("AUTH ")]
        got = auth[0] if auth else "-"
        if got != want:
            sys.exit(f"EHLO advertised {got!r}, expected {want!r}")
except OSError as e:
    sys.exit(str(e))
PY
}

declare -a expect=(
  "$PEERS_PORT_EXIM|0|AUTH PLAIN LOGIN CRAM-MD5"
  "$PEERS_PORT_EXIM_DOVECOT|0|AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256"
  "$PEERS_PORT_OPENSMTPD|1|AUTH PLAIN LOGIN"
)
deadline=$((SECONDS + WAIT_SECONDS))
for e in "${expect[@]}"; do
  IFS='|' read -r port tls want <<<"$e"
  until why=$(probe "$port" "$tls" "$want" 2>&1); do
    if ((SECONDS >= deadline)); then
      die "peer $PEERS_HOST:$port not ready after ${WAIT_SECONDS}s: $why"
    fi
    sleep 0.3
  done
  echo "servers-up.sh: $PEERS_HOST:$port ready ($want)"
done
echo "servers-up.sh: Exim and OpenSMTPD up; logs in $PEERS_LOG_DIR"
