#!/usr/bin/env bash
# The VM suite: the integration tests that need a real pure cgroup v2 kernel,
# run inside the test VM (tests/vm/vm.sh) against the release binaries built
# on the host. It builds nothing when everything is fresh: the README's test
# command has already run `cargo build --release --workspace` and built the
# test executables.
#
# Usage: tests/vm/suite.sh [--timeout SECONDS] [TEST...] [-- LIBTEST_ARG...]
#   TEST: names of tests/tests/*.rs (default: the cgroup and network ones)
set -euo pipefail

cd "$(dirname "$0")/../.."
timeout=1500
if [[ ${1:-} == --timeout ]]; then
  timeout=$2
  shift 2
fi
tests=()
while (($#)) && [[ $1 != -- ]]; do
  tests+=("$1")
  shift
done
((${#tests[@]})) || tests=(container run network)

cargo build --release --workspace --quiet
# cargo names each test executable in its JSON messages; take those of the
# `it` package's integration tests asked for.
test_args=()
for t in "${tests[@]}"; do
  test_args+=(--test "$t")
done
mapfile -t binaries < <(cargo test -p it --no-run --quiet --message-format=json "${test_args[@]}" \
  | python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and "test" in msg["target"]["kind"]:
        print(msg["executable"])
')
if ((${#binaries[@]} != ${#tests[@]})); then
  echo "tests/vm/suite.sh: found ${#binaries[@]} test executables for ${#tests[@]} tests" >&2
  exit 2
fi

exec tests/vm/vm.sh --timeout "$timeout" -- tests/vm/guest-suite.sh "${binaries[@]}" "$@"
