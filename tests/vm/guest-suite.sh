#!/usr/bin/env bash
# Inside the test VM: run each test binary given (cargo's integration test
# executables, built on the host) one after the other, as root, with any
# libtest arguments after `--`, and print one line per binary and a summary.
# Exit 0 only when every binary passed.
#
# Usage (by tests/vm/suite.sh): guest-suite.sh BINARY... [-- LIBTEST_ARG...]
set -uo pipefail

binaries=()
while (($#)) && [[ $1 != -- ]]; do
  binaries+=("$1")
  shift
done
[[ ${1:-} == -- ]] && shift

export PODVISOR_VM=1
failed=()
summary=()
for binary in "${binaries[@]}"; do
  name=${binary##*/}
  name=${name%-*}
  echo "=== vm-suite: $name ($binary)"
  started=$(date +%s)
  "$binary" "$@"
  rc=$?
  took=$(($(date +%s) - started))
  if ((rc == 0)); then
    summary+=("vm-suite: $name ok (${took}s)")
  else
    summary+=("vm-suite: $name FAILED (exit $rc, ${took}s)")
    failed+=("$name")
  fi
done

echo "=== vm-suite summary ($(uname -r), cgroup2 only:" \
  "$(cat /sys/fs/cgroup/cgroup.controllers))"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "vm-suite: failed: ${failed[*]}"
  exit 1
fi
