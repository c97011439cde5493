#include "worker/stat_trap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "policies/stat_trap_abi.h"
#include "worker/sigsys_context.h"

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

// The trampoline. `vow_stat_trampoline_return` labels the instruction after the syscall
// instruction: the address the kernel reports for a call made here (hidden: only this
// file takes it). Arguments arrive in the C calling convention and are moved to
// the kernel's (nr first).
#if defined(__x86_64__)
asm(R"(
    .text
    .globl VowStatTrampoline
    .type VowStatTrampoline, @function
VowStatTrampoline:
    .cfi_startproc
    movq %rdi, %rax
    movq %rsi, %rdi
    movq %rdx, %rsi
    movq %rcx, %rdx
    movq %r8, %r10
    movq %r9, %r8
    movq 8(%rsp), %r9
    syscall
    .globl vow_stat_trampoline_return
    .hidden vow_stat_trampoline_return
vow_stat_trampoline_return:
    ret
    .cfi_endproc
    .size VowStatTrampoline, .-VowStatTrampoline
)");
#elif defined(__aarch64__)
asm(R"(
    .text
    .globl VowStatTrampoline
    .type VowStatTrampoline, %function
VowStatTrampoline:
    .cfi_startproc
    mov x8, x0
    mov x0, x1
    mov x1, x2
    mov x2, x3
    mov x3, x4
    mov x4, x5
    mov x5, x6
    svc #0
    .globl vow_stat_trampoline_return
    .hidden vow_stat_trampoline_return
vow_stat_trampoline_return:
    ret
    .cfi_endproc
    .size VowStatTrampoline, .-VowStatTrampoline
)");
#else
#error "vow supports x86-64 and aarch64 only"
#endif

extern "C" const char vow_stat_trampoline_return[];

namespace vow {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kNativeAuditArch = AUDIT_ARCH_X86_64;
#else
constexpr uint32_t kNativeAuditArch = AUDIT_ARCH_AARCH64;
#endif

// Set once by PrepareStatTrap() before the filter exists; read-only afterwards.
pid_t g_owner = -1;

enum class FirstByte { kNul, kOther, kUnknown };

// The first byte of `path`, copied by the kernel (see the header).
FirstByte ProbeFirstByte(const char* path) {
  // A process forked from the worker (promise proc) still has the worker's pid in its
  // filter: its probe would not be allowed.
  if (g_owner <= 0 || syscall(SYS_getpid) != g_owner) return FirstByte::kUnknown;
  char byte = 1;
  struct iovec local = {&byte, 1};
  struct iovec remote = {const_cast<char*>(path), 1};
  const long n = VowStatTrampoline(SYS_process_vm_readv, g_owner,
                                   reinterpret_cast<long>(&local), 1,
                                   reinterpret_cast<long>(&remote), 1, 0);
  if (n != 1) return FirstByte::kUnknown;  // EFAULT: unreadable (or anything else)
  return byte == '\0' ? FirstByte::kNul : FirstByte::kOther;
}

}  // namespace

uint64_t StatTrampolineAddress() {
  return reinterpret_cast<uint64_t>(vow_stat_trampoline_return);
}

size_t PatchStatTrampoline(sock_filter* code, size_t len, uint64_t address) {
  size_t patched = 0;
  for (size_t i = 0; i < len; ++i) {
    if (code[i].code != (BPF_JMP | BPF_JEQ | BPF_K)) continue;
    if (code[i].k == kStatTrampolineLowPlaceholder) {
      code[i].k = static_cast<uint32_t>(address);
      ++patched;
    } else if (code[i].k == kStatTrampolineHighPlaceholder) {
      code[i].k = static_cast<uint32_t>(address >> 32);
      ++patched;
    }
  }
  return patched;
}

void PrepareStatTrap() { g_owner = static_cast<pid_t>(syscall(SYS_getpid)); }

bool HandleStatTrap(const siginfo_t* info, void* context) {
  if (info == nullptr || context == nullptr || info->si_signo != SIGSYS ||
      info->si_code != SYS_SECCOMP || info->si_errno != kStatTrapData ||
      info->si_arch != kNativeAuditArch ||
      (info->si_syscall != SYS_newfstatat && info->si_syscall != SYS_statx)) {
    return false;
  }
  const int saved_errno = errno;
  uint64_t raw[6];
  SigsysArgs(context, raw);
  long args[6];
  for (int i = 0; i < 6; ++i) args[i] = static_cast<long>(raw[i]);
  const long nr = info->si_syscall;
  // newfstatat(dirfd, path, st, flags); statx(dirfd, path, flags, mask, buf).
  const long flags = nr == SYS_newfstatat ? args[3] : args[2];
  long path_arg = args[1];
  if ((flags & AT_EMPTY_PATH) != 0 &&
      ProbeFirstByte(reinterpret_cast<const char*>(args[1])) == FirstByte::kNul) {
    path_arg = 0;  // the fd-only form: ALLOWed by the filter, answered by the kernel
  }
  // With a NULL path the filter allows the call before it looks at the address; with a
  // path, the trampoline's address sends it to the broker.
  const long result =
      VowStatTrampoline(nr, args[0], path_arg, args[2], args[3], args[4], args[5]);
  SetSigsysResult(context, result);
  errno = saved_errno;
  return true;
}

}  // namespace vow
