#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine (idempotent): the Debian packages the tests and the walk-through use,
# the npm dependencies from the lock file, and the build. Used by the README's commands and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v in.tftpd >/dev/null 2>&1 || missing+=(tftpd-hpa)
command -v tftp >/dev/null 2>&1 || missing+=(tftp-hpa)
[ -x /usr/sbin/vsftpd ] || missing+=(vsftpd) # ftp:// tests; /usr/sbin is not on every user's PATH
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need Debian packages ${missing[*]}: run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts the system vsftpd on port 21; the tests run their own instances on free ports. Only a service
  # this script installed is stopped, with or without systemd.
  if [[ " ${missing[*]} " == *" vsftpd "* ]]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now vsftpd >/dev/null 2>&1 || true
    else
      service vsftpd stop >/dev/null 2>&1 || true
    fi
  fi
fi

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<18)) { console.error("setup: Node >= 20.18.1 needed, found "+process.versions.node); process.exit(1) }'
npm ci --no-audit --no-fund
npm run build
