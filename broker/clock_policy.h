// The broker's answer to a worker's clock request. Runs in the privileged broker; the
// rule is trusted (from the policy), the request carries nothing but its kind.
#ifndef VOW_BROKER_CLOCK_POLICY_H_
#define VOW_BROKER_CLOCK_POLICY_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "policies/policy.h"

namespace vow {

// The time the worker is told:
//   kReal:   absl::Now() (the broker's CLOCK_REALTIME);
//   kFixed:  rule.fixed, always;
//   kOffset: absl::Now() + rule.offset;
//   kNone:   ErrnoStatus(EPERM, "clock rule is none").
// A rule whose kind is out of range, or whose answer is not a finite time (an infinite
// fixed time or offset), gives ErrnoStatus(EINVAL, ...); ValidatePolicy() refuses both.
absl::StatusOr<absl::Time> ClockNow(const ClockRule& rule);

}  // namespace vow

#endif  // VOW_BROKER_CLOCK_POLICY_H_
