// Violations: the worker's own reports of a refused syscall (penalty trap: its SIGSYS
// handler sends one per trapped call) and the record of every refused syscall in the
// worker's result and the audit log. Runs in the privileged process; a report is the
// worker's word, checked against its policy and rate-limited, never trusted.
#include <linux/audit.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/broker_internal.h"
#include "policies/promise_compiler.h"

namespace vow {
namespace {

constexpr size_t kMaxViolationsKept = 1000;
// Violation reports (penalty trap) a worker may send per second before it is ended.
constexpr int kMaxViolationReportsPerSecond = 100;

}  // namespace

std::string AllowedByText(const std::string& promise) {
  return promise.empty() ? "no promise allows this" : absl::StrCat("promise ", promise,
                                                                   " would allow it");
}

std::string Violation::ToString() const {
  return absl::StrCat(syscall, "(", args[0], ", ", args[1], ", ", args[2], ", ", args[3], ", ",
                      args[4], ", ", args[5], ") refused; ", AllowedByText(allowed_by),
                      from_kernel ? "" : " (reported by the worker)");
}

void Broker::Impl::RecordViolation(Worker& w, Violation v) {
  Audit(w, absl::StrCat("syscall ", v.syscall), false,
        absl::StrCat("refused by seccomp; ", AllowedByText(v.allowed_by),
                     v.from_kernel ? "" : " (reported by the worker)"));
  if (w.result.violations.size() < kMaxViolationsKept) w.result.violations.push_back(std::move(v));
}

bool Broker::Impl::HandleViolation(Worker& w, const DecodedRequest& request, UniqueFd* attached,
                                   int nfds) {
  if (w.policy->policy.penalty != Penalty::kTrap) {
    return ProtocolError(w, "a violation report outside penalty trap");
  }
  {
    absl::Time now = MonotonicNow();
    if (now - w.report_second >= absl::Seconds(1)) {
      w.report_second = now;
      w.reports_this_second = 0;
    }
    if (++w.reports_this_second > kMaxViolationReportsPerSecond) {
      End(w, WorkerResult::Kind::kLimitExceeded,
          absl::StrCat("more than ", kMaxViolationReportsPerSecond,
                       " violation reports per second"));
      return false;
    }
  }
  Violation v;
  v.nr = request.syscall;
  v.audit_arch = request.arch;
  Arch arch = request.arch == AUDIT_ARCH_AARCH64 ? Arch::kAarch64 : Arch::kX86_64;
  v.syscall = SyscallName(arch, v.nr);
  SyscallEvent event;
  event.nr = v.nr;
  event.audit_arch = request.arch;
  event.pid = static_cast<uint32_t>(w.pid);
  for (int i = 0; i < 6; ++i) event.args[i] = v.args[i] = request.args[i];
  std::optional<Promise> allowing = PromiseAllowing(event);
  v.allowed_by = allowing.has_value() ? std::string(PromiseName(*allowing)) : "";
  v.from_kernel = false;
  RecordViolation(w, std::move(v));
  return true;
}

}  // namespace vow
