#!/usr/bin/env bash
# Run one command as root inside a throw-away test VM on pure cgroup v2: Debian
# 12's own kernel under qemu-system-x86_64, the host's / shared read-only over
# 9p with a tmpfs overlay as the guest's root (so every host binary, and the
# test binaries cargo built, run unchanged), no network card, and a writable
# 9p share that brings the command's output and exit status back.
#
# Usage: tests/vm/vm.sh [--systemd] [--timeout SECONDS] [--out DIR] [--console] -- COMMAND [ARG...]
#   --systemd  boot systemd as PID 1 (into podvisor-vm.target, the host's
#              enabled units masked) and run the command as a service;
#              without it a plain init (tests/vm/stage2) runs it
#   --timeout  host-side limit for the whole VM, boot included (default 600);
#              a guest that hangs or panics is killed and the run fails
#   --out      directory for command, output.log, status and console.log
#              (default: a new directory under $TMPDIR, removed on success)
#   --console  stream the guest's whole console to stderr while it runs
#              (otherwise the command's output is streamed to stdout)
# The command runs in the current directory, with CI, PATH, RUST_BACKTRACE,
# RUST_TEST_THREADS, POD_BIN_DIR and ENDURANCE passed through. Exit status:
# the command's; 124 when the VM hit the timeout; 125 when the VM ended
# without the command's status (no boot, a panic). Environment:
# PODVISOR_VM_CACHE (the fetched qemu and kernel, default
# /var/cache/podvisor-vm), PODVISOR_VM_ACCEL (auto, kvm or tcg),
# PODVISOR_VM_MEMORY (MiB, default 2048), PODVISOR_VM_NICE (default 5).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
timeout=600
out=""
mode=plain
console=false
while (($#)); do
  case $1 in
  --systemd) mode=systemd; shift ;;
  --timeout) timeout=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  --console) console=true; shift ;;
  --) shift; break ;;
  *) echo "tests/vm/vm.sh: unknown argument $1 (usage: see the head of $0)" >&2; exit 2 ;;
  esac
done
(($#)) || { echo "tests/vm/vm.sh: no command given" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "tests/vm/vm.sh: run as root" >&2; exit 2; }

cache=$("$here/fetch.sh") || { echo "tests/vm/vm.sh: cannot fetch qemu and the kernel" >&2; exit 125; }
kver=$(cat "$cache/kernel-version")
kernel=$cache/root/boot/vmlinuz-$kver
modules=$cache/root/lib/modules/$kver

# What /init needs before the 9p root can be mounted, in load order.
initramfs_modules=(
  drivers/virtio/virtio_ring drivers/virtio/virtio
  drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev
  drivers/virtio/virtio_pci fs/netfs/netfs fs/fscache/fscache
  net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p fs/overlayfs/overlay
)

# The initramfs: busybox-static, /init, /stage2, /run-command, the systemd
# units and the modules above. Built again whenever one of its inputs changes.
build_initramfs() {
  local key image staging
  key=$( (cat "$here/init" "$here/stage2" "$here/run-command" "$here"/systemd/* /bin/busybox; echo "$cache $kver ${initramfs_modules[*]}") \
    | sha256sum | cut -c1-16)
  image=$cache/initramfs-$key.cpio.gz
  if [[ ! -f $image ]]; then
    staging=$(mktemp -d)
    mkdir -p "$staging/bin" "$staging/modules"
    cp /bin/busybox "$staging/bin/busybox"
    if ldd /bin/busybox >/dev/null 2>&1; then
      echo "tests/vm/vm.sh: /bin/busybox is not static (install busybox-static)" >&2
      exit 2
    fi
    install -m 0755 "$here/init" "$staging/init"
    install -m 0755 "$here/stage2" "$here/run-command" "$staging/"
    cp -r "$here/systemd" "$staging/systemd"
    echo "$cache" >"$staging/cache-dir"
    for module in "${initramfs_modules[@]}"; do
      cp "$modules/kernel/$module.ko" "$staging/modules/"
      echo "${module##*/}" >>"$staging/modules/order"
    done
    (cd "$staging" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$image.tmp"
    mv "$image.tmp" "$image"
    find "$cache" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -name "${image##*/}" -delete
    rm -rf "$staging"
  fi
  echo "$image"
}
initramfs=$(build_initramfs)

# /dev/kvm is not enough: on a nested PVM host (kvm_pvm) a stock kernel never
# gets past its decompressor, so KVM is used only with kvm_intel or kvm_amd.
accel=${PODVISOR_VM_ACCEL:-auto}
if [[ $accel == auto ]]; then
  accel=tcg
  if [[ -w /dev/kvm && ! -d /sys/module/kvm_pvm ]] \
    && [[ -d /sys/module/kvm_intel || -d /sys/module/kvm_amd ]]; then
    accel=kvm
  fi
fi
case $accel in
kvm) accel_args=(-accel kvm -cpu host) ;;
tcg) accel_args=(-accel tcg -cpu max) ;;
*) echo "tests/vm/vm.sh: PODVISOR_VM_ACCEL=$accel (auto, kvm or tcg)" >&2; exit 2 ;;
esac

# qemu from the cache (with its libraries and firmware), or the host's own.
qemu=$cache/root/usr/bin/qemu-system-x86_64
qemu_env=(
  "LD_LIBRARY_PATH=$cache/root/usr/lib/x86_64-linux-gnu:$cache/root/lib/x86_64-linux-gnu"
  "QEMU_MODULE_DIR=$cache/root/usr/lib/x86_64-linux-gnu/qemu"
)
firmware=(-L "$cache/root/usr/share/qemu" -L "$cache/root/usr/share/seabios")
if [[ ! -x $qemu ]]; then
  qemu=$(command -v qemu-system-x86_64) \
    || { echo "tests/vm/vm.sh: no qemu-system-x86_64 in $cache or on PATH" >&2; exit 2; }
  qemu_env=()
  firmware=()
fi

keep_out=true
if [[ -z $out ]]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/podvisor-vm.XXXXXX")
  keep_out=false
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/status" "$out/status.tmp"

# The guest mounts a fresh /tmp: where the workspace lives, so that it can
# keep a workspace under /tmp (a CI clone) visible.
printf '%s\n' "$PWD" >"$out/workdir"
# The command file the guest runs with bash.
{
  echo "cd $(printf %q "$PWD") || exit 125"
  echo "export HOME=/root"
  for var in CI PATH RUST_BACKTRACE RUST_TEST_THREADS POD_BIN_DIR ENDURANCE; do
    [[ -v $var ]] && echo "export $var=$(printf %q "${!var}")"
  done
  printf 'exec'
  printf ' %q' "$@"
  echo
} >"$out/command"

cmdline="console=ttyS0 panic=-1 oops=panic loglevel=4 mitigations=off"
cmdline+=" systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all vm.mode=$mode"
if [[ $mode == systemd ]]; then
  # A crashed systemd reboots, which ends qemu (-no-reboot).
  cmdline+=" systemd.unit=podvisor-vm.target systemd.crash_reboot=1 systemd.show_status=error"
fi

qemu_args=(
  -nodefaults -no-reboot -display none -monitor none -nic none
  "${accel_args[@]}" -smp 2 -m "${PODVISOR_VM_MEMORY:-2048}"
  "${firmware[@]}"
  -kernel "$kernel" -initrd "$initramfs" -append "$cmdline"
  -serial "file:$out/console.log"
  -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
  -fsdev "local,id=results,path=$out,security_model=none,multidevs=remap"
  -device virtio-9p-pci,fsdev=results,mount_tag=results
)

started=$(date +%s)
: >"$out/console.log"
: >"$out/output.log"
# Stream the command's output (or the whole console) while the VM runs.
if $console; then
  tail -n +1 -f "$out/console.log" >&2 &
else
  tail -n +1 -f "$out/output.log" &
fi
tail_pid=$!
vm_rc=0
env "${qemu_env[@]}" timeout --kill-after=10 "$timeout" \
  nice -n "${PODVISOR_VM_NICE:-5}" "$qemu" "${qemu_args[@]}" </dev/null || vm_rc=$?
sleep 0.5
kill "$tail_pid" 2>/dev/null || true
wait "$tail_pid" 2>/dev/null || true
elapsed=$(($(date +%s) - started))

if [[ -f $out/status ]]; then
  status=$(cat "$out/status")
  echo "tests/vm/vm.sh: guest command exited $status ($accel, kernel $kver, ${elapsed}s)" >&2
else
  if ((vm_rc == 124 || vm_rc == 137)); then
    echo "tests/vm/vm.sh: the VM hit the ${timeout}s timeout and was killed" >&2
    status=124
  else
    echo "tests/vm/vm.sh: the VM ended (qemu exit $vm_rc) without the command's status" >&2
    status=125
  fi
  echo "--- last lines of the guest console ($out/console.log) ---" >&2
  tail -n 60 "$out/console.log" >&2
  keep_out=true
fi
if [[ $status != 0 ]]; then
  keep_out=true
fi
if $keep_out; then
  echo "tests/vm/vm.sh: results in $out" >&2
else
  rm -rf "$out"
fi
exit "$status"
