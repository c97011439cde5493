#include "broker/clock_policy.h"

#include <cerrno>

#include "base/syscall.h"

namespace vow {
namespace {

absl::StatusOr<absl::Time> Finite(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) {
    return ErrnoStatus(EINVAL, "clock rule gives an infinite time");
  }
  return t;
}

}  // namespace

absl::StatusOr<absl::Time> ClockNow(const ClockRule& rule) {
  switch (rule.kind) {
    case ClockRule::Kind::kReal:
      return absl::Now();
    case ClockRule::Kind::kFixed:
      return Finite(rule.fixed);
    case ClockRule::Kind::kOffset:
      return Finite(absl::Now() + rule.offset);
    case ClockRule::Kind::kNone:
      return ErrnoStatus(EPERM, "clock rule is none");
  }
  return ErrnoStatus(EINVAL, "clock rule of unknown kind");
}

}  // namespace vow
