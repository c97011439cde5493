// Human-readable resolution of a promise set on one architecture: every syscall the set
// allows (name, number, argument conditions, from the promise table), the ENOSYS list,
// the unknown-number and foreign-ABI rules, and optionally the compiled BPF size.
// Trusted side (a developer tool and golden tests); no worker input.
#ifndef VOW_POLICIES_EXPLAIN_H_
#define VOW_POLICIES_EXPLAIN_H_

#include <string>

#include "absl/status/statusor.h"
#include "policies/promise_compiler.h"
#include "policies/promises.h"

namespace vow {

enum class ExplainDetail {
  kStable,    // only what the table and libseccomp's numbering decide (golden files)
  kWithBpf,   // plus the libseccomp version and the compiled program's size
};

[[nodiscard]] absl::StatusOr<std::string> ExplainPromises(PromiseSet promises, Arch arch,
                                                          ExplainDetail detail);

}  // namespace vow

#endif  // VOW_POLICIES_EXPLAIN_H_
