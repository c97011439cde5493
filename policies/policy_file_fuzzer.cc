// libFuzzer target for the policy text format (policy_file.h). Trusted-side code, but a
// parser is fuzzed anyway: it must never crash, hang or read out of bounds, and every
// policy it accepts must survive FormatPolicy -> ParsePolicy as the same Policy struct
// (every field compared, not only the text), with the canonical text a fixed point.
// Seeds: policies/testdata/policy_file_fuzzer_corpus (the example policies and more),
// replayed by //policies:policy_file_fuzzer_replay_test.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "policies/policy_file.h"

namespace {

[[noreturn]] void Die(const char* what, const std::string& text) {
  fprintf(stderr, "policy_file_fuzzer: %s\n--- formatted:\n%s\n", what, text.c_str());
  abort();
}

// Field by field; a new Policy field must be added here.
bool SamePolicy(const vow::Policy& a, const vow::Policy& b) {
  if (a.promises.ToString() != b.promises.ToString() || a.penalty != b.penalty) return false;
  if (a.paths.size() != b.paths.size() || a.connects.size() != b.connects.size()) return false;
  for (size_t i = 0; i < a.paths.size(); ++i) {
    const vow::PathRule &x = a.paths[i], &y = b.paths[i];
    if (x.path != y.path || x.read != y.read || x.write != y.write || x.exec != y.exec ||
        x.create != y.create) {
      return false;
    }
  }
  for (size_t i = 0; i < a.connects.size(); ++i) {
    const vow::ConnectRule &x = a.connects[i], &y = b.connects[i];
    if (x.transport != y.transport || x.address != y.address || x.prefix_len != y.prefix_len ||
        x.port_min != y.port_min || x.port_max != y.port_max || x.unix_path != y.unix_path) {
      return false;
    }
  }
  if (a.clock.kind != b.clock.kind || a.clock.fixed != b.clock.fixed ||
      a.clock.offset != b.clock.offset) {
    return false;
  }
  const vow::Limits &l = a.limits, &m = b.limits;
  return l.max_open_fds == m.max_open_fds && l.requests_per_second == m.requests_per_second &&
         l.max_message_bytes == m.max_message_bytes && l.cpu_seconds == m.cpu_seconds &&
         l.memory_bytes == m.memory_bytes && l.wall_time == m.wall_time;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<vow::Policy> policy = vow::ParsePolicy(text, "fuzz");
  if (!policy.ok()) {
    if (policy.status().message().empty()) Die("a refusal without a message", "");
    return 0;
  }
  const std::string formatted = vow::FormatPolicy(*policy);
  absl::StatusOr<vow::Policy> again = vow::ParsePolicy(formatted, "formatted");
  if (!again.ok()) Die(std::string(again.status().message()).c_str(), formatted);
  if (!SamePolicy(*policy, *again)) Die("Parse(Format(p)) is not p", formatted);
  if (vow::FormatPolicy(*again) != formatted) Die("Format is not a fixed point", formatted);
  return 0;
}
