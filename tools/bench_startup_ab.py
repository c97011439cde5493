#!/usr/bin/env python3
"""Start-up A/B of `vow run -p stdio -- /bin/true` (issue 9): two or more vow binaries,
bare /bin/true and Debian's bubblewrap (`bwrap --bind / / /bin/true`), run INTERLEAVED:
every round runs each command once, in a fresh random order, so that a change in the
machine's load hits all of them alike (hyperfine, in tools/bench_startup.sh, runs all the
runs of one command before the next). Prints per command the wall time (mean, median,
10th percentile, minimum; the lower figures are the ones a busy machine disturbs least)
and the CPU time (user+system of the whole process tree, from wait4). Not a test.

Usage: tools/bench_startup_ab.py [--rounds N] NAME=VOW_BINARY [NAME=VOW_BINARY ...]
On a machine shared with other work, run it under `chrt -f 10` (SCHED_FIFO: the runs are
not preempted by the others' ordinary processes).
"""
import argparse
import os
import random
import statistics
import sys
import time

WARMUP = 10


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("binaries", nargs="+", metavar="NAME=VOW_BINARY")
    args = ap.parse_args()
    commands = [("bare", ["/bin/true"]), ("bwrap", ["/usr/bin/bwrap", "--bind", "/", "/", "/bin/true"])]
    for spec in args.binaries:
        name, _, binary = spec.partition("=")
        if not binary:
            sys.exit(f"bench_startup_ab: expected NAME=VOW_BINARY, got {spec!r}")
        commands.append((name, [os.path.abspath(binary), "run", "-p", "stdio", "--", "/bin/true"]))
    devnull = os.open(os.devnull, os.O_WRONLY)
    wall = {name: [] for name, _ in commands}
    cpu = {name: [] for name, _ in commands}
    for round_ in range(WARMUP + args.rounds):
        order = list(commands)
        random.shuffle(order)
        for name, argv in order:
            start = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, os.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
            _, status, usage = os.wait4(pid, 0)
            elapsed = time.perf_counter() - start
            if status != 0:
                sys.exit(f"bench_startup_ab: {name} failed (wait status {status})")
            if round_ >= WARMUP:
                wall[name].append(elapsed * 1e3)
                cpu[name].append((usage.ru_utime + usage.ru_stime) * 1e3)
    print(f"{'':8s} {'wall ms: mean':>14s} {'median':>7s} {'p10':>7s} {'min':>7s}   "
          f"{'cpu ms: mean':>13s} {'median':>7s}")
    for name, _ in commands:
        w, c = wall[name], cpu[name]
        print(f"{name:8s} {statistics.mean(w):14.3f} {statistics.median(w):7.3f} "
              f"{statistics.quantiles(w, n=10)[0]:7.3f} {min(w):7.3f}   "
              f"{statistics.mean(c):13.3f} {statistics.median(c):7.3f}")
    bwrap = statistics.median(wall["bwrap"])
    for name, _ in commands[2:]:
        print(f"{name}/bwrap median wall {statistics.median(wall[name]) / bwrap:.2f}x, "
              f"p10 {statistics.quantiles(wall[name], n=10)[0] / statistics.quantiles(wall['bwrap'], n=10)[0]:.2f}x, "
              f"median cpu {statistics.median(cpu[name]) / statistics.median(cpu['bwrap']):.2f}x")


if __name__ == "__main__":
    main()
