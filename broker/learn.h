// Learning mode: from what a worker did under penalty log, the smallest promise set that
// covers it. Runs in the broker, on the violations the kernel reported (seccomp user
// notifications), never on the worker's own word unless the penalty was trap.
#ifndef VOW_BROKER_LEARN_H_
#define VOW_BROKER_LEARN_H_

#include <string>

#include "absl/status/statusor.h"
#include "broker/broker.h"
#include "policies/promises.h"

namespace vow {

struct LearnedPromises {
  PromiseSet promises;  // `held` plus what the violations need
  // One line per distinct refused syscall: "openat -> rpath" or "ptrace -> (no promise)".
  std::string report;
  // Path rules that would let the path calls made in learning mode through: one per
  // directory the files were in (a file's own rule where it was created or written
  // alone), letters r/w/c as used. Absolute, normalized.
  std::vector<PathRule> rules;
};

// `held`: the promises the worker already had when it ran (usually stdio). Fails with
// InvalidArgument naming the call when some violation no promise allows (a worker that
// needs ptrace cannot be described by promises; it needs redesign, not a bigger pledge).
absl::StatusOr<LearnedPromises> LearnPromises(const WorkerResult& result, PromiseSet held);

}  // namespace vow

#endif  // VOW_BROKER_LEARN_H_
