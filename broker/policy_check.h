// Refuses a bad Policy before any worker starts, with an error that names the rule.
// Runs in the privileged broker (or in a tool that checks policy files); the policy is
// trusted configuration, but a mistake in it must be an error, not a surprise at run time.
#ifndef VOW_BROKER_POLICY_CHECK_H_
#define VOW_BROKER_POLICY_CHECK_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "policies/policy.h"
#include "worker/layers.h"

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
//  - exec_promises (if set): `exec` among the promises, `stdio` among them, and a subset of
//    the promises (a seccomp filter can only narrow across execve);
//  - layers: known modes; pidns on or off, never automatic; +userns only with an
//    identity drop (identity keep stays in the broker's user namespace);
//  - identity: a known kind; explicit ids neither 0 (root's files without root's
//    capabilities: use kKeep) nor 4294967295 (the kernel's "unchanged");
//  - limits: max_message_bytes 0 (ipc's maximum) or 512..65536; max_open_fds 0 (no limit)
//    or 8..2^20; memory_bytes 0 or at least 16 MiB (a forked worker carries the
//    broker's mappings; less cannot work); wall_time not negative.
// Whether each rule path exists is checked by FsPolicy::Create(), which opens it;
// Broker::Prepare calls both, this one first.
absl::Status ValidatePolicy(const Policy& policy);

// The layers a worker under `policy` gets on a kernel with `support` (ProbeLayers()):
// kAuto layers are on where the kernel has them and off where it does not; kOn layers the
// kernel lacks, and an identity drop without root, are FailedPrecondition naming the
// layer ("layers: +netns is required, but netns: unshare(CLONE_NEWNET) is not allowed
// here"). The result has no files or fds yet: the spawn adds the loader and the program.
// `policy` must have passed ValidatePolicy().
absl::StatusOr<LayerSpec> ResolveLayers(const Policy& policy, const LayerSupport& support);

}  // namespace vow

#endif  // VOW_BROKER_POLICY_CHECK_H_
