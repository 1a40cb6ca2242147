#!/usr/bin/env bash
# The Linux kernel the PXE boot test (test/e2e/pxe-boot.test.ts) boots in QEMU: Debian's cloud kernel (small, serial
# console and ACPI power-off built in), taken from the package the linux-image-cloud-amd64 metapackage depends on,
# downloaded with apt-get download and unpacked with dpkg -x (nothing is installed on the host).
#   usage: scripts/pxe-assets.sh [dir]      (default .pxecache/pxe-assets, gitignored)
# Writes <dir>/vmlinuz and <dir>/kernel-package. Idempotent and offline once cached: a cached kernel is kept, so every
# later run boots the same bytes; delete the directory to take Debian's current one.
set -euo pipefail
# A directory given is taken relative to the caller's working directory; the default, to the repository.
[ -z "${1:-}" ] || dir="$(realpath -m -- "$1")"
cd "$(dirname "$0")/.."
dir="${dir:-.pxecache/pxe-assets}"

if [ -s "$dir/vmlinuz" ] && [ -s "$dir/kernel-package" ]; then
  exit 0
fi
for tool in apt-cache apt-get dpkg; do
  command -v "$tool" >/dev/null 2>&1 || { echo "pxe-assets: $tool not found (a Debian host is needed)" >&2; exit 1; }
done

# The versioned package (linux-image-6.1.0-NN-cloud-amd64) the metapackage's candidate depends on.
resolve() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }'
}
work="$(mktemp -d "${TMPDIR:-/tmp}/pxecache-pxe-assets.XXXXXX")"
trap 'rm -rf "$work"' EXIT

pkg="$(resolve || true)"
# Stale or absent package lists (a fresh container, an old mirror snapshot): refresh once, as root only.
if [ -z "$pkg" ] || ! (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "pxe-assets: cannot download ${pkg:-linux-image-cloud-amd64}; run as root (apt-get update may be needed)" >&2
    exit 1
  fi
  echo "pxe-assets: refreshing the package lists" >&2
  apt-get update -qq
  pkg="$(resolve)"
  [ -n "$pkg" ] || { echo "pxe-assets: linux-image-cloud-amd64 has no linux-image-*-cloud-amd64 dependency" >&2; exit 1; }
  (cd "$work" && apt-get download -q "$pkg" >/dev/null)
fi

deb="$(find "$work" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)"
[ -n "$deb" ] || { echo "pxe-assets: apt-get download $pkg left no .deb" >&2; exit 1; }
dpkg -x "$deb" "$work/x"
kernel="$(find "$work/x/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)"
[ -n "$kernel" ] || { echo "pxe-assets: $deb holds no boot/vmlinuz-*" >&2; exit 1; }

# Into place with rename, so an interrupted run never leaves a partial kernel that the check above would accept.
mkdir -p "$dir"
cp "$kernel" "$dir/.vmlinuz.tmp"
mv -f "$dir/.vmlinuz.tmp" "$dir/vmlinuz"
basename "$deb" >"$dir/.kernel-package.tmp"
mv -f "$dir/.kernel-package.tmp" "$dir/kernel-package"
echo "pxe-assets: $(cat "$dir/kernel-package") -> $dir/vmlinuz" >&2
