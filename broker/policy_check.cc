#include "broker/policy_check.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "base/status_macros.h"
#include "broker/audit_log.h"
#include "broker/fs_policy.h"
#include "broker/net_policy.h"
#include "policies/policy_file.h"

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

absl::Status CheckExecPromises(const Policy& policy) {
  if (!policy.exec_promises.has_value()) return absl::OkStatus();
  const PromiseSet exec = *policy.exec_promises;
  const std::string what = absl::StrCat("execpromises \"", exec.ToString(), "\"");
  if (!policy.promises.contains(Promise::kExec)) {
    return Bad(what, "need the exec promise among the promises, or nothing can be exec'd");
  }
  if (!exec.contains(Promise::kStdio)) return Bad(what, "do not include stdio");
  const PromiseSet extra = PromiseSet::FromBits(exec.bits() & ~policy.promises.bits());
  if (!extra.empty()) {
    return Bad(what, absl::StrCat("name \"", extra.ToString(),
                                  "\", which the promises do not hold (a filter only narrows "
                                  "across execve)"));
  }
  return absl::OkStatus();
}

absl::Status CheckLayersAndIdentity(const Policy& policy) {
  for (int i = 0; i < kLayerCount; ++i) {
    const Layer layer = static_cast<Layer>(i);
    const LayerMode mode = policy.layers[layer];
    if (mode != LayerMode::kAuto && mode != LayerMode::kOn && mode != LayerMode::kOff) {
      return Bad(absl::StrCat("layers: ", LayerName(layer)),
                 absl::StrCat("unknown mode ", static_cast<int>(mode)));
    }
  }
  if (policy.layers[Layer::kPidns] == LayerMode::kAuto) {
    return Bad("layers: pidns", "must be on (+pidns) or off (-pidns), not automatic");
  }
  const Identity& id = policy.identity;
  switch (id.kind) {
    case Identity::Kind::kNobody:
    case Identity::Kind::kKeep:
      break;
    case Identity::Kind::kIds:
      if (id.uid == 0 || id.gid == 0) {
        return Bad("identity", absl::StrCat(id.uid, ":", id.gid,
                                            " is root's id without root's capabilities; use "
                                            "keep to stay root"));
      }
      if (id.uid == 0xffffffffu || id.gid == 0xffffffffu) {
        return Bad("identity", "4294967295 is not an id (it means \"unchanged\" to the kernel)");
      }
      break;
    default:
      return Bad("identity", absl::StrCat("unknown kind ", static_cast<int>(id.kind)));
  }
  if (id.kind == Identity::Kind::kKeep && policy.layers[Layer::kUserns] == LayerMode::kOn) {
    return Bad("layers: +userns", "needs an identity drop; identity keep stays root");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LayerSpec> ResolveLayers(const Policy& policy, const LayerSupport& support) {
  LayerSpec spec;
  spec.drop_identity = policy.identity.kind != Identity::Kind::kKeep;
  if (policy.identity.kind == Identity::Kind::kIds) {
    spec.uid = policy.identity.uid;
    spec.gid = policy.identity.gid;
  }
  if (spec.drop_identity && !support.is_root) {
    return absl::FailedPreconditionError(absl::StrCat(
        "identity: dropping to ", spec.uid, ":", spec.gid,
        " needs root; run vow as root, or write \"identity keep\" to run as yourself"));
  }
  const bool have[kLayerCount] = {support.userns && spec.drop_identity,
                                  support.mountns && support.is_root,
                                  support.netns && support.is_root,
                                  support.ipcns && support.is_root,
                                  support.utsns && support.is_root,
                                  support.pidns && support.is_root,
                                  support.landlock_abi > 0};
  bool* const fields[kLayerCount] = {&spec.userns, &spec.mountns, &spec.netns, &spec.ipcns,
                                     &spec.utsns,  &spec.pidns,   &spec.landlock};
  for (int i = 0; i < kLayerCount; ++i) {
    const LayerMode mode = policy.layers.modes[i];
    *fields[i] = mode == LayerMode::kOn || (mode == LayerMode::kAuto && have[i]);
  }
  const std::string missing = MissingLayer(spec, support);
  if (!missing.empty()) {
    const std::string name(missing.substr(0, missing.find(':')));
    const std::optional<Layer> layer = LayerFromName(name);
    return absl::FailedPreconditionError(
        layer.has_value() ? absl::StrCat("layers: +", name, " is required, but ", missing)
                          : missing);
  }
  return spec;
}

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
  RETURN_IF_ERROR(CheckExecPromises(policy));
  RETURN_IF_ERROR(CheckLayersAndIdentity(policy));
  RETURN_IF_ERROR(CheckPaths(policy.paths));
  for (size_t i = 0; i < policy.connects.size(); ++i) {
    RETURN_IF_ERROR(CheckConnectRule(i, policy.connects[i]));
  }
  RETURN_IF_ERROR(CheckClock(policy.clock));
  RETURN_IF_ERROR(CheckLimits(policy.limits));
  return absl::OkStatus();
}

}  // namespace vow
