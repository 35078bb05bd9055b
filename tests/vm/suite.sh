#!/usr/bin/env bash
# The VM suite: the integration tests that need a real pure cgroup v2 kernel,
# run inside the test VM (tests/vm/vm.sh) against the release binaries built
# on the host. It builds nothing when everything is fresh: the README's test
# command has already run `cargo build --release --workspace` and built the
# test executables.
#
# Usage: tests/vm/suite.sh [--timeout SECONDS] [--docker] [TEST...] [-- LIBTEST_ARG...]
#   TEST: names of tests/tests/*.rs (default: container, cgroup_v2, run,
#   network, isolation_rootfs and exec)
#   --docker: run them with a Docker engine of the guest's own
#   (tests/vm/with-dockerd.sh) and the static supervisor the image holds,
#   built here on the host (docker/stage.sh --build-supervisor)
set -euo pipefail

cd "$(dirname "$0")/../.."
timeout=1500
docker=false
while (($#)); do
  case $1 in
  --timeout) timeout=$2; shift 2 ;;
  --docker) docker=true; shift ;;
  *) break ;;
  esac
done
# TEST... up to `--`, libtest's arguments after it.
args=("$@")
for ((split = 0; split < ${#args[@]}; split++)); do
  [[ ${args[split]} == -- ]] && break
done
tests=("${args[@]:0:split}")
libtest_args=("${args[@]:split+1}")
((${#tests[@]})) || tests=(container cgroup_v2 run network isolation_rootfs exec)

cargo build --release --workspace --quiet
# cargo names each test executable in its JSON messages; take those of the
# `it` package's integration tests asked for. --workspace, as the README's
# test command builds them: the same features, so nothing is built again.
test_args=()
for t in "${tests[@]}"; do
  test_args+=(--test "$t")
done
mapfile -t binaries < <(cargo test --workspace --no-run --quiet --message-format=json \
  "${test_args[@]}" | python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and "test" in msg["target"]["kind"] \
            and msg["manifest_path"].endswith("/tests/Cargo.toml"):
        print(msg["executable"])
')
if ((${#binaries[@]} != ${#tests[@]})); then
  echo "tests/vm/suite.sh: found ${#binaries[@]} test executables for ${#tests[@]} tests" >&2
  exit 2
fi

# Tests skipped in the VM, each for a reason that is not the kernel's cgroup
# v2 (what they check on v2 is checked elsewhere, or they pass on v1):
skips=(
  # A v1 freezer hierarchy is its prerequisite: there is none on pure v2.
  v1_freezer_kills_every_process_without_cgroup_kill
  # Timing under TCG (qemu without KVM, ~20x slower): a restart takes 0.3 to
  # 0.9 s there, more than the back-off tolerance; the portmap plugin's
  # iptables calls take ~25 s, more than the 20 s the test waits for the pod;
  # the second SIGINT, 300 ms after the first, can merge with it.
  back_off_doubles_and_caps
  a_host_port_reaches_the_pod_on_loopback
  a_second_sigint_kills_at_once
)
skip_args=()
for name in "${skips[@]}"; do
  skip_args+=(--skip "$name")
done
echo "tests/vm/suite.sh: skipped in the VM (see suite.sh for why): ${skips[*]}" >&2

guest=(tests/vm/guest-suite.sh)
if $docker; then
  # Built here: in the guest, docker/stage.sh then only stages (SUPERVISOR=).
  static_supervisor=$(docker/stage.sh --build-supervisor)
  guest=(tests/vm/with-dockerd.sh env "SUPERVISOR=$static_supervisor" "${guest[@]}")
fi
exec tests/vm/vm.sh --timeout "$timeout" -- "${guest[@]}" "${binaries[@]}" \
  -- "${skip_args[@]}" "${libtest_args[@]}"
