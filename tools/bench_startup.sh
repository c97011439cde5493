#!/usr/bin/env bash
# Start-up cost of `vow run` (issue 9): `vow run -p stdio -- /bin/true` vs bare `/bin/true`
# vs Debian's bubblewrap (`bwrap --bind / / /bin/true`), and `vow --help` (the command's own
# start: loader, static initializers), timed with hyperfine; prints the mean wall time of
# each, the ratios, and the mean user+system CPU time of each (hyperfine's rusage of the
# whole process tree), which moves less than wall time when the machine is busy. Usage: tools/bench_startup.sh [VOW_BINARY] (default: builds
# //broker:vow with Bazel and uses bazel-bin/broker/vow). Not a test: timing is never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
vow="${1:-}"
if [[ -z "$vow" ]]; then
  bazel build //broker:vow >&2
  vow="bazel-bin/broker/vow"
fi
for tool in hyperfine bwrap; do
  command -v "$tool" >/dev/null || { echo "bench_startup: $tool is missing (tools/setup.sh installs it)" >&2; exit 1; }
done
json="$(mktemp)"
trap 'rm -f "$json"' EXIT
hyperfine -N --warmup 20 --min-runs 200 --export-json "$json" \
  -n bare '/bin/true' \
  -n bwrap 'bwrap --bind / / /bin/true' \
  -n vow "$vow run -p stdio -- /bin/true" \
  -n vow-help "$vow --help" >&2
python3 - "$json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda n: r[n]["mean"] * 1e3
sd = lambda n: r[n]["stddev"] * 1e3
cpu = lambda n: (r[n]["user"] + r[n]["system"]) * 1e3
for n in ("bare", "bwrap", "vow", "vow-help"):
    print(f"{n:8s} {ms(n):8.3f} ms +- {sd(n):.3f}   cpu {cpu(n):7.3f} ms "
          f"(user {r[n]['user'] * 1e3:.3f}, sys {r[n]['system'] * 1e3:.3f})")
print(f"vow/bare  {ms('vow') / ms('bare'):6.1f}x")
print(f"bwrap/bare {ms('bwrap') / ms('bare'):5.1f}x")
print(f"vow/bwrap {ms('vow') / ms('bwrap'):6.2f}x  ({'faster' if ms('vow') < ms('bwrap') else 'slower'} than bwrap)")
print(f"cpu vow/bwrap {cpu('vow') / cpu('bwrap'):6.2f}x")
PY
