#!/usr/bin/env bash
# Installs the three library clients of the interop run (direction B): lettre (Rust,
# built here), nodemailer (Node.js, npm) and aiosmtplib (Python, pip into a private
# folder). Idempotent and bounded; a fresh machine gets everything from the package
# registries. Prints the command line of each driver's environment on success.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

need_apt=()
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
if [[ ${#need_apt[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "clients/install.sh: need ${need_apt[*]} (run as root to apt-get them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq
  timeout 600 apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# lettre: its own workspace (not part of authspec's), locked.
(cd "$here/lettre" && timeout 900 cargo build --release --locked -q)

# nodemailer: the locked version.
if [[ ! -d $here/nodemailer/node_modules/nodemailer ]]; then
  (cd "$here/nodemailer" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
fi

# aiosmtplib: into a private folder, found through PYTHONPATH by the driver's caller.
if [[ ! -d $here/aiosmtplib/site/aiosmtplib ]]; then
  timeout 300 python3 -m pip install -q --disable-pip-version-check --no-warn-script-location \
    --target "$here/aiosmtplib/site" 'aiosmtplib==5.1.3'
fi
echo "clients/install.sh: lettre, nodemailer, aiosmtplib ready"
