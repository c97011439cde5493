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
// Trust: the handler grants nothing. Every call it makes the worker could make itself:
// the NULL form is allowed everywhere; the re-issued call and the probe below are made at
// the trampoline, which is the worker's own code (the re-issued call reaches the broker,
// the probe reads the worker's own memory). A worker that forges the signal, jumps to the
// trampoline or races its own memory only changes its own answers. One widening, for
// workers that hold `proc` only: a child it forks inherits the filter with the worker's
// pid in it, so by jumping to the trampoline the child can read its parent's memory (it
// could not before: ptrace and process_vm_readv are otherwise always denied).
//
// Reading the path's first byte must not fault on a hostile or unmapped pointer: the
// kernel copies it with process_vm_readv(own pid, ..., 1 byte), which the program allows
// only at the trampoline, for the worker's own pid, with flags 0 (reading one's own
// memory grants nothing); EFAULT means unreadable. No fd, no lock: each thread probes
// with its own stack buffer. A process forked from the worker (promise proc) inherits
// the worker's pid in its filter, so it skips the probe and asks the broker.
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
// `address`. Returns how many immediates it rewrote: kStatTrampolinePatchSites (4) for a
// stat-trap program, 0 for any other. Call after PatchSelfPid().
size_t PatchStatTrampoline(sock_filter* code, size_t len, uint64_t address);

// Records the calling process as the one whose pid the program was patched with (the
// probe's pid). Call in the process that loads the filter, after PatchSelfPid().
void PrepareStatTrap();

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
