#!/usr/bin/env bash
# Restart latency, side by side in one run: `supervisor run` (back-off 0)
# against a bash loop, runit (runsv), s6 (s6-supervise) and supervisord,
# all restarting the same program, bench-stamp, which stamps its start and
# exit with CLOCK_MONOTONIC: the latency is one instance's exit to the next
# one's start. Two cases:
#   crash loop   the program exits at once (RESTARTS restarts for the
#                supervisor and bash, REF_RESTARTS for the references,
#                which wait about 1 s between restarts);
#   after 1.2 s  the program lives 1.2 s (runit waits only when its child
#                lived less than 1 s) (REF_RESTARTS restarts for all).
# For the supervisor also the spawn time, from its decision to start an
# instance to that instance's exec (`supervisor run --trace`).
# Usage (root): bench/restart.sh; RESTARTS=200 REF_RESTARTS=10 by default,
# TOOLS="supervisor runit" to run some only. Every sample goes to
# $RESULTS/restart-samples.csv (tool,case,latency_ms; RESULTS defaults to
# target/bench-results) and their CDFs to CDF_SVG (default
# $RESULTS/restart-cdf.svg), drawn by bench/cdf.py.
# Needs: cargo build --release --workspace; apt install runit s6 supervisor.
source "$(dirname "$0")/lib.sh"

restarts=${RESTARTS:-200}
ref_restarts=${REF_RESTARTS:-10}
stamp=$bin/bench-stamp
results=${RESULTS:-$root/target/bench-results}
cdf_svg=${CDF_SVG:-$results/restart-cdf.svg}
samples=$results/restart-samples.csv
mkdir -p "$results" "$(dirname "$cdf_svg")"
echo "tool,case,latency_ms" >"$samples"
bench_image stamp "$stamp" /usr/bin/sleep

# A pod whose one container is bench-stamp with these arguments, writing
# to $dir/stamps through a hostPath volume.
pod_manifest() {
  local dir=$1 lifetime=$2
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: restart-bench
spec:
  restartPolicy: Always
  containers:
  - name: stamp
    image: localhost/podvisor-bench/stamp:1
    command: ["$stamp", "/out/stamps", "1", "$lifetime"]
    volumeMounts:
    - {name: out, mountPath: /out}
  volumes:
  - name: out
    hostPath: {path: $dir}
YAML
}

# run_<tool> DIR COUNT LIFETIME_MS: restart bench-stamp until DIR/stamps
# has COUNT+1 starts.
run_supervisor() {
  local dir=$1 count=$2 lifetime=$3
  pod_manifest "$dir" "$lifetime" >"$dir/pod.yaml"
  start_pod supervisor "$dir/pod.yaml" --backoff-initial 0 --backoff-max 0 --trace "$dir/trace"
  local pid=$last_pid
  wait_starts "$dir/stamps" $((count + 1)) $((count * (lifetime + 100) / 1000 + 60))
  stop "$pid"
}

run_bash() {
  local dir=$1 count=$2 lifetime=$3
  start bash bash -c "while :; do '$stamp' '$dir/stamps' 1 $lifetime; done"
  local pid=$last_pid
  wait_starts "$dir/stamps" $((count + 1)) $((count * (lifetime + 100) / 1000 + 60))
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
}

# runit and s6 run ./run with no arguments: a symlink to bench-stamp, its
# arguments in the environment (no shell in between).
service_dir() {
  local dir=$1
  mkdir -p "$dir/service"
  ln -sf "$stamp" "$dir/service/run"
  echo "$dir/service"
}

run_runit() {
  local dir=$1 count=$2 lifetime=$3 service
  service=$(service_dir "$dir")
  BENCH_STAMP_FILE=$dir/stamps BENCH_LIFETIME_MS=$lifetime start runsv runsv "$service"
  local pid=$last_pid
  wait_starts "$dir/stamps" $((count + 1)) $((count * (lifetime + 1500) / 1000 + 60))
  stop "$pid" # runsv takes SIGTERM as `sv exit`
}

run_s6() {
  local dir=$1 count=$2 lifetime=$3 service
  service=$(service_dir "$dir")
  BENCH_STAMP_FILE=$dir/stamps BENCH_LIFETIME_MS=$lifetime start s6 s6-supervise "$service"
  local pid=$last_pid
  wait_starts "$dir/stamps" $((count + 1)) $((count * (lifetime + 1500) / 1000 + 60))
  stop "$pid" # s6-supervise takes SIGTERM as `s6-svc -xd`
}

run_supervisord() {
  local dir=$1 count=$2 lifetime=$3
  cat >"$dir/supervisord.conf" <<CONF
[supervisord]
nodaemon=true
logfile=$dir/supervisord.log
pidfile=$dir/supervisord.pid
[program:stamp]
command=$stamp $dir/stamps 1 $lifetime
autorestart=true
startsecs=0
startretries=1000000
stdout_logfile=NONE
stderr_logfile=NONE
CONF
  start supervisord supervisord -c "$dir/supervisord.conf"
  local pid=$last_pid
  wait_starts "$dir/stamps" $((count + 1)) $((count * (lifetime + 1500) / 1000 + 60))
  stop "$pid"
}

if [[ -n ${TOOLS:-} ]]; then
  read -r -a tools <<<"$TOOLS"
else
  tools=(supervisor bash)
  command -v runsv >/dev/null && tools+=(runit) || echo "runit not installed: skipped" >&2
  command -v s6-supervise >/dev/null && tools+=(s6) || echo "s6 not installed: skipped" >&2
  command -v supervisord >/dev/null && tools+=(supervisord) || echo "supervisord not installed: skipped" >&2
fi

declare -A crash_median after_median
row() { printf '%-12s %-13s %6s %8s %8s %8s\n' "$@"; }
echo "restart latency (ms), exit of one instance to start of the next; $(nproc) CPUs, $(uname -r)"
row tool case n median p99 max
for tool in "${tools[@]}"; do
  for case in crash after1.2s; do
    dir=$work/$tool-$case
    mkdir -p "$dir"
    if [[ $case == crash ]]; then
      count=$restarts lifetime=0
      [[ $tool == supervisor || $tool == bash ]] || count=$ref_restarts
    else
      count=$ref_restarts lifetime=1200
    fi
    "run_$tool" "$dir" "$count" "$lifetime"
    if [[ $tool == supervisor ]]; then
      mapfile -t figures < <($stats restart "$dir/stamps" "$dir/trace" "$samples" "$tool,$case")
    else
      mapfile -t figures < <($stats restart "$dir/stamps" - "$samples" "$tool,$case")
    fi
    read -r n median p99 max <<<"${figures[0]}"
    row "$tool" "$case" "$n" "$median" "$p99" "$max"
    if [[ $case == crash ]]; then crash_median[$tool]=$median; else after_median[$tool]=$median; fi
    if [[ $tool == supervisor ]]; then
      read -r n median p99 max <<<"${figures[1]}"
      row "  spawn" "decision>exec" "$n" "$median" "$p99" "$max"
    fi
  done
done
echo
echo "median latency as a multiple of the supervisor's (higher: slower)"
for tool in "${tools[@]}"; do
  printf '%-12s crash loop %8s   after 1.2 s %8s\n' "$tool" \
    "$(python3 -c "print('%.1fx' % (${crash_median[$tool]} / ${crash_median[supervisor]}))")" \
    "$(python3 -c "print('%.1fx' % (${after_median[$tool]} / ${after_median[supervisor]}))")"
done
python3 "$root/bench/cdf.py" "$samples" "$cdf_svg" \
  "Restart latency: ${tools[*]}; $(nproc) CPUs, Linux $(uname -r)"
echo
echo "samples: $samples; CDF: $cdf_svg"
