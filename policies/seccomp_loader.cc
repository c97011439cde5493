#include "policies/seccomp_loader.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "policies/self_pid.h"

namespace vow {

int LoadSeccompProgram(const sock_filter* code, size_t len, int* listener_fd) {
  if (code == nullptr || len == 0 || len > BPF_MAXINSNS) return -EINVAL;
  sock_fprog prog;
  prog.len = static_cast<unsigned short>(len);
  prog.filter = const_cast<sock_filter*>(code);
  unsigned long flags = SECCOMP_FILTER_FLAG_TSYNC;
  if (listener_fd != nullptr) {
    flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  }
  // syscall(2) only stores errno (thread-local): async-signal-safe.
  const long rc = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (rc < 0) return -errno;
  if (listener_fd != nullptr) {
    *listener_fd = static_cast<int>(rc);
    return 0;
  }
  // With TSYNC alone, a positive result is the id of a thread that could not be
  // synchronized; the filter was not installed.
  if (rc > 0) return -ESRCH;
  return 0;
}

size_t PatchSelfPid(sock_filter* code, size_t len, uint32_t pid) {
  size_t patched = 0;
  for (size_t i = 0; i < len; ++i) {
    if (code[i].code == (BPF_JMP | BPF_JEQ | BPF_K) && code[i].k == kSelfPidPlaceholder) {
      code[i].k = pid;
      ++patched;
    }
  }
  return patched;
}

}  // namespace vow
