#!/usr/bin/env python3
"""Figures for the benchmark scripts of this directory.

  stats.py restart STAMPS [TRACE] [SAMPLES LABEL]
      STAMPS: the file bench-stamp appends to (`S <ns>` at start, `E <ns>`
      at exit, CLOCK_MONOTONIC). Prints the restart latency, from one
      instance's E to the next one's S: `n median p99 max` in ms.
      With TRACE (supervisor run --trace), prints a second line: the spawn
      time, from the supervisor's decision to start an instance
      (`deciding`) to its exec (`spawned`) (`-` for none). With SAMPLES
      and LABEL (`tool,case`), appends every latency to SAMPLES as a
      `LABEL,ms` line (the CSV that cdf.py draws).
  stats.py pss PID...
      Sum of Pss (kB) of the processes, from /proc/PID/smaps_rollup.
  stats.py switches PID...
      Sum of the context switches (voluntary + involuntary) of every thread
      of the processes: each one is a wake-up.
"""
import sys


def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1, int(len(sorted_values) * fraction))
    return sorted_values[index]


def summary(values_ns):
    values = sorted(v / 1e6 for v in values_ns)
    if not values:
        return "0 - - -"
    return "%d %.2f %.2f %.2f" % (
        len(values), percentile(values, 0.5), percentile(values, 0.99), values[-1])


def restart(stamps, trace=None, samples=None, label=None):
    starts, ends = [], []
    with open(stamps) as f:
        for line in f:
            mark, ns = line.split()
            (starts if mark == "S" else ends).append(int(ns))
    gaps = [starts[i + 1] - ends[i] for i in range(min(len(starts) - 1, len(ends)))]
    print(summary(gaps))
    if samples:
        with open(samples, "a") as f:
            for gap in gaps:
                f.write("%s,%.4f\n" % (label, gap / 1e6))
    if trace and trace != "-":
        steps = {}
        with open(trace) as f:
            for line in f:
                ns, _container, instance, step = line.split()
                steps.setdefault(int(instance), {})[step] = int(ns)
        spawns = [s["spawned"] - s["deciding"] for s in steps.values()
                  if "spawned" in s and "deciding" in s]
        print(summary(spawns))


def pss(pids):
    total = 0
    for pid in pids:
        with open("/proc/%s/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    print(total)


def switches(pids):
    import os
    total = 0
    for pid in pids:
        for task in os.listdir("/proc/%s/task" % pid):
            with open("/proc/%s/task/%s/status" % (pid, task)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
    print(total)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"restart": lambda: restart(*args), "pss": lambda: pss(args),
     "switches": lambda: switches(args)}[command]()
