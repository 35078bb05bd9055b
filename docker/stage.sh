#!/usr/bin/env bash
# Stage what the `supervisor` image holds besides the binaries cargo built
# (pause and supervisor-init, copied by the Dockerfile), into the Docker
# build context (docker/context/, ignored by git).
#
#   cargo build --release --workspace
#   docker/stage.sh
#   docker build --target supervisor -t podvisor/supervisor .
#   docker run --rm --privileged podvisor/supervisor
#
# The image is FROM scratch: nothing is pulled and nothing is compiled in the
# build. Everything comes from this repository and from Debian packages:
#
#   docker/context/rootfs/                 copied to / of the image
#     usr/local/bin/supervisor             this repository, built static here
#     usr/local/bin/supervisor-{image,pull}  its helpers, built static with it
#                                          (glibc static-pie, crt-static)
#     bin/busybox, bin/sh, bin/ps, ...     busybox-static (links to busybox)
#     opt/cni/bin/{bridge,host-local,loopback,portmap}
#                                          containernetworking-plugins
#     lib/..., lib64/ld-linux-x86-64.so.2  the glibc files those plugins
#                                          load, as `ldd` names them
#     var/lib/supervisor/images/           the image store, holding the pod's
#                                          image localhost/podvisor/busybox:static
#                                          (examples/busybox-image.sh, imported
#                                          with this supervisor's `image import`)
#     etc/supervisor/pod.yaml              docker/pod.yaml
#     etc/cni/net.d/10-podvisor.conflist   docker/10-podvisor.conflist
#     tmp/                                 mode 1777
#
# A package that is installed is read from the file system; one that is not
# is fetched with `apt-get download` (no root needed) and unpacked in a
# temporary directory. The staged tree is rebuilt from scratch on each run.
#
# Usage: docker/stage.sh [CONTEXT_DIR]   (default: docker/context next to
# this script). The supervisor is built static with cargo into
# target/static/ (a target dir of its own, so it never waits on another
# build); SUPERVISOR=PATH uses that binary instead, which must be static.
# docker/stage.sh --build-supervisor only builds it and prints its path
# (the test VM builds it on the host, then stages in the guest).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
build_only=false
if [[ ${1:-} == --build-supervisor ]]; then
  build_only=true
  shift
fi
context=${1:-$here/context}
supervisor=${SUPERVISOR:-}
cni_plugins=(bridge host-local loopback portmap)
# Applets linked in /bin for `docker exec C sh` and friends; the manifest
# itself calls /bin/busybox explicitly.
applets=(sh cat echo grep head ip kill ls mkdir ps rm sleep tail wget)

die() {
  echo "docker/stage.sh: $*" >&2
  exit 1
}

if [[ -z $supervisor ]]; then
  # crt-static for an explicit --target: the binary is static while the
  # build's own proc-macros stay ordinary host libraries.
  host=$(rustc -vV | sed -n 's/^host: //p')
  echo "docker/stage.sh: building a static supervisor for $host" >&2
  (cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" "${CARGO:-cargo}" build --release --locked \
      -p supervisor --target "$host" --target-dir "$repo/target/static" >&2) \
    || die "cargo build of the static supervisor failed"
  supervisor=$repo/target/static/$host/release/supervisor
fi
[[ -x $supervisor ]] || die "$supervisor is missing"
ldd "$supervisor" 2>&1 | grep -Eq "statically linked|not a dynamic executable" \
  || die "$supervisor is not a static binary"
if $build_only; then
  echo "$supervisor"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# package_file PACKAGE PATH: print where PATH of PACKAGE can be read, from
# the installed package or from its downloaded .deb.
package_file() {
  local package=$1 path=$2
  if [[ $(dpkg-query -W -f='${Status}' "$package" 2>/dev/null) == "install ok installed" ]]; then
    [[ -e $path ]] || die "$path is missing although $package is installed"
    echo "$path"
    return
  fi
  local root=$work/deb-$package
  if [[ ! -d $root ]]; then
    echo "docker/stage.sh: $package is not installed; fetching it with apt-get download" >&2
    # Download as the calling user: apt's _apt sandbox cannot enter the
    # private temporary directory.
    (cd "$work" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$package" >&2) \
      || die "apt-get download $package failed"
    mkdir -p "$root"
    dpkg-deb -x "$work/${package}"_*.deb "$root"
  fi
  [[ -e $root$path ]] || die "$package has no $path"
  echo "$root$path"
}

# copy_libraries ELF: copy the shared libraries ELF loads (and the loader)
# to the same paths under the staged root. A static binary needs none.
copy_libraries() {
  local elf=$1 line lib
  if ! ldd "$elf" >"$work/ldd" 2>&1; then
    grep -q "not a dynamic executable" "$work/ldd" && return
    die "ldd $elf: $(cat "$work/ldd")"
  fi
  while read -r line; do
    case $line in
      *"=> not found"*) die "ldd $elf: $line" ;;
      *"=> /"*) lib=${line#*=> } ;;
      /*) lib=$line ;;
      *) continue ;; # linux-vdso.so.1 has no file
    esac
    lib=${lib%% (*}
    install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  done <"$work/ldd"
}

rootfs=$context/rootfs
rm -rf "$rootfs"
mkdir -p "$rootfs"/{bin,opt/cni/bin,etc/supervisor,etc/cni/net.d}
install -d -m 1777 "$rootfs/tmp"

install -m 0755 "$(package_file busybox-static /bin/busybox)" "$rootfs/bin/busybox"
for applet in "${applets[@]}"; do
  ln -s busybox "$rootfs/bin/$applet"
done

for plugin in "${cni_plugins[@]}"; do
  file=$(package_file containernetworking-plugins "/usr/lib/cni/$plugin")
  install -m 0755 "$file" "$rootfs/opt/cni/bin/$plugin"
  copy_libraries "$file"
done
install -D -m 0755 "$supervisor" "$rootfs/usr/local/bin/supervisor"
# Its helpers (image commands, registry client), built static beside it.
for helper in supervisor-image supervisor-pull; do
  if [[ -x $(dirname "$supervisor")/$helper ]]; then
    install -m 0755 "$(dirname "$supervisor")/$helper" "$rootfs/usr/local/bin/$helper"
  else
    echo "docker/stage.sh: no $helper beside $supervisor: the image has no $helper" >&2
  fi
done

# The pod's image, in the store the supervisor reads by default.
SUPERVISOR=$supervisor SUPERVISOR_IMAGE_DIR=$rootfs/var/lib/supervisor/images \
  BUSYBOX=$(package_file busybox-static /bin/busybox) \
  "$repo/examples/busybox-image.sh" >&2 || die "importing the pod's image failed"

install -m 0644 "$here/pod.yaml" "$rootfs/etc/supervisor/pod.yaml"
install -m 0644 "$here/10-podvisor.conflist" "$rootfs/etc/cni/net.d/10-podvisor.conflist"

echo "staged $(find "$rootfs" -type f -o -type l | wc -l) files in $rootfs" >&2
