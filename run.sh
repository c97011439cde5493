#!/usr/bin/env bash
# Installs what is missing, builds, and runs vow's main job. See README.md.
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup.sh
vow_setup
bazel build //examples/... >&2
echo "== vow_cat: a worker locked to stdio reads a file through the broker =="
./bazel-bin/examples/vow_cat --audit examples/testdata/pledge.txt
