// Unit tests of the promise vocabulary, the table, and the C++ evaluation of the table
// (PromiseAllowing / MinimalPromises). No seccomp is installed here.
#include "policies/promise_table.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policies/promise_compiler.h"
#include "policies/promises.h"

namespace vow {
namespace {

SyscallEvent Event(int nr, std::initializer_list<uint64_t> args, uint32_t pid = 0) {
  SyscallEvent e;
  e.nr = nr;
  e.audit_arch = AUDIT_ARCH_X86_64;
  int i = 0;
  for (uint64_t a : args) e.args[i++] = a;
  e.pid = pid;
  return e;
}

TEST(PromisesTest, NamesRoundTrip) {
  for (int i = 0; i < kPromiseCount; ++i) {
    const Promise p = static_cast<Promise>(i);
    auto back = PromiseFromName(PromiseName(p));
    ASSERT_TRUE(back.has_value()) << PromiseName(p);
    EXPECT_EQ(*back, p);
  }
  EXPECT_FALSE(PromiseFromName("stdio ").has_value());
  EXPECT_FALSE(PromiseFromName("").has_value());
  EXPECT_EQ(PromiseSet({Promise::kProtExec, Promise::kStdio, Promise::kRpath}).ToString(),
            "stdio rpath prot_exec");
  EXPECT_EQ(PromiseSet().ToString(), "");
}

TEST(PromiseTableTest, OneEntryPerPromiseInOrder) {
  ASSERT_EQ(PromiseTable().size(), static_cast<size_t>(kPromiseCount));
  for (int i = 0; i < kPromiseCount; ++i) {
    EXPECT_EQ(PromiseTable()[i].promise, static_cast<Promise>(i));
    EXPECT_FALSE(PromiseTable()[i].summary.empty());
  }
}

TEST(PromiseTableTest, EverySyscallNameIsKnownOnSomeArch) {
  for (const PromiseEntry& entry : PromiseTable()) {
    for (const SyscallRule& rule : entry.rules) {
      EXPECT_TRUE(SyscallNumber(Arch::kX86_64, rule.syscall).has_value() ||
                  SyscallNumber(Arch::kAarch64, rule.syscall).has_value())
          << rule.syscall << " in " << PromiseName(entry.promise);
    }
  }
  for (const EnosysEntry& e : EnosysSyscalls()) {
    EXPECT_TRUE(SyscallNumber(Arch::kX86_64, e.syscall).has_value()) << e.syscall;
  }
}

TEST(PromiseTableTest, ConditionsAreOnDistinctValidArguments) {
  for (const PromiseEntry& entry : PromiseTable()) {
    for (const SyscallRule& rule : entry.rules) {
      std::set<int> args;
      for (const ArgCondition& c : rule.conditions) {
        EXPECT_GE(c.arg, 0);
        EXPECT_LE(c.arg, 5);
        EXPECT_TRUE(args.insert(c.arg).second) << rule.syscall;
        EXPECT_EQ(c.value & ~c.mask, 0u) << rule.syscall << ": " << c.text;
        if (c.width == ArgCondition::Width::kLow32) {
          EXPECT_EQ(c.mask >> 32, 0u) << rule.syscall;
        }
      }
    }
  }
}

TEST(PromiseTableTest, NoPromiseListsAnAlwaysDeniedOrEnosysSyscall) {
  std::set<std::string> banned(AlwaysDeniedSyscalls().begin(), AlwaysDeniedSyscalls().end());
  for (const EnosysEntry& e : EnosysSyscalls()) banned.insert(e.syscall);
  for (const PromiseEntry& entry : PromiseTable()) {
    for (const SyscallRule& rule : entry.rules) {
      // The one documented exception: new threads must register rseq.
      if (entry.promise == Promise::kThread && rule.syscall == "rseq") continue;
      EXPECT_EQ(banned.count(rule.syscall), 0u)
          << rule.syscall << " in " << PromiseName(entry.promise);
    }
  }
}

TEST(PromiseAllowingTest, HandPickedCalls) {
  struct Case {
    SyscallEvent event;
    std::optional<Promise> want;
  };
  const uint64_t kHigh = uint64_t{0xdead} << 32;
  const Case cases[] = {
      {Event(__NR_write, {1, 0, 0}), Promise::kStdio},
      {Event(__NR_ioctl, {0, TCGETS}), Promise::kStdio},
      {Event(__NR_ioctl, {0, TCGETS | kHigh}), Promise::kStdio},  // low 32 bits
      {Event(__NR_ioctl, {0, TCSETS}), Promise::kTty},
      {Event(__NR_ioctl, {0, TIOCSTI}), std::nullopt},
      {Event(__NR_ioctl, {0, TIOCSTI | kHigh}), std::nullopt},
      {Event(__NR_ioctl, {0, TIOCLINUX}), std::nullopt},
      {Event(__NR_fcntl, {0, F_SETFL}), Promise::kStdio},
      {Event(__NR_fcntl, {0, F_SETFL, O_NONBLOCK}), Promise::kStdio},
      {Event(__NR_fcntl, {0, F_SETFL, O_ASYNC}), std::nullopt},  // SIGIO to the job
      {Event(__NR_fcntl, {0, F_SETFL, O_ASYNC | O_NONBLOCK | kHigh}), std::nullopt},
      {Event(__NR_fcntl, {0, F_SETLKW}), Promise::kFlock},
      {Event(__NR_openat, {uint64_t(AT_FDCWD), 0, O_RDONLY | O_CLOEXEC}), Promise::kRpath},
      {Event(__NR_openat, {uint64_t(AT_FDCWD), 0, O_WRONLY | O_TRUNC}), Promise::kWpath},
      {Event(__NR_openat, {uint64_t(AT_FDCWD), 0, O_RDWR | O_CREAT}), Promise::kCpath},
      {Event(__NR_openat, {uint64_t(AT_FDCWD), 0, O_TMPFILE | O_RDWR}), Promise::kTmppath},
      {Event(__NR_newfstatat, {3, 0, 0, AT_EMPTY_PATH}), Promise::kStdio},
      {Event(__NR_newfstatat, {uint64_t(AT_FDCWD), 0x1000, 0, 0}), Promise::kRpath},
      {Event(__NR_statx, {3, 0, AT_EMPTY_PATH, 0, 0}), Promise::kStdio},
      {Event(__NR_statx, {3, 0x1000, 0, 0, 0}), Promise::kRpath},
      {Event(__NR_mmap, {0, 4096, PROT_READ | PROT_WRITE, 0, 0, 0}), Promise::kStdio},
      {Event(__NR_mmap, {0, 4096, PROT_READ | PROT_EXEC, 0, 0, 0}), Promise::kProtExec},
      {Event(__NR_mprotect, {0, 4096, PROT_EXEC}), Promise::kProtExec},
      {Event(__NR_kill, {1234, 0}, 1234), Promise::kStdio},
      {Event(__NR_kill, {1, 9}, 1234), Promise::kProc},
      {Event(__NR_kill, {1234, 0}), Promise::kProc},  // pid unknown: not "self"
      {Event(__NR_tgkill, {1234, 1240, 6}, 1234), Promise::kStdio},
      {Event(__NR_clone, {CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
                          CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
                          CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID}),
       Promise::kThread},
      {Event(__NR_clone, {CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD}),
       Promise::kProc},
      {Event(__NR_clone, {CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
                          CLONE_THREAD | CLONE_NEWUSER}),
       std::nullopt},
      {Event(__NR_clone, {CLONE_NEWNET | SIGCHLD}), std::nullopt},
      // A child of the worker's parent (the broker), which would never reap it.
      {Event(__NR_clone, {CLONE_PARENT | SIGCHLD}), std::nullopt},
      {Event(__NR_socket, {AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0}), Promise::kInet},
      {Event(__NR_socket, {AF_INET6, SOCK_DGRAM, 0}), Promise::kInet},
      {Event(__NR_socket, {AF_INET, SOCK_RAW, 0}), std::nullopt},
      {Event(__NR_socket, {AF_UNIX, SOCK_STREAM, 0}), Promise::kUnix},
      {Event(__NR_socket, {AF_NETLINK, SOCK_RAW, 0}), std::nullopt},
      {Event(__NR_sendto, {3, 0, 0, 0, 0, 0}), Promise::kStdio},
      {Event(__NR_sendto, {3, 0, 0, 0, 0x7ffd0000, 16}), Promise::kInet},
      // A pointer is compared on 64 bits: low half zero is not NULL.
      {Event(__NR_sendto, {3, 0, 0, 0, uint64_t{1} << 32, 16}), Promise::kInet},
      {Event(__NR_prctl, {PR_SET_NAME, 0}), Promise::kStdio},
      {Event(__NR_prctl, {PR_SET_DUMPABLE, 1}), std::nullopt},
      {Event(__NR_prctl, {PR_SET_SECCOMP, 2}), std::nullopt},
      {Event(__NR_prlimit64, {0, uint64_t{RLIMIT_NOFILE}, 0, 0x1000}), Promise::kStdio},
      {Event(__NR_prlimit64, {0, uint64_t{RLIMIT_NOFILE}, 0x1000, 0}), Promise::kProc},
      {Event(__NR_execve, {0, 0, 0}), Promise::kExec},
      {Event(__NR_setuid, {0}), Promise::kId},
      {Event(__NR_ptrace, {0}), std::nullopt},
      {Event(__NR_seccomp, {0}), std::nullopt},
      {Event(__NR_unshare, {0}), std::nullopt},
      {Event(__NR_clone3, {0, 0}), std::nullopt},  // ENOSYS list, never a violation
      {Event(0x40000000 | __NR_getpid, {}), std::nullopt},  // x32
      {Event(999, {}), std::nullopt},                         // unknown
  };
  for (const Case& c : cases) {
    const std::optional<Promise> got = PromiseAllowing(c.event);
    EXPECT_EQ(got, c.want) << SyscallName(Arch::kX86_64, c.event.nr) << " args[1]=0x"
                           << std::hex << c.event.args[1] << " got "
                           << (got ? PromiseName(*got) : "none");
  }
  SyscallEvent i386 = Event(20, {});
  i386.audit_arch = AUDIT_ARCH_I386;
  EXPECT_EQ(PromiseAllowing(i386), std::nullopt);
}

TEST(MinimalPromisesTest, SmallestCover) {
  const SyscallEvent events[] = {
      Event(__NR_write, {1, 0, 0}),
      Event(__NR_openat, {uint64_t(AT_FDCWD), 0, O_RDONLY}),
      Event(__NR_socket, {AF_INET, SOCK_STREAM, 0}),
      Event(__NR_clone3, {0, 0}),  // skipped: ENOSYS list
  };
  auto got = MinimalPromises(events);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->ToString(), "stdio rpath inet");
}

TEST(MinimalPromisesTest, ExactNotGreedy) {
  // sendto(addr) is allowed by inet, unix and dns; socket(AF_UNIX) only by unix: the
  // answer is {unix} alone.
  const SyscallEvent events[] = {
      Event(__NR_sendto, {3, 0, 0, 0, 0x7ffd0000, 16}),
      Event(__NR_connect, {3, 0x7ffd0000, 16}),
      Event(__NR_socket, {AF_UNIX, SOCK_STREAM, 0}),
  };
  auto got = MinimalPromises(events);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->ToString(), "unix");
  EXPECT_EQ(MinimalPromises({})->ToString(), "");
}

TEST(MinimalPromisesTest, NamesTheEventNoPromiseAllows) {
  const SyscallEvent events[] = {Event(__NR_write, {1, 0, 0}),
                                 Event(__NR_ioctl, {0, TIOCSTI})};
  auto got = MinimalPromises(events);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(got.status().message()), testing::HasSubstr("ioctl(0x0, 0x5412"));
}

// README "Spawn, round 7": which promise sets reach into a network or IPC namespace.
TEST(PromisesReachTest, OnlyTheSocketPromisesReachTheNetworkNamespaceAndNoneTheIpcOne) {
  const std::set<Promise> net = {Promise::kInet, Promise::kUnix, Promise::kDns};
  for (int i = 0; i < kPromiseCount; ++i) {
    const Promise p = static_cast<Promise>(i);
    SCOPED_TRACE(PromiseName(p));
    const PromiseSet set{Promise::kStdio, p};
    EXPECT_EQ(PromisesReachNetns(set, PromiseTable()), net.count(p) == 1);
    EXPECT_FALSE(PromisesReachIpcns(set, PromiseTable()));
  }
  EXPECT_FALSE(PromisesReachNetns(PromiseSet{Promise::kStdio}, PromiseTable()));
  EXPECT_TRUE(PromisesReachNetns(PromiseSet{Promise::kStdio, Promise::kRpath, Promise::kUnix},
                                 PromiseTable()));
}

// A table of one promise (stdio's slot) holding `rule`.
std::vector<PromiseEntry> OneRuleTable(SyscallRule rule) {
  PromiseEntry entry;
  entry.promise = Promise::kStdio;
  entry.rules.push_back(std::move(rule));
  return {entry};
}

SyscallRule Rule(const char* name, std::vector<ArgCondition> conditions = {}) {
  SyscallRule r;
  r.syscall = name;
  r.conditions = std::move(conditions);
  return r;
}

ArgCondition Cond(int arg, uint64_t mask, uint64_t value) {
  ArgCondition c;
  c.arg = arg;
  c.mask = mask;
  c.value = value;
  return c;
}

// Each syscall of the lists reaches, with any arguments; a socketpair reaches unless its
// rule pins an anonymous connected AF_UNIX pair; a promise not held reaches nothing.
TEST(PromisesReachTest, EachListedSyscallReachesItsNamespace) {
  const PromiseSet stdio{Promise::kStdio};
  for (const char* name : {"socket", "bind", "connect", "listen", "accept", "accept4",
                           "setsockopt", "socketcall", "io_uring_setup", "io_uring_enter",
                           "io_uring_register"}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(PromisesReachNetns(stdio, OneRuleTable(Rule(name))));
    EXPECT_FALSE(PromisesReachIpcns(stdio, OneRuleTable(Rule(name))));
    EXPECT_FALSE(PromisesReachNetns(PromiseSet{Promise::kRpath}, OneRuleTable(Rule(name))));
  }
  for (const char* name : {"msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
                           "semtimedop", "semctl", "shmget", "shmat", "shmdt", "shmctl",
                           "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
                           "mq_notify", "mq_getsetattr", "ipc"}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(PromisesReachIpcns(stdio, OneRuleTable(Rule(name))));
    EXPECT_FALSE(PromisesReachNetns(stdio, OneRuleTable(Rule(name))));
  }
  const ArgCondition unix_domain = Cond(0, 0xffffffffu, AF_UNIX);
  EXPECT_FALSE(PromisesReachNetns(
      stdio, OneRuleTable(Rule("socketpair", {unix_domain, Cond(1, 0xf, SOCK_STREAM)}))));
  EXPECT_FALSE(PromisesReachNetns(
      stdio, OneRuleTable(Rule("socketpair", {unix_domain, Cond(1, 0xf, SOCK_SEQPACKET)}))));
  EXPECT_TRUE(PromisesReachNetns(
      stdio, OneRuleTable(Rule("socketpair", {unix_domain, Cond(1, 0xf, SOCK_DGRAM)}))));
  EXPECT_TRUE(PromisesReachNetns(stdio, OneRuleTable(Rule("socketpair", {unix_domain}))));
  EXPECT_TRUE(PromisesReachNetns(
      stdio, OneRuleTable(Rule("socketpair", {Cond(1, 0xf, SOCK_STREAM)}))));
  EXPECT_TRUE(PromisesReachNetns(
      stdio, OneRuleTable(Rule("socketpair", {Cond(0, 0xffffffffu, AF_INET),
                                              Cond(1, 0xf, SOCK_STREAM)}))));
  // A type mask that leaves a type bit free admits SOCK_DGRAM (2 = STREAM | 2).
  EXPECT_TRUE(PromisesReachNetns(
      stdio, OneRuleTable(Rule("socketpair", {unix_domain, Cond(1, 0xd, SOCK_STREAM)}))));
}

}  // namespace
}  // namespace vow
