#!/usr/bin/env bash
# Fetch what the test VM needs into a cache directory, without installing
# anything into the host: qemu-system-x86 with the libraries and firmware the
# host lacks, and Debian 12's own kernel (linux-image-amd64). Packages are
# taken with `apt-get download` and unpacked with `dpkg -x`, because
# `apt-get install qemu-system-x86` would remove the host's backported
# qemu-utils. Idempotent: a complete cache is left as it is.
#
# Usage: tests/vm/fetch.sh [CACHE_DIR]   (default $PODVISOR_VM_CACHE or
# /var/cache/podvisor-vm). Prints nothing on success but the cache dir.
set -euo pipefail

cache=${1:-${PODVISOR_VM_CACHE:-/var/cache/podvisor-vm}}
stamp=$cache/fetched

if [[ -f $stamp ]]; then
  echo "$cache"
  exit 0
fi

die() {
  echo "tests/vm/fetch.sh: $*" >&2
  exit 1
}
command -v apt-get >/dev/null || die "needs apt-get (a Debian 12 host)"
command -v dpkg >/dev/null || die "needs dpkg"

mkdir -p "$cache/debs"
rm -rf "$cache/root"
mkdir -p "$cache/root"

# The packages qemu-system-x86 would pull in that the host does not have yet
# (upgrades of installed ones, shown with their old version in brackets, are
# left alone: the host's libraries serve).
not_installed_closure() {
  apt-get -s install --no-install-recommends "$@" 2>/dev/null \
    | awk '/^Inst/ && $3 !~ /^\[/ {print $2}'
}
qemu_packages=$(not_installed_closure qemu-system-x86)
if [[ -z $qemu_packages ]] && ! command -v qemu-system-x86_64 >/dev/null; then
  apt-get update -qq
  qemu_packages=$(not_installed_closure qemu-system-x86)
fi
# The versioned kernel package behind the linux-image-amd64 metapackage.
kernel_package=$(apt-cache depends linux-image-amd64 2>/dev/null \
  | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [[ -z $kernel_package ]]; then
  apt-get update -qq
  kernel_package=$(apt-cache depends linux-image-amd64 \
    | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[[ -n $kernel_package ]] || die "apt knows no linux-image-amd64"

# apt's sandbox user cannot write into a root-owned cache: download as root.
(cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root \
  $qemu_packages "$kernel_package" >/dev/null)
for deb in "$cache"/debs/*.deb; do
  dpkg -x "$deb" "$cache/root"
done

kernel=$(find "$cache/root/boot" -name 'vmlinuz-*' | sort | tail -n1)
[[ -n $kernel ]] || die "no kernel in $kernel_package"
version=${kernel##*/vmlinuz-}
# No kmod on the host: busybox's depmod builds modules.dep for the guest's
# busybox modprobe (the kernel's module loader in the guest).
busybox depmod -b "$cache/root" "$version"

printf '%s\n' "$version" >"$cache/kernel-version"
touch "$stamp"
echo "$cache"
