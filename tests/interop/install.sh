#!/usr/bin/env bash
# Installs the real SMTP AUTH peers (Postfix + Cyrus SASL, Dovecot auth) and the
# client tools used by the interop run. Meant for a throwaway Debian 12 machine
# (CI) where we are root and there is no systemd. Idempotent: when every package
# is already installed it does nothing, so re-runs cost well under a second.
set -euo pipefail

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

if [[ ${#missing[@]} -eq 0 ]]; then
  check_plugins
  echo "install.sh: all interop packages already installed"
  exit 0
fi
echo "install.sh: installing: ${missing[*]}"

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
apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" >/dev/null

check_plugins
echo "install.sh: done"
