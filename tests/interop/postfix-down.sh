#!/usr/bin/env bash
# Stops the Postfix instance and the Dovecot started by postfix-up.sh, and waits
# (bounded) until they are gone. Safe to run when they are not running.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=peers.env
. "$here/peers.env"

PF_CONF=$PEERS_ETC/postfix
DOVECOT_CONF=$PEERS_ETC/dovecot/dovecot.conf
DOVECOT_PID=$PEERS_RUN_DIR/dovecot/master.pid
status=0

if [[ -f $PF_CONF/main.cf ]] && postfix -c "$PF_CONF" status >/dev/null 2>&1; then
  postfix -c "$PF_CONF" stop </dev/null >/dev/null 2>&1 || true
  for _ in $(seq 1 50); do
    postfix -c "$PF_CONF" status >/dev/null 2>&1 || break
    sleep 0.2
  done
  if postfix -c "$PF_CONF" status >/dev/null 2>&1; then
    echo "postfix-down.sh: postfix still running after 10s" >&2
    status=1
  else
    echo "postfix-down.sh: postfix stopped"
  fi
fi

if [[ -f $DOVECOT_PID ]]; then
  pid=$(cat "$DOVECOT_PID")
  if kill -0 "$pid" 2>/dev/null; then
    dovecot -c "$DOVECOT_CONF" stop </dev/null >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "postfix-down.sh: dovecot (pid $pid) still running after 10s" >&2
      status=1
    else
      echo "postfix-down.sh: dovecot stopped"
    fi
  fi
fi
exit $status
