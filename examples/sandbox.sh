#!/usr/bin/env bash
# The pod model by hand: pause holds fresh net/ipc/uts/pid namespaces, and
# a workload (busybox) joins them. Both see the same network namespace,
# pause is PID 1 of the pod and reaps the workload's orphans; SIGTERM ends
# pause with exit code 0. Run as root after `cargo build --release`.
set -euo pipefail
pause=${PAUSE:-target/release/pause}
[[ -x $pause ]] || { echo "build first: cargo build --release" >&2; exit 1; }

unshare --net --ipc --uts --pid --fork --kill-child "$pause" &
holder=$!
for _ in $(seq 100); do
  pid=$(cat /proc/$holder/task/$holder/children 2>/dev/null || true)
  [[ -n $pid ]] && break
  sleep 0.02
done
pid=${pid%% *}
echo "pause is host pid $pid; its namespaces:"
ls -l /proc/$pid/ns | awk '/ -> / {print "  " $(NF-2) " " $NF}' | grep -E '^  (net|ipc|uts|pid) '

echo "a workload joins them (busybox via nsenter):"
nsenter --target "$pid" --net --ipc --uts --pid -- /bin/busybox sh -c '
  hostname pod-demo
  echo "  workload: net $(/bin/busybox readlink /proc/self/ns/net), hostname $(hostname)"
  /bin/busybox ip link set lo up
  /bin/busybox ip -o addr show lo | /bin/busybox awk "{print \"  workload sees \" \$2, \$4}"
  # orphans: the subshells exit at once, their sleeps are reparented to pause
  for i in 1 2 3; do (/bin/busybox sleep 0.2 &); done
'
sleep 0.5
zombies=$(awk '$3 == "Z" {n++} END {print n+0}' $(for c in $(cat /proc/$pid/task/$pid/children 2>/dev/null); do echo /proc/$c/stat; done) /dev/null)
echo "zombies under pause after the orphans exited: $zombies"
kill -TERM "$pid"
wait "$holder" && echo "pause exited 0 on SIGTERM"
