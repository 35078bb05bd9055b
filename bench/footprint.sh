#!/usr/bin/env bash
# Footprint, side by side in one run: memory (Pss) and idle wake-ups of the
# supervisor with CONTAINERS running containers (default 100), against
# runit (runsvdir + one runsv per service), s6 (s6-svscan + one
# s6-supervise per service) and supervisord keeping as many `sleep`s; and
# `supervisor init` against tini, dumb-init and catatonit with one child. Then the supervisor's
# growth over RESTARTS restarts (default 10,000) of one more container in
# the same pod: Pss, fds, threads, cgroups, mounts, log files, before and
# after.
# `supervisor init` execs supervisor-init: the row measures that program,
# checked by /proc/PID/exe; the in-process fallback (a copy of the
# supervisor with no supervisor-init beside it) gets a row of its own.
# Usage (root): bench/footprint.sh; CONTAINERS=100 RESTARTS=10000 IDLE=10;
# PARTS="run parked init" (the default) or some of them: PARTS=init runs
# only the one-child inits (about a minute), PARTS=run only the supervisor
# and its peers with the restarts, PARTS=parked what the prepared next
# instances cost: CONTAINERS containers that each restarted once, so each
# has its next instance parked (Pss, fds, mounts, cgroups, beside the
# supervisor's own Pss).
# Needs: cargo build --release --workspace; apt install runit s6 supervisor
# tini dumb-init catatonit.
source "$(dirname "$0")/lib.sh"

containers=${CONTAINERS:-100}
restarts=${RESTARTS:-10000}
idle=${IDLE:-10}
parts=${PARTS:-run parked init}
for part in $parts; do
  [[ $part == run || $part == parked || $part == init ]] ||
    { echo "PARTS: unknown part $part (run, parked, init)" >&2; exit 1; }
done
part() { [[ " $parts " == *" $1 "* ]]; }
{ part run || part parked; } && bench_image stamp "$bin/bench-stamp" /usr/bin/sleep

children() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -c . || true; }
wait_children() { # PID N: wait until PID has N children (60 s)
  for _ in $(seq 1200); do (($(children "$1") >= $2)) && return 0; sleep 0.05; done
  echo "timed out waiting for $2 children of $1" >&2
  return 1
}
wakeups() { # PIDS...: context switches over $idle seconds
  local before after
  before=$($stats switches "$@")
  sleep "$idle"
  after=$($stats switches "$@")
  echo $((after - before))
}
row() { printf '%-28s %10s %12s\n' "$@"; }
# measure_tree NAME PID: PID and its children, one per service, each with
# its sleep: their Pss and wake-ups; then stop PID. Leaves the pids in $pids.
measure_tree() {
  local name=$1 top=$2 child
  wait_children "$top" "$containers"
  for child in $(cat /proc/"$top"/task/*/children); do wait_children "$child" 1; done
  mapfile -t pids < <(echo "$top"; cat /proc/"$top"/task/*/children | tr ' ' '\n' | grep .)
  row "$name" "$($stats pss "${pids[@]}")" "$(wakeups "${pids[@]}")"
  stop "$top"
}

# --- PARTS=run: the supervisor and its peers, then its restarts (below).
if part run; then
echo "footprint with $containers supervised sleeps; $(nproc) CPUs, $(uname -r)"
row "" "Pss (kB)" "wake-ups/${idle}s"

# --- the supervisor: a pod of $containers sleeps and one crash loop.
stamps=$work/stamps
{
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: footprint
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 1
  volumes:
  - name: out
    hostPath: {path: $work}
  containers:
  - name: crash
    image: localhost/podvisor-bench/stamp:1
    # Waits for the go file, then exits 1 at once until its last run.
    command: [/bin/busybox, sh, -c, 'until [ -e /out/go ]; do /bin/busybox sleep 0.2; done; exec "\$0" "\$@"',
      "$bin/bench-stamp", /out/stamps, "1", "0", "$((restarts + 1))"]
    volumeMounts:
    - {name: out, mountPath: /out}
YAML
  for i in $(seq "$containers"); do
    printf '  - {name: sleep-%d, image: localhost/podvisor-bench/stamp:1, command: [/usr/bin/sleep, infinity]}\n' "$i"
  done
} >"$work/pod.yaml"
start_pod supervisor "$work/pod.yaml" --backoff-initial 0 --backoff-max 0
supervisor=$last_pid
wait_running footprint $((containers + 1)) 120
sleep 1 # idle

cgroup_dirs() { (find /sys/fs/cgroup/*/podvisor-bench/default_footprint -type d 2>/dev/null || true) | wc -l; }
measure() {
  printf '%s %s %s %s %s %s %s\n' \
    "$($stats pss "$supervisor")" \
    "$(ls /proc/"$supervisor"/fd | wc -l)" \
    "$(ls /proc/"$supervisor"/task | wc -l)" \
    "$(cgroup_dirs)" \
    "$(wc -l </proc/self/mountinfo)" \
    "$(wc -l </proc/"$supervisor"/mountinfo)" \
    "$(find "$work/logs" -type f | wc -l)"
}
before=$(measure)
pause=
for pid in $(cat /proc/"$supervisor"/task/*/children); do
  [[ $(readlink /proc/"$pid"/exe) == */pause ]] && pause=$pid
done
row "supervisor run" "$($stats pss "$supervisor")" "$(wakeups "$supervisor")"
row "  + pause" "$($stats pss "$pause")" "$(wakeups "$pause")"
restarts_began=$(date +%s.%N)
touch "$work/go"
wait_starts "$stamps" $((restarts / 2)) $((restarts / 40 + 120))
halfway=$(measure)
wait_starts "$stamps" $((restarts + 1)) $((restarts / 20 + 120))
elapsed=$(python3 -c "print('%.1f' % ($(date +%s.%N) - $restarts_began))")
sleep 11 # idle again: the supervisor drops its idle pages at most every 10 s
after=$(measure)
after_wakeups=$(wakeups "$supervisor")
[[ -n ${KEEP:-} ]] && { echo "supervisor $supervisor kept for $KEEP s"; sleep "$KEEP"; }
stop "$supervisor"

# --- runit: runsvdir and one runsv per service.
mkdir -p "$work/runit"
for i in $(seq "$containers"); do
  mkdir -p "$work/runit/sleep-$i"
  printf '#!/bin/sh\nexec /bin/sleep infinity\n' >"$work/runit/sleep-$i/run"
  chmod +x "$work/runit/sleep-$i/run"
done
if command -v runsvdir >/dev/null; then
  start runsvdir runsvdir -P "$work/runit"
  measure_tree "runit (runsvdir + runsv)" "$last_pid"
  # runsv children outlive runsvdir: end each (they end their sleep).
  for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
fi

# --- s6: s6-svscan and one s6-supervise per service.
if command -v s6-svscan >/dev/null; then
  mkdir -p "$work/s6"
  for i in $(seq "$containers"); do
    mkdir -p "$work/s6/sleep-$i"
    cp "$work/runit/sleep-$i/run" "$work/s6/sleep-$i/run"
  done
  start s6-svscan s6-svscan "$work/s6"
  measure_tree "s6 (svscan + supervise)" "$last_pid"
fi

# --- supervisord: one process for every program.
if command -v supervisord >/dev/null; then
  {
    printf '[supervisord]\nnodaemon=true\nlogfile=%s\npidfile=%s\n' "$work/supervisord.log" "$work/supervisord.pid"
    for i in $(seq "$containers"); do
      printf '[program:sleep-%d]\ncommand=/bin/sleep infinity\nstdout_logfile=NONE\nstderr_logfile=NONE\n' "$i"
    done
  } >"$work/supervisord.conf"
  start supervisord supervisord -c "$work/supervisord.conf"
  supervisord=$last_pid
  wait_children "$supervisord" "$containers"
  row "supervisord" "$($stats pss "$supervisord")" "$(wakeups "$supervisord")"
  stop "$supervisord"
fi

fi

# --- PARTS=parked: $containers containers that restarted once, each with
# its next instance parked (forked, set up, waiting before exec).
if part parked; then
echo
echo "prepared next instances: $containers containers that restarted once; $(nproc) CPUs, $(uname -r)"
mkdir -p "$work/parked-out"
{
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: parked
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  volumes:
  - name: out
    hostPath: {path: $work/parked-out}
  containers:
YAML
  for i in $(seq "$containers"); do
    # The first run exits 1; the second sleeps.
    printf '  - {name: c-%d, image: localhost/podvisor-bench/stamp:1, volumeMounts: [{name: out, mountPath: /out}], command: [/bin/busybox, sh, -c, "[ -e /out/ran-%d ] && exec /usr/bin/sleep infinity; touch /out/ran-%d; exit 1"]}\n' "$i" "$i" "$i"
  done
} >"$work/parked.yaml"
cgroups_before=$(find /sys/fs/cgroup/ -type d 2>/dev/null | wc -l)
start_pod parked-supervisor "$work/parked.yaml" --backoff-initial 0 --backoff-max 0
supervisor=$last_pid
wait_running parked "$containers" 120
# Parked: a child of the supervisor that is still the supervisor's program.
parked_pids() {
  local pid
  for pid in $(cat /proc/"$supervisor"/task/*/children); do
    [[ $(readlink /proc/"$pid"/exe) == "$(readlink /proc/"$supervisor"/exe)" ]] && echo "$pid"
  done
}
for _ in $(seq 600); do
  (($(parked_pids | wc -l) >= containers)) && break
  sleep 0.1
done
mapfile -t parked < <(parked_pids)
sleep 1 # idle
fds=0 mounts=0
for pid in "${parked[@]}"; do
  fds=$((fds + $(ls /proc/"$pid"/fd | wc -l)))
  mounts=$((mounts + $(wc -l </proc/"$pid"/mountinfo)))
done
n=${#parked[@]}
((n > 0)) || { echo "no parked instance found" >&2; exit 1; }
cgroups=$(($(find /sys/fs/cgroup/ -type d 2>/dev/null | wc -l) - cgroups_before))
printf '%-34s %10s\n' "supervisor Pss (kB)" "$($stats pss "$supervisor")"
printf '%-34s %10s\n' "parked instances" "$n"
printf '%-34s %10s\n' "  their Pss, all (kB)" "$($stats pss "${parked[@]}")"
printf '%-34s %10s\n' "  fds each" "$((fds / n))"
printf '%-34s %10s\n' "  mounts each (own namespace)" "$((mounts / n))"
printf '%-34s %10s\n' "cgroup dirs of the pod (all)" "$cgroups"
stop "$supervisor"
fi

# --- PARTS=init: one child under each init.
if part init; then
echo
echo "one child (sleep): the init, as PID 1 of a new PID namespace; $(nproc) CPUs, $(uname -r)"
row "" "Pss (kB)" "wake-ups/${idle}s"
[[ -x $bin/supervisor-init ]] || { echo "no $bin/supervisor-init: run cargo build --release --workspace" >&2; exit 1; }
mkdir -p "$work/lone" && cp "$bin/supervisor" "$work/lone/supervisor"
inits=("supervisor init|$bin/supervisor init --" "  in-process (fallback)|$work/lone/supervisor init --")
command -v tini >/dev/null && inits+=("tini|$(command -v tini) --")
command -v dumb-init >/dev/null && inits+=("dumb-init|$(command -v dumb-init)")
command -v catatonit >/dev/null && inits+=("catatonit|$(command -v catatonit) --")
for entry in "${inits[@]}"; do
  name=${entry%%|*}
  # shellcheck disable=SC2086 # the command line splits on purpose
  start "init-${name// /}" unshare --pid --fork --kill-child -- ${entry#*|} /bin/sleep infinity
  unshare_pid=$last_pid
  wait_children "$unshare_pid" 1
  init=$(cat /proc/"$unshare_pid"/task/*/children | awk '{print $1}')
  wait_children "$init" 1
  # What runs as PID 1 now: supervisor-init once `supervisor init` has
  # exec'd it (the child is forked after the exec).
  exe=$(readlink /proc/"$init"/exe)
  case $name in
    "supervisor init") [[ $exe == "$(readlink -f "$bin/supervisor-init")" ]] || { echo "supervisor init runs $exe, not $bin/supervisor-init" >&2; exit 1; } ;;
    *in-process*) [[ $exe == "$(readlink -f "$work/lone/supervisor")" ]] || { echo "the fallback runs $exe" >&2; exit 1; } ;;
  esac
  row "$name" "$($stats pss "$init")" "$(wakeups "$init")"
  stop "$unshare_pid"
done
fi

if part run; then
echo
echo "the supervisor over $restarts restarts of one container ($elapsed s), beside $containers running;"
echo "idle before and after ($after_wakeups wake-ups in ${idle}s after), restarting halfway"
printf '%-8s %9s %5s %8s %8s %12s %14s %10s\n' "" "Pss (kB)" fds threads cgroups "host mounts" "its mountinfo" "log files"
printf '%-8s %9s %5s %8s %8s %12s %14s %10s\n' before $before
printf '%-8s %9s %5s %8s %8s %12s %14s %10s\n' halfway $halfway
printf '%-8s %9s %5s %8s %8s %12s %14s %10s\n' after $after
fi
