// The promise table: for each promise, the syscalls it allows (by libseccomp NAME, so
// each architecture resolves its own numbers and simply lacks the ones it does not
// have, e.g. `open` and `poll` on aarch64) and the argument conditions under which it
// allows them. This table IS the documentation of what a promise means: the compiler
// (promise_compiler.h) turns it into seccomp-BPF, PromiseAllowing() evaluates it in C++
// for reports, and `bazel run //policies:explain` prints it.
//
// Trusted data, used by the broker (compiling, reporting). Never built from worker bytes.
//
// Semantics: a syscall is allowed if ANY rule of ANY held promise matches it; a rule
// matches if ALL of its conditions hold. A condition is ((arg & mask) == value),
// compared on the low 32 bits of the argument register for integer arguments (the
// kernel truncates `int`/`unsigned int` arguments, so garbage in the high half cannot
// dodge a check and legitimate calls with garbage there are not refused) or on all 64
// bits for pointers. Every constant used below has the same value on x86-64 and aarch64.
#ifndef VOW_POLICIES_PROMISE_TABLE_H_
#define VOW_POLICIES_PROMISE_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "policies/promises.h"
#include "policies/self_pid.h"

namespace vow {

struct ArgCondition {
  enum class Width : uint8_t {
    kLow32,   // integer argument: only the low 32 bits are compared
    kFull64,  // pointer argument: all 64 bits
  };
  int arg = 0;  // 0..5
  uint64_t mask = 0;
  uint64_t value = 0;
  Width width = Width::kLow32;
  // `value` is the calling process's own pid (kSelfPidPlaceholder in the BPF).
  bool self_pid = false;
  std::string text;  // human-readable, e.g. "cmd == TIOCGWINSZ"

  // Evaluates the condition on real arguments. `pid` is the caller's pid for self_pid
  // conditions; 0 means unknown, and then a self_pid condition does not hold.
  bool Matches(const uint64_t args[6], uint32_t pid) const;
};

struct SyscallRule {
  std::string syscall;                   // libseccomp name, e.g. "newfstatat"
  std::vector<ArgCondition> conditions;  // all must hold; each on a distinct argument
  bool Matches(const uint64_t args[6], uint32_t pid) const;
  // "any arguments" or the conditions joined with " && ".
  std::string ConditionText() const;
};

struct PromiseEntry {
  Promise promise;
  std::string summary;
  std::vector<SyscallRule> rules;  // alternatives (several rules for one syscall = OR)
};

// Syscalls that libc (or a runtime) probes and falls back from: answered ENOSYS under
// every penalty, never counted as a violation. One exception: when a held promise's
// table entry lists the syscall (only `thread` lists `rseq`), the promise wins.
struct EnosysEntry {
  std::string syscall;
  std::string reason;
};

// Syscalls the kernel never decides for a worker: the filter sends each one to the
// broker (seccomp user notification), which reads the path from the worker's memory,
// checks the promise the table gives for it and the broker's rules, performs the call
// itself and answers with its result. Path calls are never fatal as such.
struct BrokeredEntry {
  std::string syscall;
  std::string reason;
  bool exec_image_only = false;  // only in exec'd images (see ProgramVariant)
};
const std::vector<BrokeredEntry>& BrokeredSyscalls();
// True for a syscall every program sends to the broker (not the exec-image-only ones).
bool IsBrokeredSyscall(absl::string_view name);

// What a freshly exec'd image needs before main (the dynamic loader and libc's start-up:
// the thread pointer, the tid address, the robust-futex list), allowed in exec'd images
// on top of their promises. Libraries are opened and mapped through the broker.
const std::vector<std::string>& ExecStartupSyscalls();

// Indexed by static_cast<int>(Promise); kPromiseCount entries, in vocabulary order.
const std::vector<PromiseEntry>& PromiseTable();
const PromiseEntry& PromiseTableEntry(Promise p);
const std::vector<EnosysEntry>& EnosysSyscalls();
// ioctls answered EOPNOTSUPP under every promise set: a reflink (FICLONE*) or a dedupe
// between two fds the worker holds. coreutils' cp (>= 9) tries FICLONE first and copies
// with read/write when the file system cannot: killing it there left an empty copy
// (review h72). Nothing is done: only the errno.
struct UnsupportedIoctl {
  uint32_t cmd;
  const char* name;
};
const std::vector<UnsupportedIoctl>& UnsupportedIoctls();
// What a set of promises lets a worker reach in its own network / IPC namespace: whether
// any held promise's rule names a syscall that creates a socket other than an anonymous
// connected AF_UNIX pair, or gives a socket an address, a connection or an option
// (socket, socketpair of another domain or type, bind, connect, listen, accept, accept4,
// setsockopt, socketcall), resp. any System V IPC or POSIX message queue syscall.
// When neither holds, a worker cannot name, create or find anything in those namespaces
// (README "Spawn, round 7"), so the broker may let the workers of one policy share one
// pair (PreparedPolicy::share_net_ipc, which also looks at the penalty, the identity and
// the filesystem rules). Table lookups only; true errs on the side of a fresh pair.
// `table`: PromiseTable() (tests pass their own).
bool PromisesReachNetns(PromiseSet promises, const std::vector<PromiseEntry>& table);
bool PromisesReachIpcns(PromiseSet promises, const std::vector<PromiseEntry>& table);

// Syscalls that no promise allows, ever (always the penalty). Listed for documentation
// and checked by tests against the table.
const std::vector<std::string>& AlwaysDeniedSyscalls();

}  // namespace vow

#endif  // VOW_POLICIES_PROMISE_TABLE_H_
