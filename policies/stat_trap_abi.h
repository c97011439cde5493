// The contract between the compiled filter (broker side, promise_compiler.cc) and the
// forked worker's SIGSYS handler (worker/stat_trap.h) for the fd-only stat fast path.
// Both sides include it; nothing here runs.
//
// A forked worker's program sends newfstatat/statx with a non-NULL path to
// SECCOMP_RET_TRAP | kStatTrapData, unless the call was made by the worker's trampoline
// (seccomp_data.instruction_pointer == the address after its syscall instruction): then
// to the broker (SECCOMP_RET_USER_NOTIF), as every path call. The broker compiles before
// fork and caches the program per policy, so the address is not compiled in: the
// program holds two placeholder immediates (the low and the high 32 bits of the
// address), and the worker rewrites them with its own trampoline's address before it
// loads the program (PatchStatTrampoline()). Each placeholder is the k of two `jeq`s: the
// stat block's, and the probe's (process_vm_readv of the worker's own memory, allowed
// only at the trampoline: how the handler reads a path's first byte without faulting).
#ifndef VOW_POLICIES_STAT_TRAP_ABI_H_
#define VOW_POLICIES_STAT_TRAP_ABI_H_

#include <stdint.h>

namespace vow {

// Unpatched, they spell 0x7ff0ca12'7ff0ca11: not a canonical user-space address on
// x86-64 (above 2^47) nor on aarch64 (above 2^52), so an unpatched program traps every
// stat with a path (fail closed: without the handler, SIGSYS ends the worker).
inline constexpr uint32_t kStatTrampolineLowPlaceholder = 0x7ff0ca11;
inline constexpr uint32_t kStatTrampolineHighPlaceholder = 0x7ff0ca12;

// How many immediates a stat-trap program holds for the address (two per half).
inline constexpr unsigned kStatTrampolinePatchSites = 4;

// SECCOMP_RET_DATA of the stat trap: the kernel hands it to the handler as si_errno, which
// tells it apart from a penalty-trap violation (SECCOMP_RET_TRAP with data 0).
inline constexpr uint16_t kStatTrapData = 0x5354;  // "ST"

}  // namespace vow

#endif  // VOW_POLICIES_STAT_TRAP_ABI_H_
