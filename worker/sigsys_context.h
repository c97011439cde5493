#ifndef VOW_WORKER_SIGSYS_CONTEXT_H_
#define VOW_WORKER_SIGSYS_CONTEXT_H_

// The worker side of a SECCOMP_RET_TRAP: the refused call's arguments, read from the
// signal's saved registers, and the result the call returns when the handler does.
// Async-signal-safe (register reads and writes only). Used by both SIGSYS cases of the
// worker: the penalty-trap reporter (worker/lockdown.cc) and the fd-only stat fast path
// (worker/stat_trap.cc).

#include <signal.h>
#include <ucontext.h>

#include <cstdint>

namespace vow {

// The six syscall arguments of the trapped call, in the kernel's order.
inline void SigsysArgs(const void* context, uint64_t args[6]) {
  const ucontext_t* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
  const greg_t* r = uc->uc_mcontext.gregs;
  args[0] = static_cast<uint64_t>(r[REG_RDI]);
  args[1] = static_cast<uint64_t>(r[REG_RSI]);
  args[2] = static_cast<uint64_t>(r[REG_RDX]);
  args[3] = static_cast<uint64_t>(r[REG_R10]);
  args[4] = static_cast<uint64_t>(r[REG_R8]);
  args[5] = static_cast<uint64_t>(r[REG_R9]);
#elif defined(__aarch64__)
  for (int i = 0; i < 6; ++i) args[i] = uc->uc_mcontext.regs[i];
#else
#error "vow: SigsysArgs knows x86_64 and aarch64 only"
#endif
}

// What the trapped call returns once the handler returns (a value or -errno).
inline void SetSigsysResult(void* context, long result) {
  ucontext_t* uc = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  uc->uc_mcontext.gregs[REG_RAX] = result;
#elif defined(__aarch64__)
  uc->uc_mcontext.regs[0] = static_cast<uint64_t>(result);
#endif
}

}  // namespace vow

#endif  // VOW_WORKER_SIGSYS_CONTEXT_H_
