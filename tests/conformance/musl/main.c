/* The musl conformance worker: a static musl binary that is an exec'd vow worker. Locks
 * itself down with the C implementation of the protocol (vow_lockdown.h), then runs one
 * case (../cases.h). Nothing is warmed before lock-down: musl reads no zone file when
 * TZ is a POSIX zone such as "UTC" (see README.md). */
#include "tests/conformance/cases.h"
#include "tests/conformance/musl/vow_lockdown.h"

int main(int argc, char **argv) {
  vow_lockdown_exec_worker();
  return vow_conformance_run(argc, argv);
}
