// The fd-only stat fast path of a forked worker. Runs in the worker, locked; everything
// here is async-signal-safe, heap-free and correct with several threads.
//
// glibc's fstat(fd) is newfstatat(fd, "", st, AT_EMPTY_PATH): a path argument, which
// the filter cannot read. A forked worker's program (BpfProgram::stat_trap) therefore
// traps every newfstatat/statx with a non-NULL path (SECCOMP_RET_TRAP | kStatTrapData)
// unless it was made at the trampoline's syscall instruction; HandleStatTrap(), called
// from the worker's SIGSYS handler, then:
//   - AT_EMPTY_PATH set and the path's first byte NUL: issues the same call with a NULL
//     path (the fd-only form the filter ALLOWs; Linux >= 6.11 reads NULL as ""), so the
//     kernel answers for the fd at the cost of one signal delivery;
//   - anything else (a real path, no AT_EMPTY_PATH, an unreadable pointer, or a probe
//     that cannot be made): re-issues the call unchanged at the trampoline, which the
//     filter sends to the broker (user notification), as it sent every stat before.
// Trust: the handler grants nothing. Both calls it may make are calls the worker could
// make itself (the NULL form is allowed everywhere, the trampoline is in the worker's
// own code and leads to the broker), so a worker that forges the signal, jumps to the
// trampoline or scribbles on the probe pipe only changes its own answers.
//
// Reading the path's first byte must not fault on a hostile or unmapped pointer: the
// kernel copies it for us with write(probe, path, 1) into a private non-blocking pipe
// made before the filter (EFAULT: unreadable), and read() gives it back. One probe at a
// time per process (a spin lock; SIGSYS handlers run with every other signal blocked,
// so a thread never re-enters it); a process forked from the worker (promise proc) shares
// the pipe but not the lock, so it skips the probe and asks the broker.
#ifndef VOW_WORKER_STAT_TRAP_H_
#define VOW_WORKER_STAT_TRAP_H_

#include <linux/filter.h>
#include <signal.h>

#include <cstddef>
#include <cstdint>

namespace vow {

// The address the kernel reports as seccomp_data.instruction_pointer (and si_call_addr)
// for a call made by the trampoline: the instruction after its syscall instruction. The
// same in the broker and in every worker it forks (fork keeps the address space).
uint64_t StatTrampolineAddress();

// Rewrites the trampoline placeholders (policies/stat_trap_abi.h) of `code` with
// `address`. Returns how many immediates it rewrote: 2 for a stat-trap program, 0 for
// any other. Call after PatchSelfPid().
size_t PatchStatTrampoline(sock_filter* code, size_t len, uint64_t address);

// Makes the probe pipe (non-blocking, close-on-exec, at the lowest free fds) and records
// the calling process as its owner. Call once, before the filter is loaded. 0 or -errno.
int PrepareStatTrap();

// For a SIGSYS handler: if `info` is the filter's stat trap (SYS_SECCOMP, si_errno ==
// kStatTrapData, newfstatat or statx of the native arch), answers the call as the file
// comment says, stores the result (or -errno) in the return register of `context` and
// returns true. Otherwise changes nothing and returns false (the caller chains on:
// the penalty-trap reporter, or the default action). Preserves errno.
bool HandleStatTrap(const siginfo_t* info, void* context);

// The trampoline: syscall `nr` with six arguments, made at StatTrampolineAddress().
// Returns the raw result (-errno on failure; errno is not touched).
extern "C" long VowStatTrampoline(long nr, long a0, long a1, long a2, long a3, long a4,
                                  long a5);

}  // namespace vow

#endif  // VOW_WORKER_STAT_TRAP_H_
