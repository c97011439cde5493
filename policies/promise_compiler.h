// Promises -> a finished seccomp-BPF program, via libseccomp. Runs in the broker (or any
// trusted process) BEFORE fork: compiling costs hundreds of microseconds and allocates;
// the worker only patches its pid in and loads the result (seccomp_loader.h).
//
// Shape of every program (for the architecture it was compiled for):
//   1. a foreign audit arch (i386 `int 0x80` on x86-64, anything else) -> KILL_PROCESS;
//      on x86-64, an x32 number (__X32_SYSCALL_BIT) -> KILL_PROCESS (libseccomp's
//      bad-arch path);
//   2. a number libseccomp 2.5.4 does not know for the arch (above the highest it
//      knows, or in a hole of the table) -> ERRNO(ENOSYS);
//   2b. a path call (BrokeredSyscalls(): open, openat, the stat family with a path,
//      access, readlink, the create/delete family, chdir, getcwd, execve) ->
//      SECCOMP_RET_USER_NOTIF, whatever the promises and the penalty: the broker reads
//      the path, applies the promises and its rules, does the call itself and answers;
//      newfstatat/statx with a NULL path (fd only) -> ALLOW; in a forked worker's
//      program (BpfProgram::stat_trap), newfstatat/statx with any other path ->
//      USER_NOTIF only if made at the worker's trampoline, else SECCOMP_RET_TRAP |
//      kStatTrapData (policies/stat_trap_abi.h): the worker's handler answers the empty
//      path from the fd and re-issues the rest at the trampoline (worker/stat_trap.h);
//      in such a program, process_vm_readv(self pid, ..., flags 0) made at the
//      trampoline -> ALLOW (the handler's fault-free read of the path's first byte);
//   3. the ENOSYS list (EnosysSyscalls(): clone3, openat2, rseq, io_uring_*...) ->
//      ERRNO(ENOSYS), whatever the penalty (unless a held promise lists the syscall:
//      only `thread` lists rseq);
//   4. a syscall some held promise allows with these arguments -> ALLOW;
//   5. anything else (a known syscall no held promise allows, or an allowed syscall
//      with refused arguments, e.g. ioctl TIOCSTI) -> the penalty's action:
//      kKill/kErrno/kLog -> SECCOMP_RET_USER_NOTIF (the broker decides), kTrap ->
//      SECCOMP_RET_TRAP (SIGSYS in the worker).
// Steps 1-2 are a short hand-written prologue prepended to libseccomp's program,
// because libseccomp sends an argument mismatch to the filter's default action: the
// default must be the penalty, so "unknown number -> ENOSYS" cannot be the default.
#ifndef VOW_POLICIES_PROMISE_COMPILER_H_
#define VOW_POLICIES_PROMISE_COMPILER_H_

#include <linux/filter.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "policies/number_space.h"
#include "policies/policy.h"
#include "policies/promises.h"

namespace vow {

enum class Arch { kX86_64, kAarch64 };
Arch NativeArch();
absl::string_view ArchName(Arch arch);  // "x86_64", "aarch64"
std::optional<Arch> ArchFromName(absl::string_view name);
uint32_t AuditArch(Arch arch);  // AUDIT_ARCH_X86_64 / AUDIT_ARCH_AARCH64

// Which process a program is for. An exec'd image (vow run, SpawnExec) also sends
// execve and mmap(PROT_EXEC) of a file to the broker, so the dynamic loader can map the
// libraries the broker opened for it; a forked worker never maps code.
enum class ProgramVariant : uint8_t { kForkedWorker, kExecImage };

struct BpfProgram {
  std::vector<sock_filter> code;  // finished program, ready for SECCOMP_SET_MODE_FILTER
  Penalty penalty = Penalty::kKill;
  // The SECCOMP_RET_* action a violation gets (derived from `penalty`, or chosen by
  // CompilePromisesWithAction()).
  uint32_t violation_action = 0;
  // What the path calls (BrokeredSyscalls()) get: SECCOMP_RET_USER_NOTIF (the broker
  // answers them), or the violation action for a program compiled without a broker.
  uint32_t brokered_action = 0;
  ProgramVariant variant = ProgramVariant::kForkedWorker;
  // code[0, prologue_size) is the hand-written prologue; libseccomp's program follows.
  size_t prologue_size = 0;
  // True for a forked worker's program served by a broker: stats with a path trap unless
  // made at the trampoline. The loader must patch the trampoline's address in
  // (PatchStatTrampoline, worker/stat_trap.h) and install the SIGSYS handler first;
  // unpatched, every stat with a path traps (without a handler SIGSYS ends the process).
  bool stat_trap = false;
  // True when violations are SECCOMP_RET_USER_NOTIF (kKill, kErrno, kLog): the loader
  // must ask for a listener fd and the broker must serve it. Without a listener the
  // kernel answers such syscalls with ENOSYS.
  bool needs_listener() const;
};

// Which generator writes the program after the prologue. kDefault: kNative for an exec'd
// image's program (compiled at every `vow run`), libseccomp's for the others. Both are
// run side by side on every syscall number by promise_compiler_test (BodiesAgree...).
enum class BodyBackend : uint8_t { kDefault, kLibseccomp, kNative };

[[nodiscard]] absl::StatusOr<BpfProgram> CompilePromises(
    PromiseSet promises, Penalty penalty, Arch arch = NativeArch(),
    ProgramVariant variant = ProgramVariant::kForkedWorker);

// As CompilePromises(), with an explicit seccomp action (SCMP_ACT_* / SECCOMP_RET_*
// value, e.g. SCMP_ACT_ERRNO(EPERM)) for violations. For tests and tools that run
// without a broker. Fails if `violation_action` is ALLOW or ERRNO(ENOSYS) (a violation
// must be distinguishable). The result's `penalty` is kErrno.
[[nodiscard]] absl::StatusOr<BpfProgram> CompilePromisesWithAction(
    PromiseSet promises, uint32_t violation_action, Arch arch = NativeArch());

// The filter the execpromises tracer (broker/exec_tracer.h) adds to an image a worker
// execs, on top of the worker's own exec-image filter (which stays: filters stack, and
// the kernel takes the strictest answer of all of them). Compiled like an exec image's
// program for `exec_promises`, except that it has no listener: path calls (and the
// loader's mmap(PROT_EXEC) of a file) are ALLOWed here so the worker's own filter sends
// them to the broker, which applies the caller's promises; a syscall only the narrower
// set refuses gets KILL_PROCESS (penalty kill), ERRNO(EPERM) (errno, trap: an unmodified
// program runs no reporter) or LOG (learning).
// The prologue's table of the syscall numbers libseccomp knows (number_space.h),
// written at build time (//policies:number_space_gen).
const NumberSpace& NumberSpaceFor(Arch arch);
// The same, scanned from the linked libseccomp now (tests compare the two).
NumberSpace ScanNumberSpaceForTesting(Arch arch);

// CompilePromises() with the body written by `backend` (tests).
[[nodiscard]] absl::StatusOr<BpfProgram> CompilePromisesWithBodyForTesting(
    PromiseSet promises, Penalty penalty, Arch arch, ProgramVariant variant,
    BodyBackend backend);

[[nodiscard]] absl::StatusOr<BpfProgram> CompileExecPromises(PromiseSet exec_promises,
                                                             Penalty penalty,
                                                             Arch arch = NativeArch());

// Thread-safe cache keyed by (promises, penalty, arch): each distinct policy is compiled
// once; later calls share the program (immutable).
class FilterCache {
 public:
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const BpfProgram>> Get(
      PromiseSet promises, Penalty penalty, Arch arch = NativeArch(),
      ProgramVariant variant = ProgramVariant::kForkedWorker);

  // How many programs it holds (for tests).
  size_t size();

 private:
  using Key = std::tuple<uint32_t, Penalty, Arch, ProgramVariant>;
  absl::Mutex mu_;
  std::map<Key, std::shared_ptr<const BpfProgram>> programs_ ABSL_GUARDED_BY(mu_);
};

// "openat", or "syscall_999" when libseccomp does not know `nr` on `arch`.
std::string SyscallName(Arch arch, int nr);
// The number of `name` on `arch`, or nullopt if the arch has no such syscall.
std::optional<int> SyscallNumber(Arch arch, absl::string_view name);

// A syscall as the kernel reports it (seccomp_data / user notification / SIGSYS).
struct SyscallEvent {
  int nr = -1;
  uint32_t audit_arch = 0;
  uint64_t args[6] = {};
  // The caller's pid, for "self" conditions of kill/tgkill; 0 = unknown (then such a
  // call counts as a signal to another process, which needs proc).
  uint32_t pid = 0;
};

// The single promise (first in vocabulary order) whose table entry allows this call
// with these arguments, or nullopt ("no promise allows this": an always-denied syscall,
// an ENOSYS-list syscall no promise lists, a foreign arch or an unknown number). Uses
// the same table the compiler compiles, so reports and the BPF agree.
std::optional<Promise> PromiseAllowing(const SyscallEvent& event);
// Every promise that would allow the event (bit per Promise).
PromiseSet PromisesAllowing(const SyscallEvent& event);

// Learning mode: the smallest promise set (ties: the one with the earliest promises in
// vocabulary order) such that every event is allowed by one of its promises. Events on
// the ENOSYS list are skipped (they need no promise). Exact (searches subsets of the
// promises that matter). Error (InvalidArgument) naming the first event no promise
// allows. The caller usually adds what the worker already holds (stdio).
[[nodiscard]] absl::StatusOr<PromiseSet> MinimalPromises(
    absl::Span<const SyscallEvent> events);

// True if `name` is on the ENOSYS list.
bool IsEnosysSyscall(absl::string_view name);

}  // namespace vow

#endif  // VOW_POLICIES_PROMISE_COMPILER_H_
