#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test. See README.md.
#   1. every test target: bazel test //...
#   2. everything that decodes worker bytes, and the cross-process tests, again under
#      AddressSanitizer + UndefinedBehaviorSanitizer (--config=asan);
#   3. each libFuzzer target for VOW_FUZZ_SECONDS (default 15) seconds (clang, in its own
#      Bazel output base so the gcc build above is not reconfigured).
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup.sh
vow_setup

echo "== 1/3 bazel test //..." >&2
bazel test //... "$@"

echo "== 2/3 sanitizers (ASan + UBSan)" >&2
bazel test --config=asan \
  //ipc:all //broker:all //policies:policy_file_test //tests:broker_test \
  //tests:exec_worker_test //examples/x509_oracle:verify_test \
  //examples/x509_oracle:limbo_test //examples/x509_oracle:json_test "$@"

echo "== 3/3 fuzzers" >&2
FUZZ_BASE="${HOME}/.cache/bazel-vow-fuzz-$(pwd | md5sum | cut -c1-8)"
FUZZERS=(//broker:request_fuzzer //broker:fs_policy_fuzzer //broker:path_call_fuzzer //policies:policy_file_fuzzer)
CC=clang bazel --output_base="$FUZZ_BASE" build --config=fuzz "${FUZZERS[@]}"
BIN="$FUZZ_BASE/execroot/vow/bazel-out/k8-opt/bin"
for target in "${FUZZERS[@]}"; do
  path="${target#//}"
  path="${path/://}"
  corpus="$(mktemp -d)"
  echo "fuzzing $target for ${VOW_FUZZ_SECONDS:-15}s" >&2
  "$BIN/$path" -max_total_time="${VOW_FUZZ_SECONDS:-15}" -print_final_stats=1 "$corpus" 2>&1 |
    grep -E "^(Done|stat::number_of_executed_units)|ERROR|SUMMARY" >&2
  rm -rf "$corpus"
done
echo "== all tests passed" >&2
