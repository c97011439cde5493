// The clock of vow's own deadlines, limits and rates: CLOCK_MONOTONIC as an absl::Time, so
// that a step of the system clock neither ends a wait early nor extends it. Only
// differences between two readings, and deadlines made from one, mean anything: never mix
// it with absl::Now().
#ifndef VOW_BASE_MONOTONIC_H_
#define VOW_BASE_MONOTONIC_H_

#include <time.h>

#include "absl/time/time.h"

namespace vow {

inline absl::Time MonotonicNow() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::TimeFromTimespec(ts);
}

}  // namespace vow

#endif  // VOW_BASE_MONOTONIC_H_
