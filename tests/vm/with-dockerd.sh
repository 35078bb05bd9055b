#!/usr/bin/env bash
# Inside the test VM (plain init, pure cgroup v2, every capability): start a
# Docker engine of the guest's own, run the command, then stop the engine by
# its PID. The engine's state goes on fresh tmpfs mounts, since the guest's
# root is an overlay (an overlay2 upper directory on it is refused) and the
# host's /var/lib/docker shows through it read-only. As in .ci/run: no
# bridge and no iptables rules; the tests use --network none.
#
# Usage (by tests/vm/suite.sh --docker): with-dockerd.sh COMMAND [ARG...]
set -uo pipefail

die() {
  echo "with-dockerd.sh: $*" >&2
  exit 1
}

command -v dockerd >/dev/null || die "no dockerd on the host's PATH (package docker.io)"
for dir in /var/lib/docker /var/lib/containerd /etc/docker; do
  mkdir -p "$dir"
  mount -t tmpfs -o mode=0711 tmpfs "$dir" || die "mount a tmpfs on $dir"
done
log=/tmp/dockerd.log
dockerd --bridge=none --iptables=false --ip6tables=false --storage-driver=overlay2 \
  --exec-opt native.cgroupdriver=cgroupfs \
  >"$log" 2>&1 &
dockerd_pid=$!
stop_dockerd() {
  kill -TERM "$dockerd_pid" 2>/dev/null
  wait "$dockerd_pid" 2>/dev/null
}
trap stop_dockerd EXIT

# Under TCG the engine and its containerd take tens of seconds to answer.
started=$(date +%s)
until docker version --format '{{.Server.Version}}' >/dev/null 2>&1; do
  if ! kill -0 "$dockerd_pid" 2>/dev/null; then
    cat "$log" >&2
    die "dockerd exited before it answered"
  fi
  if (($(date +%s) - started > 240)); then
    tail -n 40 "$log" >&2
    die "dockerd did not answer within 240 s"
  fi
  sleep 1
done
echo "with-dockerd.sh: $(docker info --format 'docker engine {{.ServerVersion}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}}), storage {{.Driver}}') after $(($(date +%s) - started)) s"

"$@"
rc=$?
if ((rc != 0)); then
  echo "--- last lines of $log ---" >&2
  tail -n 40 "$log" >&2
fi
exit "$rc"
