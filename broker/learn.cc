#include "broker/learn.h"

#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "policies/promise_compiler.h"

namespace vow {

absl::StatusOr<LearnedPromises> LearnPromises(const WorkerResult& result, PromiseSet held) {
  std::vector<SyscallEvent> events;
  std::set<std::string> seen;
  LearnedPromises out;
  for (const Violation& v : result.violations) {
    SyscallEvent event;
    event.nr = v.nr;
    event.audit_arch = v.audit_arch != 0 ? v.audit_arch : AuditArch(NativeArch());
    for (int i = 0; i < 6; ++i) event.args[i] = v.args[i];
    events.push_back(event);
    if (seen.insert(v.syscall + "|" + v.allowed_by).second) {
      absl::StrAppend(&out.report, v.syscall, " -> ",
                      v.allowed_by.empty() ? "(no promise allows this)" : v.allowed_by, "\n");
    }
  }
  absl::StatusOr<PromiseSet> minimal = MinimalPromises(events);
  if (!minimal.ok()) return minimal.status();
  out.promises = PromiseSet::FromBits(minimal->bits() | held.bits());
  return out;
}

}  // namespace vow
