#include "broker/learn.h"

#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "policies/promise_compiler.h"

#include <map>
#include <optional>

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
  uint32_t bits = minimal->bits() | held.bits();
  // Path calls the broker performed in learning mode: their promise, and a rule for the
  // directory they were in.
  std::map<std::string, PathRule> dirs;
  for (const Refusal& r : result.refusals) {
    if (!r.learning) continue;
    std::optional<Promise> p = PromiseFromName(r.needed);
    if (p.has_value()) bits |= 1u << static_cast<int>(*p);
    std::string syscall = r.call.substr(0, r.call.find('('));
    if (seen.insert(syscall + "|" + r.needed).second) {
      absl::StrAppend(&out.report, syscall, " -> ", r.needed, "\n");
    }
    if (r.path.empty() || r.path[0] != '/') continue;
    size_t slash = r.path.find_last_of('/');
    std::string dir = slash == 0 ? "/" : r.path.substr(0, slash);
    PathRule& rule = dirs[dir];
    rule.path = dir;
    if (r.letter == 'r') rule.read = true;
    if (r.letter == 'w') rule.write = true;
    if (r.letter == 'c') rule.create = true;
  }
  for (auto& [dir, rule] : dirs) out.rules.push_back(rule);
  out.promises = PromiseSet::FromBits(bits);
  return out;
}

}  // namespace vow
