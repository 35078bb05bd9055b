#!/usr/bin/env bash
# Make the example pod's image offline: a root file system of the host's
# busybox-static, imported into the image store as a one-layer image (as
# `docker import` does) named localhost/podvisor/busybox:static. It is
# tagged, so `supervisor run` (pull policy IfNotPresent) finds it stored
# and contacts no registry.
#
#   examples/busybox-image.sh && target/release/supervisor run examples/pod.yaml
#
# As root (the import keeps the files' owners). The image holds /bin/busybox
# with a symlink per applet in /bin, /etc/passwd and /etc/group with root and
# nobody (65534), /tmp (1777), /root, /var/log and the mount points /dev,
# /proc, /sys.
#
# Usage: examples/busybox-image.sh [REF]   (default localhost/podvisor/busybox:static)
# Environment: SUPERVISOR, the supervisor binary (default target/release/
# supervisor of this repository); SUPERVISOR_IMAGE_DIR, the image store
# (default /var/lib/supervisor/images); BUSYBOX (default /bin/busybox).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ref=${1:-localhost/podvisor/busybox:static}
supervisor=${SUPERVISOR:-$repo/target/release/supervisor}
busybox=${BUSYBOX:-/bin/busybox}

die() {
  echo "examples/busybox-image.sh: $*" >&2
  exit 1
}

[[ -x $supervisor ]] || die "$supervisor is missing: run cargo build --release --workspace"
[[ -x $busybox ]] || die "$busybox is missing: apt-get install busybox-static"
# ldd fails on a static binary, saying so.
[[ $(ldd "$busybox" 2>&1 || true) =~ "statically linked"|"not a dynamic executable" ]] \
  || die "$busybox is not static: apt-get install busybox-static"

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
# mktemp made it 0700: the image's / must be open to every user.
chmod 0755 "$rootfs"
install -d -m 0755 "$rootfs"/{bin,dev,etc,var,var/log}
install -d -m 0555 "$rootfs"/{proc,sys}
install -d -m 0700 "$rootfs/root"
install -d -m 1777 "$rootfs/tmp"
install -m 0755 "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
done
printf '%s\n' "root:x:0:0:root:/root:/bin/sh" "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" \
  >"$rootfs/etc/passwd"
printf '%s\n' "root:x:0:" "nobody:x:65534:" >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"

"$supervisor" image import --ref "$ref" "$rootfs"
