#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test. See README.md.
#   1. every test target: bazel test //...
#   2. again under AddressSanitizer + UndefinedBehaviorSanitizer (--config=asan): the
#      tests that do not fork with leak detection on, the cross-process ones without
#      (the exact lists are below; server_test is left out, see README);
#   3. each libFuzzer target for VOW_FUZZ_SECONDS (default 15) seconds (clang, in its own
#      Bazel output base so the gcc build above is not reconfigured).
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup.sh
vow_setup

echo "== 1/3 bazel test //..." >&2
bazel test //... "$@"

echo "== 2/3 sanitizers (ASan + UBSan)" >&2
# a) Tests that never fork on purpose, with leak detection on: every decoder of worker
#    bytes (request, channel, wire format, fs/net policies, the policy file, the seed
#    replays of the fuzzers) and the oracle's own parsers (and its worker-verdict decoder).
bazel test --config=asan --test_env=ASAN_OPTIONS=detect_leaks=1:handle_segv=0 \
  //ipc:channel_test //broker:request_test //broker:fs_policy_test //broker:net_policy_test \
  //broker:clock_policy_test //broker:policy_check_test //broker:audit_log_test \
  //broker:path_call_test //broker:namespace_stock_test \
  //broker:request_fuzzer_replay_test //broker:fs_policy_fuzzer_replay_test \
  //policies:policy_file_test //policies:policy_file_fuzzer_replay_test \
  //examples/x509_oracle:json_test //examples/x509_oracle:limbo_test \
  //examples/x509_oracle:protocol_test //examples/x509_oracle:verdict_fuzzer_replay_test "$@"
# b) Cross-process tests with forked workers (they _exit or are killed, so no leak
#    report): the broker, the pool, hostile path calls (the path-call handler decoding
#    worker registers and memory), calls stuck in the kernel past the broker's end
#    (call_deadline_test), the C wire codec, OpenSSL under the broker.
#    Not here: tests that EXEC a sanitized worker binary (exec_worker_test,
#    broker_checks_test, hard_target_test, conformance_test): the broker's child loads
#    the worker's filter before execve, and the ASan runtime's own start-up
#    (setrlimit(RLIMIT_CORE), a LeakSanitizer thread) is outside `stdio`. Their broker
#    side is the same code these tests run. Nor //examples/x509_oracle:server_test and
#    :oracle_test (clang 14's ASan allocator is not fork-safe in a multi-threaded
#    parent: a pooled worker can hang; see README, Known limits).
bazel test --config=asan \
  //tests:broker_test //tests:worker_pool_test //tests:spawn_test //tests/conformance:wire_test \
  //tests:path_calls_test //tests:hostile_test //tests:call_deadline_test \
  //examples/x509_oracle:verify_test //examples/x509_oracle:verify_syscalls_test "$@"

echo "== 3/3 fuzzers" >&2
FUZZ_BASE="${HOME}/.cache/bazel-vow-fuzz-$(pwd | md5sum | cut -c1-8)"
FUZZERS=(//broker:request_fuzzer //broker:fs_policy_fuzzer //broker:path_call_fuzzer
  //policies:policy_file_fuzzer
  //examples/parsers:fuzz_png //examples/parsers:fuzz_jpeg //examples/parsers:fuzz_gif
  //examples/parsers:fuzz_webp //examples/parsers:fuzz_tiff //examples/parsers:fuzz_font
  //examples/parsers:fuzz_archive //examples/x509_oracle:verdict_fuzzer)
CC=clang bazel --output_base="$FUZZ_BASE" build --config=fuzz "${FUZZERS[@]}"
BIN="$FUZZ_BASE/execroot/vow/bazel-out/k8-opt/bin"
# Each fuzzer starts from its checked-in seeds (copied: the fuzzer adds to its corpus);
# any finding (crash, sanitizer report, failed invariant, timeout, leak) fails the stage,
# printing the fuzzer's own report and the file that reproduces it.
declare -A SEEDS=([//broker:request_fuzzer]=broker/testdata/request_fuzzer_corpus
                  [//broker:fs_policy_fuzzer]=broker/testdata/fs_policy_fuzzer_corpus
                  [//policies:policy_file_fuzzer]=policies/testdata/policy_file_fuzzer_corpus
                  [//examples/x509_oracle:verdict_fuzzer]=examples/x509_oracle/testdata/verdict_fuzzer_corpus)
declare -A DICTS=([//broker:fs_policy_fuzzer]=broker/fs_policy_fuzzer.dict
                  [//policies:policy_file_fuzzer]=policies/policy_file_fuzzer.dict)
FUZZ_FAILED=0
for target in "${FUZZERS[@]}"; do
  path="${target#//}"
  path="${path/://}"
  corpus="$(mktemp -d)"
  artifacts="$(mktemp -d)"
  seeds="${SEEDS[$target]:-}"
  if [[ -n "$seeds" && -d "$seeds" ]]; then cp "$seeds"/* "$corpus"/; fi
  dict=()
  [[ -n "${DICTS[$target]:-}" ]] && dict=(-dict="${DICTS[$target]}")
  echo "fuzzing $target for ${VOW_FUZZ_SECONDS:-15}s" >&2
  log="$artifacts/fuzz.log"
  if "$BIN/$path" -max_total_time="${VOW_FUZZ_SECONDS:-15}" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "${dict[@]}" "$corpus" >"$log" 2>&1; then
    grep -E "^(Done|stat::number_of_executed_units)" "$log" >&2 || true
  else
    FUZZ_FAILED=1
    echo "FUZZ FAILURE in $target; the fuzzer said:" >&2
    grep -v -E "^#[0-9]+|^INFO: " "$log" | tail -40 >&2
    for crash in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* \
        "$artifacts"/oom-*; do
      [[ -e "$crash" ]] || continue
      kept="/tmp/vow-fuzz-$(basename "$path")-$(basename "$crash")"
      cp "$crash" "$kept"
      echo "reproduce with: $BIN/$path $kept" >&2
    done
  fi
  rm -rf "$corpus" "$artifacts"
done
if [[ $FUZZ_FAILED -ne 0 ]]; then
  echo "== fuzz stage FAILED" >&2
  exit 1
fi
echo "== all tests passed" >&2
