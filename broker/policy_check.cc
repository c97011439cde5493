#include "broker/policy_check.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "base/status_macros.h"
#include "broker/audit_log.h"
#include "broker/fs_policy.h"
#include "broker/net_policy.h"

namespace vow {
namespace {

absl::Status Bad(absl::string_view what, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", why));
}

absl::Status CheckPaths(const std::vector<PathRule>& paths) {
  std::set<std::string> seen;
  for (size_t i = 0; i < paths.size(); ++i) {
    const PathRule& r = paths[i];
    const std::string what =
        absl::StrCat("paths[", i, "] \"", AuditLog::EscapeBytes(r.path), "\"");
    absl::Status syntax = CheckRulePathSyntax(r.path);
    if (!syntax.ok()) return Bad(what, syntax.message());
    // A rule with no letters is a deny rule (`unveil PATH none`): the most specific rule
    // decides, so it closes its subtree even beneath a broader rule.
    if (!seen.insert(r.path).second) return Bad(what, "duplicate rule for the same path");
  }
  return absl::OkStatus();
}

absl::Status CheckClock(const ClockRule& clock) {
  switch (clock.kind) {
    case ClockRule::Kind::kReal:
    case ClockRule::Kind::kNone:
      return absl::OkStatus();
    case ClockRule::Kind::kFixed: {
      const absl::Time lo = absl::UnixEpoch();
      const absl::Time hi =
          absl::FromCivil(absl::CivilSecond(9999, 12, 31, 23, 59, 59), absl::UTCTimeZone());
      if (clock.fixed < lo || clock.fixed > hi) {
        return Bad("clock", absl::StrCat("fixed time ", absl::FormatTime(clock.fixed),
                                         " is outside 1970-01-01..9999-12-31"));
      }
      return absl::OkStatus();
    }
    case ClockRule::Kind::kOffset: {
      const absl::Duration max = absl::Hours(24 * 366 * 100);
      if (clock.offset < -max || clock.offset > max) {
        return Bad("clock", absl::StrCat("offset ", absl::FormatDuration(clock.offset),
                                         " is more than 100 years"));
      }
      return absl::OkStatus();
    }
  }
  return Bad("clock", absl::StrCat("unknown kind ", static_cast<int>(clock.kind)));
}

absl::Status CheckLimits(const Limits& l) {
  if (l.max_message_bytes != 0 &&
      (l.max_message_bytes < kMinMessageBytes || l.max_message_bytes > kMaxMessageBytesLimit)) {
    return Bad("limits.max_message_bytes",
               absl::StrCat(l.max_message_bytes, " is outside ", kMinMessageBytes, "..",
                            kMaxMessageBytesLimit, " (or 0 for the maximum)"));
  }
  if (l.max_open_fds != 0 && (l.max_open_fds < kMinOpenFds || l.max_open_fds > kMaxOpenFds)) {
    return Bad("limits.max_open_fds", absl::StrCat(l.max_open_fds, " is outside ", kMinOpenFds,
                                                   "..", kMaxOpenFds, " (or 0 for no limit)"));
  }
  if (l.memory_bytes != 0 && l.memory_bytes < kMinMemoryBytes) {
    return Bad("limits.memory_bytes",
               absl::StrCat(l.memory_bytes, " is below 16 MiB (or 0 for no limit)"));
  }
  if (l.wall_time < absl::ZeroDuration()) {
    return Bad("limits.wall_time", absl::StrCat(absl::FormatDuration(l.wall_time),
                                                " is negative (0 for no limit)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePolicy(const Policy& policy) {
  if (!policy.promises.contains(Promise::kStdio)) {
    return Bad("promises", absl::StrCat("\"", policy.promises.ToString(),
                                        "\" does not include stdio"));
  }
  switch (policy.penalty) {
    case Penalty::kKill:
    case Penalty::kErrno:
    case Penalty::kTrap:
    case Penalty::kLog:
      break;
    default:
      return Bad("penalty", absl::StrCat("unknown value ", static_cast<int>(policy.penalty)));
  }
  RETURN_IF_ERROR(CheckPaths(policy.paths));
  for (size_t i = 0; i < policy.connects.size(); ++i) {
    RETURN_IF_ERROR(CheckConnectRule(i, policy.connects[i]));
  }
  RETURN_IF_ERROR(CheckClock(policy.clock));
  RETURN_IF_ERROR(CheckLimits(policy.limits));
  return absl::OkStatus();
}

}  // namespace vow
