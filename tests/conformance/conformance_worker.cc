// The glibc conformance worker: an exec'd vow worker that locks itself down with
// vow::LockDownExecWorker() and runs one case (cases.h) named by argv[1]. Runs in the
// sandbox.
//
// One thing happens before lock-down, on purpose: tzset(). glibc reads the zone file at
// the first localtime() (it opens /usr/share/zoneinfo/$TZ, or /etc/localtime when TZ is
// unset), which a locked worker without rpath may not do. The issue allows the zone to be
// "warmed before lock-down"; vow's LockDownExecWorker() does not do it, so the worker
// does. Warming is enough only when TZ is set: with TZ unset glibc stats /etc/localtime
// again at every localtime() (tzset_internal(1)), and the worker dies of newfstatat.
// The case `localtime_cold` skips the warming to show what happens then (README.md), and
// so do the `libc_*` cases: what libc reads on its own is the broker's to serve (issue 7).
#include <string.h>
#include <time.h>

#include "tests/conformance/cases.h"
#include "worker/lockdown.h"

int main(int argc, char** argv) {
  const bool cold = argc >= 2 && (strcmp(argv[1], "localtime_cold") == 0 ||
                                  strncmp(argv[1], "libc_", 5) == 0);
  if (!cold) tzset();
  vow::LockDownExecWorker();
  return vow_conformance_run(argc, argv);
}
