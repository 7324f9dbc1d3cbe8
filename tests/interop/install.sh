#!/usr/bin/env bash
# Installs the real SMTP AUTH peers (Postfix + Cyrus SASL, Dovecot auth) and the
# client tools used by the interop run, and unpacks Exim and OpenSMTPD (servers-up.sh)
# under $PEERS_OPT. Meant for a throwaway Debian 12 machine (CI) where we are root and
# there is no systemd. Idempotent: when every package is already installed and
# unpacked it does nothing, so re-runs cost well under a second.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=peers.env
. "$here/peers.env"

# Exim and OpenSMTPD both provide mail-transport-agent and so conflict with Postfix:
# they are fetched with `apt-get download`, unpacked with `dpkg -x` (no maintainer
# scripts run, nothing of them lands in /etc or /usr) and run from $PEERS_OPT/<name>.
# Their shared libraries do not conflict and are installed as usual.
# dir|package|suite: an empty suite is the machine's own sources. OpenSMTPD comes from
# bookworm-backports (7.4): bookworm's 6.8 cannot finish a TLS handshake with OpenSSL 3
# (its privilege-separated RSA/ECDSA signing fails with "missing private key", upstream
# issues #1171 and #1239), and it offers AUTH only inside TLS. The backports suite is
# read through a private apt state directory; the machine's sources are not changed.
UNPACKED=(
  "exim|exim4-daemon-heavy|"
  "opensmtpd|opensmtpd|bookworm-backports"
)
APT_PRIVATE=/var/cache/authspec-peers/apt

PACKAGES=(
  postfix sasl2-bin libsasl2-modules libsasl2-modules-db dovecot-core
  swaks libauthen-sasl-perl libdigest-hmac-perl libio-socket-inet6-perl libnet-ssleay-perl
  gsasl msmtp curl openssl python3
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install.sh: must run as root (apt-get install)" >&2
  exit 1
fi

# SCRAM, CRAM-MD5, DIGEST-MD5 and ANONYMOUS come from libsasl2-modules, sasldb from
# libsasl2-modules-db. A missing plugin would only show later as a short AUTH line.
check_plugins() {
  local plugdir lib
  plugdir=$(ls -d /usr/lib/*/sasl2 2>/dev/null | head -n 1)
  for lib in libsasldb libplain liblogin libcrammd5 libdigestmd5 libscram libanonymous; do
    if [[ -z $plugdir ]] || ! compgen -G "$plugdir/$lib.so*" >/dev/null; then
      echo "install.sh: Cyrus SASL plugin $lib missing from ${plugdir:-/usr/lib/*/sasl2}" >&2
      exit 1
    fi
  done
}

missing=()
for p in "${PACKAGES[@]}"; do
  # `dpkg-query -W` succeeds for removed-but-configured packages too; check status.
  if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

# apt options that read one extra suite from a private state directory.
apt_suite_opts() { # suite
  printf '%s\n' -o "Dir::Etc::SourceList=$APT_PRIVATE/$1/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
    -o "Dir::State::Lists=$APT_PRIVATE/$1/lists" -o "Dir::Cache=$APT_PRIVATE/$1/cache"
}
# An unpacked MTA is current when its stamp names the candidate version apt would fetch.
unpack_current() { # dir package suite
  local cand opts=()
  [[ -s $PEERS_OPT/$1/.authspec-version ]] || return 1
  if [[ -n $3 ]]; then mapfile -t opts < <(apt_suite_opts "$3"); fi
  cand=$(apt-cache "${opts[@]}" policy "$2" 2>/dev/null | sed -n 's/^ *Candidate: //p')
  [[ -n $cand && $cand != "(none)" && $(cat "$PEERS_OPT/$1/.authspec-version") == "$2 $cand" ]]
}
stale=()
for entry in "${UNPACKED[@]}"; do
  IFS='|' read -r dir pkg suite <<<"$entry"
  unpack_current "$dir" "$pkg" "$suite" || stale+=("$entry")
done

if [[ ${#missing[@]} -eq 0 && ${#stale[@]} -eq 0 ]]; then
  check_plugins
  echo "install.sh: all interop packages already installed"
  exit 0
fi
[[ ${#missing[@]} -eq 0 ]] || echo "install.sh: installing: ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive

# Without systemd, package maintainer scripts would try to start postfix/dovecot
# through invoke-rc.d; exit code 101 tells invoke-rc.d "action forbidden", so apt
# starts nothing and postfix-up.sh is the only thing that ever starts a peer.
policy=/usr/sbin/policy-rc.d
policy_created=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  policy_created=1
fi
cleanup() { if [[ $policy_created -eq 1 ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

# "No configuration" makes the postfix package write no main.cf of its own;
# postfix-up.sh writes the whole configuration.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string smtp.peers.test" | debconf-set-selections

apt-get update -qq
if [[ ${#missing[@]} -gt 0 ]]; then
  apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >/dev/null
fi

# The unpacked MTAs: download the .deb, install the libraries its Depends name
# (first alternative of each clause, lib*/zlib* only: the rest is maintainer-script
# plumbing such as exim4-base, debconf or adduser), and unpack it.
unpack() { # dir package suite
  local dir=$1 pkg=$2 suite=$3 tmp deb ver libs=() opts=()
  if [[ -n $suite ]]; then
    install -d -m 0755 "$APT_PRIVATE/$suite/lists/partial" "$APT_PRIVATE/$suite/cache/archives/partial"
    echo "deb http://deb.debian.org/debian $suite main" >"$APT_PRIVATE/$suite/sources.list"
    mapfile -t opts < <(apt_suite_opts "$suite")
    timeout 300 apt-get "${opts[@]}" update -qq >/dev/null \
      || { echo "install.sh: apt-get update of $suite failed" >&2; exit 1; }
  fi
  tmp=$(mktemp -d)
  chmod 0755 "$tmp" # apt-get download fetches as _apt
  (cd "$tmp" && timeout 300 apt-get "${opts[@]}" download -qq "$pkg" >/dev/null 2>&1) \
    || { rm -rf "$tmp"; echo "install.sh: apt-get download $pkg${suite:+ from $suite} failed" >&2; exit 1; }
  deb=$(ls "$tmp"/*.deb)
  ver=$(dpkg-deb -f "$deb" Version)
  mapfile -t libs < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/ //g' \
    | grep -E '^(lib|zlib)' || true)
  if [[ ${#libs[@]} -gt 0 ]]; then
    apt-get install -y -qq --no-install-recommends "${libs[@]}" >/dev/null
  fi
  rm -rf "${PEERS_OPT:?}/$dir"
  install -d -m 0755 "$PEERS_OPT/$dir"
  dpkg -x "$deb" "$PEERS_OPT/$dir"
  printf '%s %s\n' "$pkg" "$ver" >"$PEERS_OPT/$dir/.authspec-version"
  rm -rf "$tmp"
  echo "install.sh: unpacked $pkg $ver into $PEERS_OPT/$dir"
}
for entry in "${stale[@]}"; do
  IFS='|' read -r dir pkg suite <<<"$entry"
  unpack "$dir" "$pkg" "$suite"
done

check_plugins
echo "install.sh: done"
