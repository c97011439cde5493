#ifndef VOW_BASE_RAW_SYSCALL_H_
#define VOW_BASE_RAW_SYSCALL_H_

// A system call made inline, without libc: the kernel's result as is (>= 0, or -errno),
// errno untouched. For the lock-down path of a freshly cloned worker, where every page of
// libc code it runs for the first time costs a page fault (~15-20 us on the project's VM:
// README "2026-12-05, spawn: where a worker's CPU goes"): prctl, getppid and errno each sat
// on a page of their own. Not for cancellable calls (no cancellation point here).

#include <errno.h>
#include <unistd.h>

namespace vow {

inline long RawSyscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
                       long a5 = 0, long a6 = 0) {
#if defined(__x86_64__)
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#else
  const long ret = syscall(nr, a1, a2, a3, a4, a5, a6);
  return ret == -1 ? -(errno != 0 ? errno : EIO) : ret;
#endif
}

}  // namespace vow

#endif  // VOW_BASE_RAW_SYSCALL_H_
