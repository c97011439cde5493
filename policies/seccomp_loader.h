// Loading a finished seccomp-BPF program (compiled by promise_compiler.h in the broker,
// before fork). Runs in the worker, in the forked child, between fork and the worker's
// own code: everything here is async-signal-safe and allocation-free, and makes no
// syscall but seccomp(2). It sets nothing else: PR_SET_NO_NEW_PRIVS (required by the
// kernel for an unprivileged caller) is the lock-down sequence's job, before this.
#ifndef VOW_POLICIES_SECCOMP_LOADER_H_
#define VOW_POLICIES_SECCOMP_LOADER_H_

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

namespace vow {

// Installs `code` (len instructions) for every thread of the process
// (SECCOMP_FILTER_FLAG_TSYNC). When `listener_fd` is not null, also asks for a user
// notification listener (SECCOMP_FILTER_FLAG_NEW_LISTENER, with TSYNC_ESRCH so the two
// can be combined) and stores it in *listener_fd (close-on-exec; the caller owns it and
// normally hands it to the broker). Returns 0, or -errno: -EINVAL (bad program or
// len > BPF_MAXINSNS), -ESRCH (another thread could not be synchronized), -EACCES (no
// NO_NEW_PRIVS and no CAP_SYS_ADMIN), -EBUSY (a listener already exists), ...
// `code` is not modified and may be freed after the call.
int LoadSeccompProgram(const sock_filter* code, size_t len, int* listener_fd);

// Rewrites every `jeq #kSelfPidPlaceholder` (BPF_JMP|BPF_JEQ|BPF_K) immediate to `pid`,
// so kill/tgkill "self" conditions name this process. Call in the child, on the child's
// own copy of the program, before LoadSeccompProgram(). Returns how many instructions
// were patched (0 if the program has no self-pid condition).
size_t PatchSelfPid(sock_filter* code, size_t len, uint32_t pid);

}  // namespace vow

#endif  // VOW_POLICIES_SECCOMP_LOADER_H_
