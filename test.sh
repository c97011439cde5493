#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test. See README.md.
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup.sh
vow_setup
bazel test //... "$@"
