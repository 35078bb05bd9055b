#!/usr/bin/env bash
# One pod of CONTAINERS containers (default 200): the time to start them
# all (every one Running in status.json), the supervisor's fds and Pss with
# them, and the time to stop the pod on SIGTERM, which must end within the
# grace period + 1 s (GRACE, default 2 s) with nothing left behind. Two
# rounds: containers that ignore SIGTERM (`sleep` as PID 1 of its PID
# namespace: killed when the grace period ends) and containers that exit
# on it (a shell trap).
# Usage (root): bench/scale.sh; CONTAINERS=200 GRACE=2.
# Needs: cargo build --release --workspace; busybox-static.
source "$(dirname "$0")/lib.sh"
bench_image stamp "$bin/bench-stamp" /usr/bin/sleep

containers=${CONTAINERS:-200}
grace=${GRACE:-2}
now() { date +%s.%N; }
seconds() { python3 -c "print('%.2f' % ($2 - $1))"; }

manifest() { # NAME COMMAND (a YAML flow sequence)
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $1
spec:
  terminationGracePeriodSeconds: $grace
  containers:
YAML
  for i in $(seq "$containers"); do
    printf '  - {name: c-%d, image: localhost/podvisor-bench/stamp:1, command: %s}\n' "$i" "$2"
  done
}

printf '%-22s %10s %8s %9s %10s %12s %s\n' round "start (s)" fds "Pss (kB)" "stop (s)" "bound (s)" "left behind"
for round in ignores-TERM exits-on-TERM; do
  if [[ $round == ignores-TERM ]]; then
    command='[/usr/bin/sleep, infinity]'
  else
    command='[/bin/busybox, sh, -c, "trap \"exit 0\" TERM; while :; do /bin/busybox sleep 1 & wait; done"]'
  fi
  name=scale-${round,,}
  manifest "$name" "$command" >"$work/$name.yaml"
  t0=$(now)
  start_pod "$name" "$work/$name.yaml"
  pid=$last_pid
  wait_running "$name" "$containers" 300
  t1=$(now)
  fds=$(ls /proc/"$pid"/fd | wc -l)
  pss=$($stats pss "$pid")
  t2=$(now)
  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  t3=$(now)
  left=$( (find /sys/fs/cgroup/*/podvisor-bench/"default_$name" -maxdepth 0 2>/dev/null || true) | wc -l)
  [[ $status == 0 ]] || left="$left (exit status $status)"
  printf '%-22s %10s %8s %9s %10s %12s %s\n' "$round" "$(seconds "$t0" "$t1")" "$fds" "$pss" \
    "$(seconds "$t2" "$t3")" "$((grace + 1))" "$left cgroups"
done
