// Refuses a bad Policy before any worker starts, with an error that names the rule.
// Runs in the privileged broker (or in a tool that checks policy files); the policy is
// trusted configuration, but a mistake in it must be an error, not a surprise at run time.
#ifndef VOW_BROKER_POLICY_CHECK_H_
#define VOW_BROKER_POLICY_CHECK_H_

#include "absl/status/status.h"
#include "policies/policy.h"

namespace vow {

inline constexpr uint32_t kMinMessageBytes = 512;
inline constexpr uint32_t kMaxMessageBytesLimit = 64 * 1024;  // ipc's kMaxMessageBytes
inline constexpr uint32_t kMinOpenFds = 8;
inline constexpr uint32_t kMaxOpenFds = 1 << 20;  // the kernel's default fs.nr_open
inline constexpr uint64_t kMinMemoryBytes = 16ull << 20;

// Checks, without touching the filesystem or the network (InvalidArgument, the message
// naming the part: "paths[2] \"/etc//x\": ...", "connect rule 1 (...): ...", "clock: ...",
// "limits.max_message_bytes: ...", "promises: ...", "penalty: ..."):
//  - promises: include `stdio`;
//  - penalty: a known value;
//  - paths: CheckRulePathSyntax() (absolute, normalized: no `.`/`..` components, no `//`,
//    no trailing slash except "/", no NUL, shorter than PATH_MAX), at least one of r/w/x/c,
//    no two rules with the same path;
//  - connects: CheckConnectRule() (the same checks as NetPolicy::Create);
//  - clock: a known kind; kFixed: a time within 1970-01-01..9999-12-31 UTC; kOffset: a
//    finite offset of at most 100 years either way;
//  - limits: max_message_bytes 0 (ipc's maximum) or 512..65536; max_open_fds 0 (no limit)
//    or 8..2^20; memory_bytes 0 or at least 16 MiB (a forked worker carries the
//    broker's mappings; less cannot work); wall_time not negative.
// Whether each rule path exists is checked by FsPolicy::Create(), which opens it;
// Broker::Prepare calls both, this one first.
absl::Status ValidatePolicy(const Policy& policy);

}  // namespace vow

#endif  // VOW_BROKER_POLICY_CHECK_H_
