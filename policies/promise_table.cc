#include "policies/promise_table.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <linux/fs.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <initializer_list>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vow {
namespace {

// The table is compiled on an x86-64 host for both x86-64 and aarch64 targets: every
// constant it uses must mean the same on both (they share the asm-generic ioctl, fcntl,
// open-flag, mmap and clone values checked here).
static_assert(TCGETS == 0x5401 && TIOCGWINSZ == 0x5413 && FIONREAD == 0x541B &&
              FIONBIO == 0x5421 && FIOCLEX == 0x5451 && FIONCLEX == 0x5450);
static_assert(TIOCSTI == 0x5412 && TIOCLINUX == 0x541C);
static_assert(O_CREAT == 0100 && O_TRUNC == 01000 && O_ACCMODE == 3 && O_WRONLY == 1 &&
              O_RDWR == 2);
static_assert(PROT_EXEC == 4 && AT_EMPTY_PATH == 0x1000);
static_assert(MSG_FASTOPEN == 0x20000000 && SOCK_STREAM == 1 && SOCK_SEQPACKET == 5);
static_assert(F_DUPFD == 0 && F_GETFD == 1 && F_SETFD == 2 && F_GETFL == 3 &&
              F_SETFL == 4 && F_GETLK == 5 && F_SETLK == 6 && F_SETLKW == 7 &&
              F_DUPFD_CLOEXEC == 1030 && F_OFD_GETLK == 36 && F_OFD_SETLK == 37 &&
              F_OFD_SETLKW == 38);

// __O_TMPFILE (the bit O_TMPFILE adds to O_DIRECTORY): 020000000 on x86-64 and aarch64.
constexpr uint64_t kOTmpfileBit = 020000000;
// CLONE_DETACHED is ignored by the kernel but passed by musl's pthread_create.
constexpr uint64_t kCloneDetached = 0x00400000;
constexpr uint64_t kCloneNewAll = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                  CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                  CLONE_NEWNET;
// PR_SET_VMA (name anonymous mappings; glibc's malloc may use it): not in every header.
constexpr uint64_t kPrSetVma = 0x53564d41;

using Cond = ArgCondition;

Cond Eq(int arg, const char* arg_name, uint64_t value, const char* value_name) {
  return Cond{arg, 0xffffffffu, value & 0xffffffffu, Cond::Width::kLow32, false,
              absl::StrCat(arg_name, " == ", value_name)};
}
Cond HasBits(int arg, const char* arg_name, uint64_t bits, const char* bits_name) {
  return Cond{arg, bits, bits, Cond::Width::kLow32, false,
              absl::StrCat(arg_name, " has ", bits_name)};
}
Cond LacksBits(int arg, const char* arg_name, uint64_t bits, const char* bits_name) {
  return Cond{arg, bits, 0, Cond::Width::kLow32, false,
              absl::StrCat(arg_name, " lacks ", bits_name)};
}
Cond Masked(int arg, uint64_t mask, uint64_t value, std::string text) {
  return Cond{arg, mask & 0xffffffffu, value & 0xffffffffu, Cond::Width::kLow32, false,
              std::move(text)};
}
Cond IsNull(int arg, const char* arg_name) {
  return Cond{arg, ~uint64_t{0}, 0, Cond::Width::kFull64, false,
              absl::StrCat(arg_name, " == NULL")};
}
Cond SelfPid(int arg, const char* arg_name) {
  return Cond{arg, 0xffffffffu, kSelfPidPlaceholder, Cond::Width::kLow32, true,
              absl::StrCat(arg_name, " == own pid")};
}

struct NamedValue {
  uint64_t value;
  const char* name;
};

// Builds one promise's rules in a way that reads like the documentation.
class Entry {
 public:
  Entry(Promise p, std::string summary) { entry_.promise = p, entry_.summary = summary; }
  // Allowed with any arguments.
  Entry& Allow(std::initializer_list<const char*> names) {
    for (const char* n : names) entry_.rules.push_back(SyscallRule{n, {}});
    return *this;
  }
  // Allowed when all conditions hold.
  Entry& AllowIf(const char* name, std::vector<Cond> conditions) {
    entry_.rules.push_back(SyscallRule{name, std::move(conditions)});
    return *this;
  }
  // Allowed when argument `arg` equals one of `values` (low 32 bits).
  Entry& AllowOneOf(const char* name, int arg, const char* arg_name,
                    std::initializer_list<NamedValue> values) {
    for (const NamedValue& v : values) {
      entry_.rules.push_back(SyscallRule{name, {Eq(arg, arg_name, v.value, v.name)}});
    }
    return *this;
  }
  PromiseEntry Build() { return std::move(entry_); }

 private:
  PromiseEntry entry_;
};

#define NV(x) NamedValue { static_cast<uint64_t>(x), #x }

std::vector<PromiseEntry> BuildTable() {
  std::vector<PromiseEntry> t;

  // ---- stdio --------------------------------------------------------------------------
  // I/O on descriptors already held, memory, time, signals to oneself, ids (read only).
  t.push_back(
      Entry(Promise::kStdio,
            "I/O on descriptors already held; memory without PROT_EXEC; time; "
            "signals to itself; reading its own ids")
          .Allow({"read", "readv", "pread64", "preadv", "preadv2"})
          .Allow({"write", "writev", "pwrite64", "pwritev", "pwritev2"})
          .Allow({"poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1",
                  "epoll_ctl", "epoll_wait", "epoll_pwait"})
          .Allow({"eventfd", "eventfd2", "timerfd_create", "timerfd_settime",
                  "timerfd_gettime", "signalfd", "signalfd4"})
          // The stat family on an open fd. newfstatat/statx never reach this table
          // (BrokeredSyscalls()): with a NULL path the kernel decides, with a string
          // the broker reads it, so glibc's fstat(), newfstatat(fd, "", AT_EMPTY_PATH),
          // is answered for the fd alone and AT_EMPTY_PATH with a real path is a
          // brokered stat of that path.
          .Allow({"fstat", "fstatfs"})
          .AllowIf("newfstatat", {IsNull(1, "path")})
          .AllowIf("statx", {IsNull(1, "path")})
          .Allow({"lseek", "close", "dup", "dup2", "dup3", "ftruncate", "fsync",
                  "fdatasync", "fadvise64", "sendfile", "splice", "tee",
                  "copy_file_range"})
          .AllowOneOf("fcntl", 1, "cmd",
                      {NV(F_GETFD), NV(F_SETFD), NV(F_GETFL), NV(F_DUPFD),
                       NV(F_DUPFD_CLOEXEC)})
          // Never O_ASYNC: on a terminal it makes the kernel send SIGIO (default action:
          // terminate) to the terminal's foreground process group, i.e. to vow and the
          // rest of the shell's job, a kill the worker's own kill() could not make.
          .AllowIf("fcntl", {Eq(1, "cmd", F_SETFL, "F_SETFL"),
                             LacksBits(2, "flags", O_ASYNC, "O_ASYNC")})
          // Never TIOCSTI (pushes input into a terminal) or TIOCLINUX, under any promise.
          .AllowOneOf("ioctl", 1, "cmd",
                      {NV(FIONREAD), NV(FIONBIO), NV(FIOCLEX), NV(FIONCLEX), NV(TCGETS),
                       NV(TIOCGWINSZ)})
          .AllowIf("mmap", {LacksBits(2, "prot", PROT_EXEC, "PROT_EXEC")})
          .AllowIf("mprotect", {LacksBits(2, "prot", PROT_EXEC, "PROT_EXEC")})
          .AllowIf("pkey_mprotect", {LacksBits(2, "prot", PROT_EXEC, "PROT_EXEC")})
          .Allow({"munmap", "mremap", "madvise", "brk", "msync", "mincore"})
          .Allow({"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
                  "gettimeofday", "time", "getrandom"})
          .Allow({"exit", "exit_group", "restart_syscall"})
          .Allow({"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
                  "rt_sigpending", "rt_sigsuspend", "pause", "rt_sigtimedwait", "alarm",
                  "getitimer", "setitimer"})
          // Signals to itself only (raise()/abort() use tgkill(getpid(), gettid(), sig)).
          .AllowIf("kill", {SelfPid(0, "pid")})
          .AllowIf("tgkill", {SelfPid(0, "tgid")})
          // musl's raise()/abort() use tkill(gettid()); the main thread's tid is the pid.
          .AllowIf("tkill", {SelfPid(0, "tid")})
          .Allow({"getpid", "gettid", "getppid", "getpgrp", "getuid", "geteuid",
                  "getgid", "getegid", "getresuid", "getresgid", "getgroups"})
          .Allow({"sched_yield", "futex", "getrusage", "uname", "umask", "getcpu",
                  "sysinfo"})
          .AllowIf("sched_getaffinity", {Eq(0, "pid", 0, "0 (itself)")})
          // glibc's pthread_getattr_np() on the main thread names itself by its tid (the pid).
          .AllowIf("sched_getaffinity", {SelfPid(0, "pid")})
          // Reading its own limits only; changing them needs proc.
          .AllowIf("prlimit64", {Eq(0, "pid", 0, "0 (itself)"), IsNull(2, "new_limit")})
          .Allow({"getrlimit"})
          // Adding a seccomp filter only narrows what the caller may do (the kernel runs
          // every filter and takes the strictest answer). Flags exactly 0: NEW_LISTENER
          // would give the program a listener for its own filter, whose USER_NOTIF
          // answers win over the broker's for an equal action, and CONTINUE would then
          // let the kernel resolve a path call itself; TSYNC, LOG and SPEC_ALLOW are not
          // needed. The execpromises tracer (broker/exec_tracer.h) injects exactly this
          // call into an exec'd image, so it must pass the image's own filter.
          .AllowIf("seccomp", {Eq(0, "operation", SECCOMP_SET_MODE_FILTER,
                                  "SECCOMP_SET_MODE_FILTER"),
                               Eq(1, "flags", 0, "0")})
          // Sockets it already holds. sendto with a destination needs inet/unix/dns.
          // sendmsg's msg_name and SCM_RIGHTS live in memory seccomp cannot read: the
          // broker never hands over a socket on which an address could matter (UDP is
          // relayed over SOCK_SEQPACKET, whose kernel ignores msg_name; TCP only once
          // established). MSG_FASTOPEN is refused in every send's flags: on a TCP socket
          // whose connect failed it would connect to the address of the worker's choice.
          .Allow({"recvmsg", "recvmmsg", "recvfrom", "shutdown", "getsockname",
                  "getpeername", "getsockopt"})
          .AllowIf("sendmsg", {LacksBits(2, "flags", MSG_FASTOPEN, "MSG_FASTOPEN")})
          .AllowIf("sendmmsg", {LacksBits(3, "flags", MSG_FASTOPEN, "MSG_FASTOPEN")})
          .AllowIf("sendto", {IsNull(4, "dest_addr"),
                              LacksBits(3, "flags", MSG_FASTOPEN, "MSG_FASTOPEN")})
          // An anonymous connected pair reaches nothing (pledge's stdio allows it too).
          // Only connection-oriented types: a SOCK_DGRAM or SOCK_RAW end could be sent
          // datagrams with an address (type & 0xf; SOCK_NONBLOCK/SOCK_CLOEXEC may be set).
          .AllowIf("socketpair", {Eq(0, "domain", AF_UNIX, "AF_UNIX"),
                                  Masked(1, 0xf, SOCK_STREAM, "type & 0xf == SOCK_STREAM")})
          .AllowIf("socketpair", {Eq(0, "domain", AF_UNIX, "AF_UNIX"),
                                  Masked(1, 0xf, SOCK_SEQPACKET,
                                         "type & 0xf == SOCK_SEQPACKET")})
          .Allow({"pipe", "pipe2"})
          // Harmless prctl operations: reads, naming, and one that only tightens.
          .AllowOneOf("prctl", 0, "option",
                      {NV(PR_GET_DUMPABLE), NV(PR_GET_PDEATHSIG), NV(PR_GET_KEEPCAPS),
                       NV(PR_SET_NAME), NV(PR_GET_NAME), NV(PR_GET_SECCOMP),
                       NV(PR_CAPBSET_READ), NV(PR_GET_TIMERSLACK), NV(PR_SET_NO_NEW_PRIVS),
                       NV(PR_GET_NO_NEW_PRIVS), NV(PR_GET_THP_DISABLE),
                       NamedValue{kPrSetVma, "PR_SET_VMA"}})
          .Build());

  // ---- rpath --------------------------------------------------------------------------
  t.push_back(
      Entry(Promise::kRpath, "read-only access to paths: open for reading, stat, "
                             "list directories, readlink, chdir")
          .AllowIf("open", {Masked(1, O_ACCMODE | O_CREAT | O_TRUNC | kOTmpfileBit,
                                   O_RDONLY, "flags: O_RDONLY, no O_CREAT/O_TRUNC/O_TMPFILE")})
          .AllowIf("openat", {Masked(2, O_ACCMODE | O_CREAT | O_TRUNC | kOTmpfileBit,
                                     O_RDONLY, "flags: O_RDONLY, no O_CREAT/O_TRUNC/O_TMPFILE")})
          .Allow({"stat", "lstat", "newfstatat", "statx", "statfs", "access", "faccessat",
                  "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir",
                  "fchdir", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
                  "llistxattr", "flistxattr"})
          .Build());

  // ---- wpath --------------------------------------------------------------------------
  t.push_back(Entry(Promise::kWpath, "opening existing paths for writing; truncate")
                  .AllowIf("open", {Masked(1, O_ACCMODE | O_CREAT | kOTmpfileBit, O_WRONLY,
                                           "flags: O_WRONLY, no O_CREAT/O_TMPFILE")})
                  .AllowIf("open", {Masked(1, O_ACCMODE | O_CREAT | kOTmpfileBit, O_RDWR,
                                           "flags: O_RDWR, no O_CREAT/O_TMPFILE")})
                  .AllowIf("openat", {Masked(2, O_ACCMODE | O_CREAT | kOTmpfileBit,
                                             O_WRONLY, "flags: O_WRONLY, no O_CREAT/O_TMPFILE")})
                  .AllowIf("openat", {Masked(2, O_ACCMODE | O_CREAT | kOTmpfileBit, O_RDWR,
                                             "flags: O_RDWR, no O_CREAT/O_TMPFILE")})
                  .Allow({"truncate", "getcwd"})
                  .Build());

  // ---- cpath --------------------------------------------------------------------------
  t.push_back(
      Entry(Promise::kCpath, "creating, renaming, linking and removing paths "
                             "(open with O_CREAT in any access mode)")
          .AllowIf("open", {HasBits(1, "flags", O_CREAT, "O_CREAT")})
          .AllowIf("openat", {HasBits(2, "flags", O_CREAT, "O_CREAT")})
          .Allow({"creat", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2",
                  "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat"})
          .Build());

  // ---- dpath --------------------------------------------------------------------------
  t.push_back(Entry(Promise::kDpath, "creating FIFOs (mkfifo); never device nodes")
                  .AllowIf("mknod", {Masked(1, S_IFMT, S_IFIFO, "mode: S_IFIFO")})
                  .AllowIf("mknodat", {Masked(2, S_IFMT, S_IFIFO, "mode: S_IFIFO")})
                  .Build());

  // ---- tmppath ------------------------------------------------------------------------
  // seccomp cannot see paths, so "operations in /tmp" shrinks to anonymous temporary
  // files; named temporary files go through the broker.
  t.push_back(Entry(Promise::kTmppath,
                    "anonymous temporary files only: O_TMPFILE opens and memfd_create")
                  .AllowIf("open", {HasBits(1, "flags", kOTmpfileBit, "O_TMPFILE")})
                  .AllowIf("openat", {HasBits(2, "flags", kOTmpfileBit, "O_TMPFILE")})
                  .Allow({"memfd_create"})
                  .Build());

  // ---- fattr --------------------------------------------------------------------------
  t.push_back(Entry(Promise::kFattr, "changing modes, times and extended attributes")
                  .Allow({"chmod", "fchmod", "fchmodat", "utime", "utimes", "utimensat",
                          "futimesat", "setxattr", "lsetxattr", "fsetxattr", "removexattr",
                          "lremovexattr", "fremovexattr"})
                  .Build());

  // ---- chown --------------------------------------------------------------------------
  t.push_back(Entry(Promise::kChown, "changing owners")
                  .Allow({"chown", "fchown", "lchown", "fchownat"})
                  .Build());

  // ---- flock --------------------------------------------------------------------------
  t.push_back(Entry(Promise::kFlock, "file locks: flock and fcntl record/OFD locks")
                  .Allow({"flock"})
                  .AllowOneOf("fcntl", 1, "cmd",
                              {NV(F_GETLK), NV(F_SETLK), NV(F_SETLKW), NV(F_OFD_GETLK),
                               NV(F_OFD_SETLK), NV(F_OFD_SETLKW)})
                  .Build());

  // ---- inet ---------------------------------------------------------------------------
  auto sockets = [](Entry& e) -> Entry& {
    return e.Allow({"connect", "bind", "listen", "accept", "accept4", "setsockopt",
                    "getsockopt", "getsockname", "getpeername", "sendto", "recvfrom"});
  };
  {
    Entry e(Promise::kInet, "IPv4/IPv6 stream and datagram sockets (no raw sockets)");
    for (NamedValue domain : {NV(AF_INET), NV(AF_INET6)}) {
      for (NamedValue type : {NV(SOCK_STREAM), NV(SOCK_DGRAM)}) {
        e.AllowIf("socket", {Eq(0, "domain", domain.value, domain.name),
                             Masked(1, 0xf, type.value,
                                    absl::StrCat("type & 0xf == ", type.name))});
      }
    }
    t.push_back(sockets(e).Build());
  }

  // ---- unix ---------------------------------------------------------------------------
  {
    Entry e(Promise::kUnix, "AF_UNIX sockets");
    e.AllowIf("socket", {Eq(0, "domain", AF_UNIX, "AF_UNIX")});
    e.AllowIf("socketpair", {Eq(0, "domain", AF_UNIX, "AF_UNIX")});
    t.push_back(sockets(e).Build());
  }

  // ---- dns ----------------------------------------------------------------------------
  // seccomp cannot read the sockaddr, so the port is not checked: dns is "UDP/TCP
  // sockets to talk to a resolver". Reading /etc/resolv.conf needs rpath (or the
  // broker's resolve operation, which is the recommended way).
  {
    Entry e(Promise::kDns, "IPv4/IPv6 sockets for a resolver (port not checkable)");
    for (NamedValue domain : {NV(AF_INET), NV(AF_INET6)}) {
      for (NamedValue type : {NV(SOCK_DGRAM), NV(SOCK_STREAM)}) {
        e.AllowIf("socket", {Eq(0, "domain", domain.value, domain.name),
                             Masked(1, 0xf, type.value,
                                    absl::StrCat("type & 0xf == ", type.name))});
      }
    }
    e.Allow({"connect", "sendto", "recvfrom", "getsockname", "getpeername",
             "setsockopt", "getsockopt"});
    t.push_back(e.Build());
  }

  // ---- tty ----------------------------------------------------------------------------
  t.push_back(Entry(Promise::kTty, "terminal ioctls (never TIOCSTI or TIOCLINUX)")
                  .AllowOneOf("ioctl", 1, "cmd",
                              {NV(TCSETS), NV(TCSETSW), NV(TCSETSF), NV(TIOCSWINSZ),
                               NV(TIOCGPGRP), NV(TIOCSPGRP), NV(TCFLSH), NV(TCXONC),
                               NV(TCSBRK), NV(TIOCOUTQ), NV(TIOCGSID)})
                  .Build());

  // ---- recvfd / sendfd ----------------------------------------------------------------
  // SCM_RIGHTS travels in msg_control, in memory seccomp cannot read: these two add no
  // syscall. The broker channel refuses descriptors it does not expect.
  t.push_back(Entry(Promise::kRecvfd,
                    "no syscall of its own: receiving SCM_RIGHTS is recvmsg (stdio); "
                    "seccomp cannot inspect msg_control")
                  .Build());
  t.push_back(Entry(Promise::kSendfd,
                    "no syscall of its own: sending SCM_RIGHTS is sendmsg (stdio); "
                    "seccomp cannot inspect msg_control")
                  .Build());

  // ---- proc ---------------------------------------------------------------------------
  t.push_back(
      Entry(Promise::kProc, "fork, wait, signals to any process, process groups, "
                            "its own priorities, limits and CPUs")
          .Allow({"fork", "vfork"})
          .AllowIf("clone",
                   {Masked(0,
                           kCloneNewAll | CLONE_THREAD | CLONE_PTRACE | CLONE_UNTRACED |
                               CLONE_PARENT | CLONE_FILES,
                           0, "flags lack CLONE_NEW*, CLONE_THREAD, CLONE_PTRACE, "
                              "CLONE_UNTRACED, CLONE_PARENT, CLONE_FILES")})
          .Allow({"wait4", "waitid", "kill", "tgkill", "tkill", "rt_sigqueueinfo",
                  "rt_tgsigqueueinfo", "setpgid", "getpgid", "setsid", "getsid",
                  "getpriority", "setrlimit", "sched_getaffinity", "sched_getscheduler",
                  "sched_getparam"})
          // Changing a priority, a limit or a scheduling setting: its own only (pid 0, as
          // glibc's setrlimit, nice and sched_* pass it). With any pid these reached every
          // process of the worker's uid outside the sandbox, other workers included (review
          // h71: prlimit64 set another worker's RLIMIT_NOFILE to 1, setpriority(PRIO_USER)
          // reniced all of nobody's processes on the host); Landlock scopes signals, not these.
          .AllowIf("prlimit64", {Eq(0, "pid", 0, "0 (itself)")})
          .AllowIf("setpriority", {Eq(0, "which", PRIO_PROCESS, "PRIO_PROCESS"),
                                   Eq(1, "who", 0, "0 (itself)")})
          .AllowIf("sched_setaffinity", {Eq(0, "pid", 0, "0 (itself)")})
          .AllowIf("sched_setscheduler", {Eq(0, "pid", 0, "0 (itself)")})
          .AllowIf("sched_setparam", {Eq(0, "pid", 0, "0 (itself)")})
          .Build());

  // ---- thread -------------------------------------------------------------------------
  t.push_back(
      Entry(Promise::kThread, "creating threads (clone with thread flags only) and what "
                              "thread libraries need")
          .AllowIf("clone",
                   {Masked(0,
                           0xffffffffu & ~(CLONE_SYSVSEM | CLONE_SETTLS |
                                           CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID |
                                           kCloneDetached),
                           CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD,
                           "flags == CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|"
                           "CLONE_THREAD, optionally |CLONE_SYSVSEM|CLONE_SETTLS|"
                           "CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID|CLONE_DETACHED, "
                           "nothing else")})
          // rseq: glibc >= 2.35 registers it in every new thread and aborts the
          // process ("rseq registration failed") if that fails after the main thread
          // registered it at startup. So `thread` allows it; without `thread` it stays
          // on the ENOSYS list (a freshly exec'd image then just runs without rseq).
          .Allow({"rseq"})
          .Allow({"set_robust_list", "get_robust_list", "sched_getaffinity",
                  "sched_getparam", "sched_getscheduler", "sched_get_priority_max",
                  "sched_get_priority_min", "membarrier", "futex_waitv"})
          .Build());

  // ---- exec ---------------------------------------------------------------------------
  // The filter is inherited across execve: the new program runs under the same promises.
  t.push_back(Entry(Promise::kExec, "execve (the new image keeps this filter)")
                  .Allow({"execve", "execveat"})
                  .Build());

  // ---- prot_exec ----------------------------------------------------------------------
  t.push_back(Entry(Promise::kProtExec, "executable memory: mmap/mprotect with PROT_EXEC")
                  .Allow({"mmap", "mprotect", "pkey_mprotect", "pkey_alloc", "pkey_free"})
                  .Build());

  // ---- id -----------------------------------------------------------------------------
  t.push_back(Entry(Promise::kId, "changing user, group and capability ids")
                  .Allow({"setuid", "setgid", "setreuid", "setregid", "setresuid",
                          "setresgid", "setgroups", "setfsuid", "setfsgid", "capget",
                          "capset"})
                  .Build());

  return t;
}

#undef NV

}  // namespace

bool ArgCondition::Matches(const uint64_t args[6], uint32_t pid) const {
  if (arg < 0 || arg > 5) return false;
  uint64_t v = args[arg];
  uint64_t want = value;
  if (self_pid) {
    if (pid == 0) return false;
    want = pid;
  }
  if (width == Width::kLow32) {
    return ((v & 0xffffffffu) & (mask & 0xffffffffu)) == (want & 0xffffffffu);
  }
  return (v & mask) == want;
}

bool SyscallRule::Matches(const uint64_t args[6], uint32_t pid) const {
  for (const ArgCondition& c : conditions) {
    if (!c.Matches(args, pid)) return false;
  }
  return true;
}

std::string SyscallRule::ConditionText() const {
  if (conditions.empty()) return "any arguments";
  return absl::StrJoin(conditions, " && ", [](std::string* out, const ArgCondition& c) {
    out->append(c.text);
  });
}

const std::vector<PromiseEntry>& PromiseTable() {
  static const std::vector<PromiseEntry>* const table =
      new std::vector<PromiseEntry>(BuildTable());
  return *table;
}

const PromiseEntry& PromiseTableEntry(Promise p) {
  return PromiseTable()[static_cast<int>(p)];
}

const std::vector<UnsupportedIoctl>& UnsupportedIoctls() {
  static const std::vector<UnsupportedIoctl>* const list = new std::vector<UnsupportedIoctl>{
      {FICLONE, "FICLONE"}, {FICLONERANGE, "FICLONERANGE"}, {FIDEDUPERANGE, "FIDEDUPERANGE"}};
  return *list;
}

const std::vector<EnosysEntry>& EnosysSyscalls() {
  static const std::vector<EnosysEntry>* const list = new std::vector<EnosysEntry>{
      {"clone3", "glibc >= 2.34 tries it first and falls back to clone (whose flags "
                 "seccomp CAN check; clone3's live in memory)"},
      {"openat2", "struct open_how lives in memory; callers fall back to openat"},
      {"close_range", "glibc's closefrom falls back to /proc or close()"},
      {"epoll_pwait2", "callers fall back to epoll_pwait"},
      {"pidfd_open", "probed by process libraries; fall back to pids"},
      {"fchmodat2", "glibc >= 2.39 falls back to fchmodat"},
      {"rseq", "glibc >= 2.35 registers it at startup and carries on without it "
               "(allowed instead under `thread`, see there)"},
      {"io_uring_setup", "io_uring bypasses syscall filtering; runtimes fall back"},
      {"io_uring_enter", "io_uring bypasses syscall filtering"},
      {"io_uring_register", "io_uring bypasses syscall filtering"},
  };
  return *list;
}

const std::vector<BrokeredEntry>& BrokeredSyscalls() {
  static const std::vector<BrokeredEntry>* const list = new std::vector<BrokeredEntry>{
      {"open", "opens: glibc's fopen, the dynamic loader, any library"},
      {"openat", "opens (glibc's open() is openat(AT_FDCWD, ...))"},
      {"creat", "creating opens"},
      {"stat", "stat of a path"},
      {"lstat", "stat of a path, final symlink not followed"},
      {"newfstatat", "stat of a path; fstat() with a NULL path stays in the kernel, "
                     "glibc's fstat(fd) (an empty string) is answered from the fd"},
      {"statx", "stat of a path (as newfstatat)"},
      {"access", "access(2) of a path (glibc probes /etc/ld.so.preload, locale dirs)"},
      {"faccessat", "access(2)"},
      {"faccessat2", "access(2) with flags (glibc >= 2.33 tries it first)"},
      {"readlink", "reading a symlink"},
      {"readlinkat", "reading a symlink"},
      {"mkdir", "creating a directory (cpath)"},
      {"mkdirat", "creating a directory (cpath)"},
      {"unlink", "removing a file (cpath)"},
      {"unlinkat", "removing a file or directory (cpath)"},
      {"rmdir", "removing a directory (cpath)"},
      {"rename", "renaming (cpath)"},
      {"renameat", "renaming (cpath)"},
      {"renameat2", "renaming (cpath)"},
      {"chdir", "the working directory is the broker's to resolve relative paths"},
      {"fchdir", "the working directory (as chdir)"},
      {"getcwd", "the working directory the broker resolves relative paths against"},
      {"execve", "only the broker's own execve of the program, or with `exec`"},
      {"getxattr", "extended attributes are not served: EOPNOTSUPP (as on a file system "
                   "without them)"},
      {"lgetxattr", "as getxattr"},
      {"listxattr", "as getxattr"},
      {"llistxattr", "as getxattr"},
      {"setxattr", "refused (EACCES): not brokered"},
      {"lsetxattr", "refused (EACCES): not brokered"},
      {"removexattr", "refused (EACCES): not brokered"},
      {"lremovexattr", "refused (EACCES): not brokered"},
      {"truncate", "truncating a path (wpath, a `w` rule)"},
      {"chmod", "changing a mode (fattr, a `w` rule; setuid/setgid/sticky bits dropped)"},
      {"fchmodat", "as chmod"},
      {"fchmod", "changing the mode of an fd open for writing whose file is under a `w` rule "
                 "(fattr; setuid/setgid/sticky bits dropped)"},
      {"fchown", "an fd open for writing whose file is under a `w` rule (chown): only to "
                 "the owner and group it has (nothing to do), else EPERM"},
      {"utimensat", "changing times (fattr, a `w` rule); with a NULL path, of the fd"},
      {"utime", "refused (EACCES): not brokered"},
      {"utimes", "refused (EACCES): not brokered"},
      {"futimesat", "refused (EACCES): not brokered"},
      {"chown", "refused (EPERM): the worker is nobody"},
      {"lchown", "refused (EPERM)"},
      {"fchownat", "refused (EPERM)"},
      {"link", "hard links: refused (EACCES), they would defeat nested rules"},
      {"linkat", "as link"},
      {"symlink", "symlinks: refused (EACCES), not brokered"},
      {"symlinkat", "as symlink"},
      {"mknod", "refused (EACCES): no device nodes or FIFOs by path"},
      {"mknodat", "as mknod"},
      {"statfs", "statfs of a path (rpath, any rule letter)"},
      {"connect", "the broker checks the address against the connect rules, connects a "
                  "socket of its own and puts it in place of the worker's (the worker's "
                  "network namespace has no interfaces)"},
      {"execveat", "as execve"},
      {"mmap", "PROT_EXEC of a file in an exec'd image: only a library the broker opened "
               "from the loader set", true},
  };
  return *list;
}

bool IsBrokeredSyscall(absl::string_view name) {
  for (const BrokeredEntry& b : BrokeredSyscalls()) {
    if (!b.exec_image_only && b.syscall == name) return true;
  }
  return false;
}

namespace {

// A socketpair rule that admits only an anonymous connected AF_UNIX pair (stdio's): domain
// exactly AF_UNIX and type & 0xf exactly SOCK_STREAM or SOCK_SEQPACKET. Such a pair has no
// address (bind, connect and setsockopt, whose SO_PASSCRED would autobind one, are checked
// apart), is connected only to itself and is reached only through its fds.
bool AnonymousPairOnly(const SyscallRule& rule) {
  bool unix_domain = false;
  bool connected_type = false;
  for (const ArgCondition& c : rule.conditions) {
    if (c.self_pid || c.width != ArgCondition::Width::kLow32) continue;
    if (c.arg == 0 && c.mask == 0xffffffffu && c.value == AF_UNIX) unix_domain = true;
    if (c.arg == 1 && (c.mask & 0xf) == 0xf && (c.value & ~c.mask) == 0 &&
        ((c.value & 0xf) == SOCK_STREAM || (c.value & 0xf) == SOCK_SEQPACKET)) {
      connected_type = true;
    }
  }
  return unix_domain && connected_type;
}

bool AnyHeldRule(PromiseSet promises, const std::vector<PromiseEntry>& table,
                 const std::vector<absl::string_view>& names, bool (*also)(const SyscallRule&)) {
  for (const PromiseEntry& entry : table) {
    if (!promises.contains(entry.promise)) continue;
    for (const SyscallRule& rule : entry.rules) {
      for (absl::string_view name : names) {
        if (rule.syscall == name) return true;
      }
      if (also != nullptr && also(rule)) return true;
    }
  }
  return false;
}

}  // namespace

bool PromisesReachNetns(PromiseSet promises, const std::vector<PromiseEntry>& table) {
  static const std::vector<absl::string_view>* const names = new std::vector<absl::string_view>{
      "socket", "bind", "connect", "listen", "accept", "accept4", "setsockopt", "socketcall",
      // io_uring's socket, connect and accept operations get past any filter (review h60).
      "io_uring_setup", "io_uring_enter", "io_uring_register"};
  return AnyHeldRule(promises, table, *names, [](const SyscallRule& rule) {
    return rule.syscall == "socketpair" && !AnonymousPairOnly(rule);
  });
}

bool PromisesReachIpcns(PromiseSet promises, const std::vector<PromiseEntry>& table) {
  static const std::vector<absl::string_view>* const names = new std::vector<absl::string_view>{
      "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semctl",
      "shmget", "shmat", "shmdt", "shmctl", "mq_open", "mq_unlink", "mq_timedsend",
      "mq_timedreceive", "mq_notify", "mq_getsetattr", "ipc"};
  return AnyHeldRule(promises, table, *names, nullptr);
}

const std::vector<std::string>& ExecStartupSyscalls() {
  static const std::vector<std::string>* const list = new std::vector<std::string>{
      "arch_prctl", "set_tid_address", "set_robust_list"};
  return *list;
}

const std::vector<std::string>& AlwaysDeniedSyscalls() {
  static const std::vector<std::string>* const list = new std::vector<std::string>{
      "ptrace", "process_vm_readv", "process_vm_writev", "bpf", "perf_event_open",
      "userfaultfd", "keyctl", "add_key", "request_key", "unshare", "setns", "mount",
      "umount2", "pivot_root", "chroot", "kexec_load", "kexec_file_load", "init_module",
      "finit_module", "delete_module", "personality", "acct", "swapon",
      "swapoff", "reboot", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
      "iopl", "ioperm", "modify_ldt", "quotactl", "syslog", "open_by_handle_at",
      "name_to_handle_at", "fanotify_init", "move_mount", "open_tree", "fsopen",
      "fsmount", "fsconfig", "fspick", "mount_setattr", "sethostname", "setdomainname",
      "vhangup", "kcmp", "pidfd_getfd", "process_madvise", "lookup_dcookie",
      "migrate_pages", "move_pages", "landlock_create_ruleset", "landlock_add_rule",
      "landlock_restrict_self", "memfd_secret"};
  return *list;
}

}  // namespace vow
