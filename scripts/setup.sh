#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine (idempotent): the Debian packages the tests and the walk-through use,
# the npm dependencies from the lock file, and the build. Used by the README's commands and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v in.tftpd >/dev/null 2>&1 || missing+=(tftpd-hpa)
command -v tftp >/dev/null 2>&1 || missing+=(tftp-hpa)
[ -x /usr/sbin/vsftpd ] || missing+=(vsftpd) # ftp:// tests; /usr/sbin is not on every user's PATH
# s3:// tests run against a throwaway single-node Ceph RGW (scripts/ceph-rgw.sh); ceph-mgr is not needed for it.
command -v ceph-mon >/dev/null 2>&1 || missing+=(ceph-mon)
command -v ceph-osd >/dev/null 2>&1 || missing+=(ceph-osd)
command -v radosgw >/dev/null 2>&1 || missing+=(radosgw)
command -v ceph >/dev/null 2>&1 || missing+=(ceph-common)
command -v curl >/dev/null 2>&1 || missing+=(curl) # scripts/ceph-rgw.sh warms RGW up with signed requests
[ -x /usr/bin/aws ] || missing+=(awscli) # npm run bench: Debian's awscli is the S3 baseline client
# test/integration/systemd-units.test.ts: systemd-analyze verify of infra/systemd/ (loads the units, starts nothing).
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# test/e2e/pxe-boot.test.ts: a QEMU VM PXE-boots (SeaBIOS + the iPXE e1000 ROM) into PXELINUX and a busybox initramfs.
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
[ -f /usr/lib/ipxe/qemu/efi-e1000.rom ] || missing+=(ipxe-qemu)
[ -f /usr/lib/PXELINUX/pxelinux.0 ] || missing+=(pxelinux)
[ -f /usr/lib/syslinux/modules/bios/ldlinux.c32 ] || missing+=(syslinux-common)
# test/e2e/dashboard.test.ts: the dashboard in headless Chromium (playwright-core drives /usr/bin/chromium).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Static: the initramfs has no dynamic loader. (Debian's busybox-static and busybox replace each other.)
if ! { [ -x /bin/busybox ] && dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; }; then
  missing+=(busybox-static)
fi
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
  # The ceph packages start no daemon on install (checked without systemd: no ceph process afterwards); the tests
  # run their own throwaway cluster. Under systemd, keep the units this script installed from starting at boot.
  if [[ " ${missing[*]} " == *" ceph-mon "* || " ${missing[*]} " == *" radosgw "* ]]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now ceph.target >/dev/null 2>&1 || true
    fi
    if pgrep -x ceph-mon >/dev/null || pgrep -x ceph-osd >/dev/null || pgrep -x radosgw >/dev/null; then
      echo "setup: warning: a ceph daemon is running after the install; the tests start their own on free ports" >&2
    fi
  fi
fi

# The kernel the PXE boot test boots (Debian's cloud kernel, unpacked into the gitignored .pxecache/pxe-assets/).
bash scripts/pxe-assets.sh

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<18)) { console.error("setup: Node >= 20.18.1 needed, found "+process.versions.node); process.exit(1) }'
npm ci --no-audit --no-fund
npm run build
