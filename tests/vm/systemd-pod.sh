#!/usr/bin/env bash
# Inside the test VM in systemd mode (tests/vm/vm.sh --systemd): the shipped
# unit deploy/systemd/supervisor@.service with systemd as PID 1 on pure
# cgroup v2, driving the example pod (examples/pod.yaml, loopback only).
# Checks: `systemctl start` returns only after READY=1, `systemctl status`
# shows STATUS=, Delegate=yes puts the supervisor in a leaf of the unit's own
# cgroup and the pod's cgroups (with their limits) beside it, `journalctl -u`
# has the containers' prefixed lines, a SIGKILLed supervisor is restarted by
# systemd and the old pod is gone, WATCHDOG=1 pings keep it alive past
# WatchdogSec and a stopped supervisor is restarted by the watchdog, and
# `systemctl stop` ends by the pod's own grace period (not systemd's timeout)
# leaving no process and no cgroup.
# Prints ok:/FAIL: per check; exit 1 when any failed. Run from the workspace
# root (the release binaries in target/release, or POD_BIN_DIR).
set -uo pipefail

release=${POD_BIN_DIR:-$PWD/target/release}
pod=web
unit=supervisor@$pod.service
failures=0

check() {
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what"
  else
    echo "FAIL: $what"
    failures=$((failures + 1))
  fi
}
prop() { systemctl show -p "$1" --value "$unit"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Every pid in the cgroup subtree $1 (a path under /sys/fs/cgroup).
subtree_pids() { find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null; }
# The pod's processes that are not the supervisor: pause and the containers.
pod_pids() {
  local main=$1
  subtree_pids "/sys/fs/cgroup$(prop ControlGroup)" | grep -vx "$main"
}

install -m 0755 "$release/supervisor" "$release/pause" /usr/local/bin/
# The example pod's image, in the unit's default store (/var/lib/supervisor/images).
SUPERVISOR=$release/supervisor bash examples/busybox-image.sh
install -D -m 0644 examples/pod.yaml "/etc/supervisor/$pod.yaml"
install -m 0644 deploy/systemd/supervisor@.service /run/systemd/system/
systemctl daemon-reload

started=$(now)
systemctl start "$unit"
rc=$?
echo "systemctl start took $(since "$started")s"
check "systemctl start $unit succeeds" test "$rc" = 0
# Type=notify: the start job ends with READY=1, so the unit is active (not
# activating) the moment systemctl returns.
check "active as soon as systemctl start returned (READY=1)" test "$(prop ActiveState)" = active
status_text=$(prop StatusText)
echo "StatusText: $status_text"
check "STATUS= is set" test -n "$status_text"
check "systemctl status shows the STATUS= line" \
  bash -c "systemctl status --no-pager '$unit' | grep -qF 'Status: \"$status_text'"

cg=/sys/fs/cgroup$(prop ControlGroup)
main=$(prop MainPID)
echo "unit cgroup: $cg, supervisor pid $main"
find "$cg" -type d | sed "s|^$cg|  cgroup: .|"
main_cgroup=$(sed -n 's/^0:://p' "/proc/$main/cgroup")
check "the supervisor moved into a leaf below the unit's cgroup ($main_cgroup)" \
  test "/sys/fs/cgroup$main_cgroup" != "$cg" -a "${main_cgroup#"$(prop ControlGroup)"/}" != "$main_cgroup"
check "no process in the unit's own cgroup (inner node)" test -z "$(cat "$cg/cgroup.procs")"
check "the unit's cgroup delegates memory, cpu and pids" \
  bash -c "tr ' ' '\n' <'$cg/cgroup.subtree_control' | grep -cxE 'memory|cpu|pids' | grep -qx 3"
pod_processes=$(pod_pids "$main" | wc -l)
check "pause and both containers run under the unit's cgroup ($pod_processes processes)" \
  test "$pod_processes" -ge 3
check "a container's cgroup has memory.max 64Mi (67108864)" \
  bash -c "grep -rlx 67108864 '$cg' --include=memory.max | grep -q ."
check "a container's cgroup has cpu.max 250m (25000 100000)" \
  bash -c "grep -rlx '25000 100000' '$cg' --include=cpu.max | grep -q ."

# The log-reader prints the access log's last line every 5 s.
sleep 6
check "journalctl -u shows the containers' prefixed lines" \
  bash -c "journalctl -u '$unit' --no-pager | grep -q '\[log-reader\]'"

# Send $2 to the supervisor, wait (at most $3 s) until systemd has it running
# again under a new pid, and check that no process of the old pod is left.
restarted_after() {
  local what=$1 signal=$2 patience=$3 main old_pids started restarted="" new_main pid leftover=""
  main=$(prop MainPID)
  old_pids=$(pod_pids "$main")
  started=$(now)
  kill "-$signal" "$main"
  for _ in $(seq $((patience * 2))); do
    new_main=$(prop MainPID)
    if [[ $(prop ActiveState) == active && $new_main != 0 && $new_main != "$main" ]]; then
      restarted=$new_main
      break
    fi
    sleep 0.5
  done
  echo "after SIG$signal: active again with supervisor pid ${restarted:-none} after" \
    "$(since "$started")s (NRestarts=$(prop NRestarts))"
  check "systemd restarted the $what supervisor" test -n "$restarted"
  for pid in $old_pids; do
    [[ -d /proc/$pid ]] && leftover+=" $pid"
  done
  check "no process of the old pod is left (${leftover:-none})" test -z "$leftover"
}

# A crashed supervisor: systemd restarts it (Restart=on-failure) and the new
# one replaces the old pod.
restarted_after SIGKILLed KILL 120

# WatchdogSec=30: the supervisor's WATCHDOG=1 pings keep the unit alive past
# it (without them systemd would abort and restart it).
main=$(prop MainPID)
restarts=$(prop NRestarts)
echo "WatchdogUSec=$(prop WatchdogUSec); waiting 35 s"
sleep 35
check "watchdog pings keep the unit alive past WatchdogSec (same pid, no restart)" \
  test "$(prop MainPID)" = "$main" -a "$(prop NRestarts)" = "$restarts" -a "$(prop ActiveState)" = active

# A stopped loop pings no more: after WatchdogSec systemd sends SIGABRT (held
# while stopped), SIGKILL after TimeoutAbortSec (TimeoutStopSec, 45 s), and
# restarts the unit.
restarted_after stopped STOP 150
check "journalctl -u reports the watchdog timeout" \
  bash -c "journalctl -u '$unit' --no-pager | grep -qi 'watchdog timeout'"

started=$(now)
systemctl stop "$unit"
took=$(since "$started")
echo "systemctl stop took ${took}s"
# The containers ignore SIGTERM (PID 1 of their namespaces without a
# handler): the supervisor kills them when the 10 s grace period ends, well
# before systemd's TimeoutStopSec (45 s) would have to.
check "systemctl stop ends before TimeoutStopSec (45 s)" awk -v t="$took" 'BEGIN { exit !(t < 45) }'
check "the stop was the supervisor's, not systemd's timeout (Result=success)" \
  test "$(prop Result)" = success
check "the unit is inactive, not failed" test "$(prop ActiveState)" = inactive
check "the unit's cgroup is gone" test ! -e "$cg"
check "no supervisor and no pause process is left" \
  bash -c "! pidof supervisor pause >/dev/null"

echo "journal of $unit (last 15 lines):"
journalctl -u "$unit" --no-pager | tail -n 15
if ((failures)); then
  echo "systemd-pod: $failures check(s) failed"
  exit 1
fi
echo "systemd-pod: all checks passed"
