// libFuzzer target for the policy text format (policy_file.h). Trusted-side code, but a
// parser is fuzzed anyway: it must never crash, hang or read out of bounds, and every
// policy it accepts must survive FormatPolicy -> ParsePolicy unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "policies/policy_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<vow::Policy> policy = vow::ParsePolicy(text, "fuzz");
  if (!policy.ok()) return 0;
  // The canonical form must parse, and must be a fixed point of Format(Parse(.)).
  const std::string formatted = vow::FormatPolicy(*policy);
  absl::StatusOr<vow::Policy> again = vow::ParsePolicy(formatted, "formatted");
  if (!again.ok()) abort();
  if (vow::FormatPolicy(*again) != formatted) abort();
  return 0;
}
