#!/usr/bin/env bash
# Container images, side by side in one run. The image is built here, with
# no network: LAYERS gzip layers FROM scratch (busybox-static, many small
# text files, a few large incompressible ones, a whiteout), about 180 MB
# unpacked, served by Debian's docker-registry on 127.0.0.1 (a config and a
# storage dir of its own, started and stopped by PID), seeded with
# `skopeo copy`. Parts (each independent; `all` runs them in this order):
#   pull   pull + unpack from a cold local store, RUNS runs of each tool:
#          ours (supervisor-pull), containerd (`ctr image pull`, which
#          unpacks into the overlayfs snapshotter; containerd started here
#          with its own root, state and socket), `skopeo copy` + `umoci
#          unpack`, and `podman pull` when podman is installed, taking
#          turns. Median wall time, CPU time (user + system) and peak RSS
#          (GNU time; for ctr the client's plus the containerd daemon's,
#          as the daemon does the unpacking), the store's size on disk,
#          and the ratios to ours.
#   start  `supervisor run` to Running (status.json), the image already
#          stored (`supervisor image load`), median of START_RUNS.
#   share  SHARE_PODS pods (supervisors) of the one image: the store's size
#          and layer count before and after, the distinct overlay lower
#          layer sets of their containers.
#   pss    the supervisor's Pss with a pod of PSS_CONTAINERS containers of
#          the image (goal: under 2 MB).
# Usage (root): bench/images.sh [pull|start|share|pss|all]; RUNS=3
# START_RUNS=5 SHARE_PODS=20 PSS_CONTAINERS=100 (KEEP=S keeps that
# supervisor S seconds longer, to look at it); TOOLS="ours ctr" to pull
# with some only. Only loopback traffic.
# Needs: cargo build --release --workspace; apt install busybox-static
# docker-registry skopeo umoci containerd time (podman optional).
source "$(dirname "$0")/lib.sh"

part=${1:-all}
runs=${RUNS:-3}
start_runs=${START_RUNS:-5}
share_pods=${SHARE_PODS:-20}
pss_containers=${PSS_CONTAINERS:-100}
case $part in pull | start | share | pss | all) ;; *)
  echo "usage: $0 [pull|start|share|pss|all]" >&2
  exit 2
  ;;
esac
for tool in docker-registry skopeo /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "no $tool: run .ci/install" >&2; exit 1; }
done
pull_bin=$bin/supervisor-pull
have_ours() { [[ -x $pull_bin ]]; }
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
mb() { python3 -c "print('%.1f' % ($1 / 1024))"; } # kB -> MB
ratio() { python3 -c "print('%.2fx' % ($1 / $2))"; }
disk_mb() { du -sxm "$1" | cut -f1; }

# --- the image: an OCI layout at $work/layout, tag 1.
build_image() {
  python3 - "$work/layout" "${LAYERS:-10}" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile

layout, layers = sys.argv[1], int(sys.argv[2])
rng = random.Random(13)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(2, 9)))
         for _ in range(4000)]
text = ' '.join(rng.choice(words) for _ in range(200000)).encode()  # ~1 MB, compressible


def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    os.makedirs(f'{layout}/blobs/sha256', exist_ok=True)
    with open(f'{layout}/blobs/sha256/{digest}', 'wb') as f:
        f.write(data)
    return {'digest': 'sha256:' + digest, 'size': len(data)}


def layer(entries):
    """entries: (name, kind, payload); returns (descriptor, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if kind == 'dir':
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == 'symlink':
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
            else:
                info.size, info.mode = len(payload), kind
                tar.addfile(info, io.BytesIO(payload))
    data = raw.getvalue()
    diff_id = 'sha256:' + hashlib.sha256(data).hexdigest()
    descriptor = blob(gzip.compress(data, compresslevel=6, mtime=0))
    descriptor['mediaType'] = 'application/vnd.oci.image.layer.v1.tar+gzip'
    unpacked.append(len(data))
    return descriptor, diff_id


unpacked = []


def small_files(top, count):
    entries = [(top, 'dir', None)]
    for d in range(count // 100):
        entries.append((f'{top}/d{d:02}', 'dir', None))
        for i in range(100):
            start = rng.randrange(len(text) - 16384)
            body = f'{top} file {d}/{i}\n'.encode() + text[start:start + rng.randint(256, 16384)]
            entries.append((f'{top}/d{d:02}/f{i:03}.txt', 0o644, body))
    return entries


with open('/bin/busybox', 'rb') as f:
    busybox = f.read()
plan = [[('bin', 'dir', None), ('bin/busybox', 0o755, busybox), ('bin/sh', 'symlink', 'busybox'),
         ('bin/sleep', 'symlink', 'busybox'), ('etc', 'dir', None),
         ('etc/passwd', 0o644, b'root:x:0:0:root:/:/bin/sh\n'), ('etc/group', 0o644, b'root:x:0:\n'),
         ('usr', 'dir', None), ('usr/share', 'dir', None)]]
big_sizes = [24, 32, 40]  # MB of random bytes, one file each
small_layers = max(1, layers - 2 - len(big_sizes))
for n in range(small_layers):
    plan.append([('usr', 'dir', None), ('usr/share', 'dir', None)] + small_files(f'usr/share/s{n}', 2000))
for n, size in enumerate(big_sizes):
    plan.append([('opt', 'dir', None), (f'opt/blob{n}.bin', 0o644, os.urandom(size << 20))])
# The last layer deletes a directory and a file of the first small layer.
plan.append([('usr', 'dir', None), ('usr/share', 'dir', None), ('usr/share/s0', 'dir', None),
             ('usr/share/s0/.wh.d00', 0o644, b''), ('usr/share/s0/d01', 'dir', None),
             ('usr/share/s0/d01/.wh.f000.txt', 0o644, b''), ('etc/motd', 0o644, b'bench\n')])
descriptors, diff_ids = zip(*(layer(entries) for entries in plan))
config = blob(json.dumps({
    'architecture': 'amd64', 'os': 'linux',
    'config': {'Cmd': ['/bin/sleep', 'infinity'], 'Env': ['PATH=/bin'], 'WorkingDir': '/'},
    'rootfs': {'type': 'layers', 'diff_ids': list(diff_ids)},
}).encode())
config['mediaType'] = 'application/vnd.oci.image.config.v1+json'
manifest = blob(json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                            'config': config, 'layers': list(descriptors)}).encode())
manifest['mediaType'] = 'application/vnd.oci.image.manifest.v1+json'
manifest['annotations'] = {'org.opencontainers.image.ref.name': '1'}
with open(f'{layout}/index.json', 'w') as f:
    json.dump({'schemaVersion': 2, 'manifests': [manifest]}, f)
with open(f'{layout}/oci-layout', 'w') as f:
    json.dump({'imageLayoutVersion': '1.0.0'}, f)
print(len(plan), sum(d['size'] for d in descriptors), sum(unpacked))
PY
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_listen() { # HOST:PORT, 10 s
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  return 1
}
wait_file() { # PATH, 30 s
  for _ in $(seq 600); do [[ -e $1 ]] && return 0; sleep 0.05; done
  echo "no $1" >&2
  return 1
}

# The registry on 127.0.0.1, seeded with the image; sets $image.
serve_image() {
  local port
  read -r layer_count compressed unpacked < <(build_image)
  port=$(free_port)
  cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YAML
  start registry docker-registry serve "$work/registry.yml"
  wait_listen "127.0.0.1:$port"
  image=127.0.0.1:$port/bench/multi:1
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$work/layout:1" "docker://$image"
  echo "image $image: $layer_count gzip layers, $(mb $((compressed / 1024))) MB compressed," \
    "$(mb $((unpacked / 1024))) MB of tar; $(nproc) CPUs, $(uname -r)"
}

# timed NAME CMD...: run CMD under GNU time; sets $seconds (wall), $cpu
# (user + system s) and $peak_kb.
timed() {
  local name=$1 user system
  shift
  if ! /usr/bin/time -f '%e %M %U %S' -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1; then
    echo "$name failed:" >&2
    cat "$work/$name.log" >&2
    exit 1
  fi
  read -r seconds peak_kb user system <"$work/$name.time"
  cpu=$(python3 -c "print('%.2f' % ($user + $system))")
}

# The user + system CPU ticks process PID has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# pull_<tool> DIR: one pull + unpack into the empty DIR; sets $seconds,
# $cpu, $peak_kb and $disk (MB).
pull_ours() {
  timed ours "$pull_bin" --image-dir "$1/store" --progress none "$image"
  disk=$(disk_mb "$1/store")
}

pull_ctr() {
  local dir=$1 daemon hwm ticks
  mkdir -p "$dir/opt"
  cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
TOML
  start containerd containerd --config "$dir/config.toml"
  daemon=$last_pid
  wait_file "$dir/containerd.sock"
  ticks=$(cpu_ticks "$daemon")
  timed ctr ctr -a "$dir/containerd.sock" image pull --plain-http "$image"
  ticks=$(($(cpu_ticks "$daemon") - ticks))
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$daemon/status")
  echo "    ctr: client $peak_kb kB, $cpu s CPU + containerd VmHWM $hwm kB, $ticks ticks" >&2
  peak_kb=$((peak_kb + hwm))
  cpu=$(python3 -c "print('%.2f' % ($cpu + $ticks / $(getconf CLK_TCK)))")
  stop "$daemon"
  disk=$(disk_mb "$dir/root")
}

pull_skopeo_umoci() {
  local dir=$1
  timed skopeo-umoci sh -c 'skopeo --insecure-policy copy --quiet --src-tls-verify=false "docker://$1" "oci:$2/oci:1" &&
    umoci unpack --image "$2/oci:1" "$2/bundle"' sh "$image" "$dir"
  disk=$(disk_mb "$dir")
}

pull_podman() {
  local dir=$1
  timed podman podman --root "$dir/root" --runroot "$dir/run" --tmpdir "$dir/tmp" --storage-driver overlay \
    --cgroup-manager cgroupfs --events-backend none pull --quiet --tls-verify=false "$image"
  disk=$(disk_mb "$dir/root")
}

part_pull() {
  local tool run dir
  declare -A all_s all_cpu all_kb all_disk label=(
    [ours]="ours (supervisor-pull)" [ctr]="containerd (ctr pull)"
    [skopeo_umoci]="skopeo copy + umoci unpack" [podman]="podman pull")
  if [[ -n ${TOOLS:-} ]]; then
    read -r -a tools <<<"${TOOLS//skopeo-umoci/skopeo_umoci}"
  else
    tools=()
    if have_ours; then tools+=(ours); else echo "no $pull_bin yet: ours skipped" >&2; fi
    if command -v containerd >/dev/null && command -v ctr >/dev/null; then tools+=(ctr); else
      echo "containerd/ctr not installed: skipped" >&2
    fi
    if command -v umoci >/dev/null; then tools+=(skopeo_umoci); else echo "umoci not installed: skipped" >&2; fi
    if command -v podman >/dev/null; then tools+=(podman); else echo "podman not installed: skipped" >&2; fi
  fi
  echo
  echo "pull + unpack of $image from a cold local store, $runs runs each, the tools taking turns"
  for run in $(seq "$runs"); do
    for tool in "${tools[@]}"; do
      dir=$work/pull-$tool-$run
      mkdir -p "$dir"
      sync # the previous run's writes are not this one's
      "pull_$tool" "$dir"
      all_s[$tool]+=" $seconds" all_cpu[$tool]+=" $cpu" all_kb[$tool]+=" $peak_kb" all_disk[$tool]+=" $disk"
      rm -rf "$dir"
    done
  done
  declare -A median_s median_cpu median_kb
  for tool in "${tools[@]}"; do
    # shellcheck disable=SC2086 # the lists split on purpose
    median_s[$tool]=$(median ${all_s[$tool]}) median_cpu[$tool]=$(median ${all_cpu[$tool]}) \
      median_kb[$tool]=$(median ${all_kb[$tool]})
    echo "  $tool: wall${all_s[$tool]} s; CPU${all_cpu[$tool]} s; peak${all_kb[$tool]} kB" >&2
  done
  local base=${tools[0]}
  [[ -n ${median_s[ours]:-} ]] && base=ours
  row() { printf '%-28s %7s %7s %8s %8s %10s %10s %10s\n' "$@"; }
  row tool "wall s" "CPU s" "peak MB" "disk MB" "wall/$base" "CPU/$base" "peak/$base"
  for tool in "${tools[@]}"; do
    # shellcheck disable=SC2086
    row "${label[$tool]}" "${median_s[$tool]}" "${median_cpu[$tool]}" "$(mb "${median_kb[$tool]}")" \
      "$(median ${all_disk[$tool]})" "$(ratio "${median_s[$tool]}" "${median_s[$base]}")" \
      "$(ratio "${median_cpu[$tool]}" "${median_cpu[$base]}")" "$(ratio "${median_kb[$tool]}" "${median_kb[$base]}")"
  done
  echo "(medians; CPU = user + system, for ctr the client's plus containerd's; peak = max RSS,"
  echo " for ctr the client's plus containerd's VmHWM; disk = the store after the pull)"
}

# --- running the image: pods under $work/state, the store at $work/images.
images=$work/images

# Store the image in $images once (`supervisor image load` of the layout,
# named as in the registry: the pods pull nothing).
store_image() {
  [[ -d $images/layers ]] && return 0
  timed load "$bin/supervisor" image load --image-dir "$images" --ref "$image" "$work/layout"
  echo "stored with supervisor image load: $seconds s, peak $(mb "$peak_kb") MB"
}

# A pod NAME of COUNT containers running the image's own command.
image_pod() {
  local name=$1 count=$2 i
  printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n' "$name"
  for i in $(seq "$count"); do
    printf '  - {name: c-%d, image: "%s", imagePullPolicy: IfNotPresent}\n' "$i" "$image"
  done
}

# Wait until pod NAME (its supervisor PID) has a running container, polling
# status.json every 10 ms, at most 30 s.
wait_first_running() {
  local status=$work/state/default_$1/status.json
  for _ in $(seq 3000); do
    [[ -f $status ]] && grep -q '"running"' "$status" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.01
  done
  echo "$1 did not run; its output:" >&2
  cat "$work/$1.out" >&2
  return 1
}

part_start() {
  local run name t0 pid
  local -a all_s
  store_image
  echo
  echo "supervisor run to Running (status.json, polled every 10 ms), the image stored, $start_runs runs"
  for run in $(seq "$start_runs"); do
    name=start-$run
    image_pod "$name" 1 >"$work/$name.yaml"
    sync
    t0=$(now)
    start_pod "$name" "$work/$name.yaml"
    pid=$last_pid
    wait_first_running "$name" "$pid"
    all_s+=("$(python3 -c "print('%.3f' % ($(now) - $t0))")")
    stop "$pid"
  done
  echo "  runs: ${all_s[*]} s" >&2
  printf '%-28s %9s\n' "" "median s"
  printf '%-28s %9s\n' "run to Running" "$(median "${all_s[@]}")"
}

# The lowerdir= of the root overlay of process PID (its mount namespace).
lowerdir_of() {
  awk '$5 == "/" { for (i = 7; i <= NF; i++) if ($i == "-") break;
    if ($(i + 1) == "overlay") { n = split($(i + 3), o, ","); for (j = 1; j <= n; j++) if (o[j] ~ /^lowerdir=/) print o[j] } }' \
    "/proc/$1/mountinfo"
}

part_share() {
  local i before_kb before_layers after_kb after_layers child
  local -a supervisors
  store_image
  before_kb=$(du -sxk "$images" | cut -f1)
  before_layers=$(find "$images/layers" -mindepth 1 -maxdepth 1 -type d | wc -l)
  for i in $(seq "$share_pods"); do
    image_pod "share-$i" 1 >"$work/share-$i.yaml"
    start_pod "share-$i" "$work/share-$i.yaml"
    supervisors+=("$last_pid")
  done
  for i in $(seq "$share_pods"); do wait_running "share-$i" 1 120; done
  after_kb=$(du -sxk "$images" | cut -f1)
  after_layers=$(find "$images/layers" -mindepth 1 -maxdepth 1 -type d | wc -l)
  for i in "${supervisors[@]}"; do
    for child in $(cat /proc/"$i"/task/*/children); do lowerdir_of "$child"; done
  done >"$work/lowerdirs"
  echo
  echo "$share_pods pods (one supervisor each) of the image, one store"
  printf '%-28s %12s %8s\n' "" "store (MB)" layers
  printf '%-28s %12s %8s\n' "before (image stored)" "$(mb "$before_kb")" "$before_layers"
  printf '%-28s %12s %8s\n' "with $share_pods pods running" "$(mb "$after_kb")" "$after_layers"
  printf '%-28s %12s\n' "state dirs (writable layers)" "$(mb "$(du -sxk "$work/state" | cut -f1)")"
  # Each container's lower layers: how many root overlays, how many
  # distinct lowerdir= options, how many distinct layer directories, and
  # how many of those are the store's.
  tr ':' '\n' <"$work/lowerdirs" | sed 's/^lowerdir=//' | sort -u >"$work/lower-paths"
  echo "root overlays of the containers: $(wc -l <"$work/lowerdirs"), distinct lowerdir options:" \
    "$(sort -u "$work/lowerdirs" | wc -l), distinct lower directories: $(wc -l <"$work/lower-paths")," \
    "of them the store's layers: $(grep -c "^$images/layers/[0-9a-f]*/fs$" "$work/lower-paths" || true)"
  for i in "${supervisors[@]}"; do stop "$i"; done
}

part_pss() {
  local pid
  store_image
  image_pod pss "$pss_containers" >"$work/pss.yaml"
  start_pod pss "$work/pss.yaml"
  pid=$last_pid
  wait_running pss "$pss_containers" 300
  sleep 11 # idle: the supervisor drops its idle pages at most every 10 s
  echo
  echo "the supervisor with a pod of $pss_containers containers of the image (goal: under 2048 kB)"
  printf '%-28s %9s %5s %8s\n' "" "Pss (kB)" fds threads
  printf '%-28s %9s %5s %8s\n' "supervisor run" "$($stats pss "$pid")" \
    "$(ls /proc/"$pid"/fd | wc -l)" "$(ls /proc/"$pid"/task | wc -l)"
  [[ -n ${KEEP:-} ]] && { echo "supervisor $pid kept for $KEEP s"; sleep "$KEEP"; }
  stop "$pid"
}

serve_image
case $part in
  all) for p in pull start share pss; do "part_$p"; done ;;
  *) "part_$part" ;;
esac
