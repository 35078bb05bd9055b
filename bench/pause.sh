#!/usr/bin/env bash
# Side-by-side figures for pause and the references installed from Debian
# (catatonit -P, tini-static), each measured in this one run:
#   size of the binary, VmRSS and private anonymous Pss idle as PID 1 of a
#   new PID namespace, context switches in 5 s idle, and the time to reap
#   N orphans that exit at once (default 5000).
# Usage: sudo bench/pause.sh [PAUSE_BINARY] [N]
# Needs root (PID namespaces), util-linux (unshare, nsenter), python3.
set -euo pipefail

pause=${1:-target/release/pause}
orphans=${2:-5000}
idle_seconds=5
[[ -x $pause ]] || { echo "no pause binary at $pause (cargo build --release)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "run as root (PID namespaces)" >&2; exit 1; }

# name|binary|command line run as PID 1
candidates=("pause|$pause|$pause")
command -v catatonit >/dev/null && candidates+=("catatonit -P|$(command -v catatonit)|$(command -v catatonit) -P")
command -v tini-static >/dev/null && candidates+=("tini-static|$(command -v tini-static)|$(command -v tini-static) -s -- /bin/sleep infinity")

# Start a command as PID 1 of a new PID namespace; print the host pid of
# that PID 1 (the child of unshare).
start_pid1() {
  unshare --pid --fork --kill-child -- $1 >/dev/null 2>&1 &
  local parent=$! child=""
  for _ in $(seq 500); do
    child=$(cat /proc/$parent/task/$parent/children 2>/dev/null | awk '{print $1}')
    [[ -n $child ]] && break
    sleep 0.01
  done
  [[ -n $child ]] || { echo "no PID 1 under unshare $parent" >&2; exit 1; }
  sleep 0.3 # let it finish its set-up
  echo "$parent $child"
}

# Orphan N processes into PID 1's namespace, release them all at once and
# time until PID 1 has reaped every one. Prints milliseconds. Each orphan is
# a static busybox blocked on a pipe, so its exit is cheap and the figure is
# the reaper's, not the workload's.
reap_ms() {
  python3 - "$1" "$orphans" <<'PY'
import os, subprocess, sys, time
pid1, n = int(sys.argv[1]), int(sys.argv[2])
r, w = os.pipe()
# A process inside the namespace starts n orphans-to-be blocked reading the
# pipe and exits, so they are reparented to PID 1.
code = ("import os\n"
        "os.dup2(%d, 0)\n"
        "for _ in range(%d):\n"
        "    if os.fork()==0:\n"
        "        os.execv('/bin/busybox', ['busybox', 'head', '-c', '1'])\n" % (r, n))
subprocess.run(["nsenter", "-t", str(pid1), "-p", "--", sys.executable, "-c", code],
               pass_fds=(r,), check=True)
os.close(r)
children = f"/proc/{pid1}/task/{pid1}/children"
def count():
    with open(children) as f:
        return len(f.read().split())
# Wait until all n are exec'd and adopted (tini keeps its own child too).
base = None
for _ in range(20000):
    c = count()
    if c >= n:
        base = c - n
        break
    time.sleep(0.005)
time.sleep(0.5)
start = time.monotonic()
os.close(w)  # every orphan reads EOF and exits at once
while count() > base:
    time.sleep(0.002)
print(f"{(time.monotonic() - start) * 1000:.0f}")
PY
}

rounds=${ROUNDS:-3}
declare -A parent_of pid_of line_of reaps_of
for entry in "${candidates[@]}"; do
  IFS='|' read -r name binary cmdline <<<"$entry"
  read -r parent pid1 < <(start_pid1 "$cmdline")
  parent_of[$name]=$parent; pid_of[$name]=$pid1
  size=$(stat -c %s "$binary")
  rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid1/status)
  pss_anon=$(awk '/^Pss_Anon/ {print $2}' /proc/$pid1/smaps_rollup)
  switches() { awk '/ctxt_switches/ {s += $2} END {print s}' /proc/$pid1/status; }
  before=$(switches); sleep "$idle_seconds"; after=$(switches)
  line_of[$name]=$(printf '%-14s %10s %9s %12s %14s' "$name" "$size" "$rss" "$pss_anon" "$((after - before))")
done
# Reap rounds interleaved across the candidates, so drift hits all alike.
for _ in $(seq "$rounds"); do
  for entry in "${candidates[@]}"; do
    IFS='|' read -r name _ _ <<<"$entry"
    reaps_of[$name]+="$(reap_ms "${pid_of[$name]}") "
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-14s %10s %9s %12s %14s %16s  %s\n' binary "size B" "RSS KiB" "Pss_Anon KiB" "idle ctxsw/${idle_seconds}s" "reap ${orphans} ms" "(rounds)"
for entry in "${candidates[@]}"; do
  IFS='|' read -r name _ _ <<<"$entry"
  printf '%s %16s  (%s)\n' "${line_of[$name]}" "$(median <<<"${reaps_of[$name]}")" "${reaps_of[$name]% }"
  kill -TERM "${pid_of[$name]}" 2>/dev/null || true
  kill -KILL "${parent_of[$name]}" 2>/dev/null || true
  wait "${parent_of[$name]}" 2>/dev/null || true
done
