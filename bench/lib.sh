# Shared by the supervisor benchmarks (sourced, not run). Every process a
# script starts is remembered by PID and ended by PID at exit.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BIN:-$root/target/release}
stats="python3 $root/bench/stats.py"
for program in supervisor pause bench-stamp; do
  [[ -x $bin/$program ]] || { echo "no $bin/$program: run cargo build --release --workspace" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "run as root (namespaces, cgroups)" >&2; exit 1; }
work=$(mktemp -d /tmp/podvisor-bench.XXXXXX)
started=()

# Start a command in the background (its output to $work/<name>.out) and
# remember its pid in $last_pid.
start() {
  local name=$1
  shift
  "$@" >"$work/$name.out" 2>&1 &
  last_pid=$!
  started+=("$last_pid")
}

# Stop a started process: SIGTERM, then SIGKILL after $2 seconds (default 20).
stop() {
  local pid=$1 patience=${2:-20}
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq $((patience * 20))); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in "${started[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
  # The pods' cgroups are gone with them; their parent goes once empty.
  rmdir /sys/fs/cgroup/*/podvisor-bench 2>/dev/null || true
}
trap cleanup EXIT

# Wait until FILE has N lines starting with S (bench-stamp starts), at most
# T seconds.
wait_starts() {
  local file=$1 n=$2 t=$3
  for _ in $(seq $((t * 20))); do
    [[ -f $file ]] && (($(grep -c '^S' "$file") >= n)) && return 0
    sleep 0.05
  done
  echo "timed out waiting for $n starts in $file" >&2
  return 1
}

# `supervisor run` with its state, logs and CNI cache under $work, no CNI
# (loopback only), the pod's cgroup under podvisor-bench; more flags after
# the manifest name.
start_pod() {
  local name=$1 manifest=$2
  shift 2
  mkdir -p "$work/no-cni"
  start "$name" "$bin/supervisor" run --state-dir "$work/state" --log-dir "$work/logs" \
    --cni-cache-dir "$work/cni-cache" --cni-conf-dir "$work/no-cni" \
    --image-dir "$work/images" --cgroup-parent podvisor-bench "$@" "$manifest"
}

# Import into the benchmark's image store ($work/images) the image
# localhost/podvisor-bench/NAME:1: busybox-static with a symlink per applet,
# plus each BINARY at its host path with the shared libraries it loads
# (from ldd), so a command reads the same in and out of the image.
bench_image() {
  local name=$1 rootfs="$work/rootfs-$1" file
  shift
  install -d -m 0755 "$rootfs"/{bin,etc,dev,proc,sys} && install -d -m 1777 "$rootfs/tmp"
  install -m 0755 /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ -e $rootfs/bin/$applet ]] || ln -s busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$rootfs/etc/group"
  for file in "$@"; do
    for file in "$file" $(ldd "$file" 2>/dev/null | grep -o '/[^ ]*' || true); do
      install -D -m 0755 "$(readlink -f "$file")" "$rootfs$file"
    done
  done
  "$bin/supervisor" image import --image-dir "$work/images" --ref "localhost/podvisor-bench/$name:1" \
    "$rootfs" >/dev/null
}

# Wait until N containers of pod NAME run (status.json), at most T seconds.
wait_running() {
  local pod=$1 n=$2 t=$3 status="$work/state/default_$1/status.json"
  for _ in $(seq $((t * 10))); do
    if [[ -f $status ]] && (($(grep -c '"running"' "$status") >= n)); then
      return 0
    fi
    sleep 0.1
  done
  echo "timed out waiting for $n running containers in $pod" >&2
  return 1
}
