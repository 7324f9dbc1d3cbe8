#!/usr/bin/env bash
# Stops the Exim daemon, its Dovecot and OpenSMTPD started by servers-up.sh, and waits
# (bounded) until they are gone. Safe to run when they are not running. Only the
# processes named in our own PID files are signalled.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=peers.env
. "$here/peers.env"

status=0

stop_pidfile() { # name pidfile program [command that stops it gracefully...]
  local name=$1 file=$2 prog=$3 pid
  shift 3
  [[ -f $file ]] || return 0
  pid=$(tr -dc '0-9' <"$file")
  # A PID file left from before a reboot may name an unrelated process by now: only a
  # process running our program is signalled.
  if [[ -n $pid ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$prog"; then
    rm -f "$file"
    return 0
  fi
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    if [[ $# -gt 0 ]]; then timeout 10 "$@" </dev/null >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    else kill "$pid" 2>/dev/null || true; fi
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    if kill -0 "$pid" 2>/dev/null; then
      echo "servers-down.sh: $name (pid $pid) still running" >&2
      status=1
      return
    fi
    echo "servers-down.sh: $name stopped"
  fi
  rm -f "$file"
}

# Exim: the daemon's PID (pid_file_path); SIGTERM ends the listener, sessions in
# progress end on their own.
stop_pidfile exim "$PEERS_RUN_DIR/exim.pid" "$PEERS_OPT/exim/usr/sbin/exim4"
stop_pidfile "exim (dovecot authenticators)" "$PEERS_RUN_DIR/exim-dovecot.pid" "$PEERS_OPT/exim/usr/sbin/exim4"
# OpenSMTPD in the foreground (-d): SIGTERM to the parent stops every process of it.
stop_pidfile opensmtpd "$PEERS_RUN_DIR/opensmtpd.pid" "$PEERS_OPT/opensmtpd/usr/sbin/smtpd"
stop_pidfile "dovecot (Exim's)" "$PEERS_RUN_DIR/exim-dovecot/master.pid" dovecot \
  dovecot -c "$PEERS_ETC/exim-dovecot/dovecot.conf" stop
exit $status
