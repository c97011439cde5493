// Clock: the time, under the policy's clock rule (a worker without `stdio`'s clock, or
// with a fixed or coarse clock, asks the broker). Runs in the privileged process; the
// request carries nothing but its id.
#include <errno.h>
#include <time.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/syscall.h"
#include "broker/broker_internal.h"
#include "broker/clock_policy.h"

namespace vow {

bool Broker::Impl::HandleClock(Worker& w, const DecodedRequest& request, UniqueFd* attached,
                               int nfds) {
  const uint64_t id = request.id;
  absl::StatusOr<absl::Time> now = ClockNow(w.policy->policy.clock);
  if (!now.ok()) {
    Audit(w, "clock", false, std::string(now.status().message()));
    return SendError(w, id, ErrnoOrDefault(now.status(), EPERM), now.status().message());
  }
  int rc = SendTime(w.channel, id, *now);
  if (rc != 0) return SendFailed(w, rc, "a response");
  Audit(w, "clock", true, absl::FormatTime(absl::RFC3339_full, *now, absl::UTCTimeZone()));
  return true;
}

}  // namespace vow
