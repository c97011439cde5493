// The stat trap without a broker: a forked child loads a forked worker's stdio program
// with no listener, so every call the filter sends to the broker (user notification)
// fails with ENOSYS there. That makes the three routes visible: ALLOW (the kernel
// answers), TRAP (the handler decides) and the trampoline (-> "broker" -> ENOSYS).
#include "worker/stat_trap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "policies/promise_compiler.h"
#include "policies/seccomp_loader.h"
#include "policies/stat_trap_abi.h"

namespace vow {
namespace {

void OnSigsys(int, siginfo_t* info, void* context) {
  if (HandleStatTrap(info, context)) return;
  _exit(90);  // not the stat trap: the tests below never cause another SIGSYS
}

// Forks; the child patches and loads `program` (no listener), with the stat handler if
// `handler`, runs `body` and exits with its value. Returns the wait status.
int RunLocked(const BpfProgram& program, bool handler, const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    std::vector<sock_filter> code = program.code;
    PatchSelfPid(code.data(), code.size(), static_cast<uint32_t>(getpid()));
    if (PatchStatTrampoline(code.data(), code.size(), StatTrampolineAddress()) !=
        kStatTrampolinePatchSites) {
      _exit(100);
    }
    if (handler) {
      PrepareStatTrap();
      struct sigaction sa;
      memset(&sa, 0, sizeof(sa));
      sa.sa_sigaction = OnSigsys;
      sa.sa_flags = SA_SIGINFO | SA_NODEFER;
      sigemptyset(&sa.sa_mask);
      if (sigaction(SIGSYS, &sa, nullptr) != 0) _exit(102);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(103);
    if (LoadSeccompProgram(code.data(), code.size(), nullptr) != 0) _exit(104);
    _exit(body());
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return status;
}

std::string Describe(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

BpfProgram StdioProgram(PromiseSet promises = {Promise::kStdio}) {
  auto program = CompilePromises(promises, Penalty::kKill);
  EXPECT_TRUE(program.ok()) << program.status();
  EXPECT_TRUE(program->stat_trap);
  return *std::move(program);
}

TEST(StatTrapTest, ExecImagesAndBrokerlessProgramsHaveNoStatTrap) {
  auto exec = CompilePromises({Promise::kStdio}, Penalty::kKill, NativeArch(),
                              ProgramVariant::kExecImage);
  ASSERT_TRUE(exec.ok()) << exec.status();
  EXPECT_FALSE(exec->stat_trap);
  std::vector<sock_filter> code = exec->code;
  EXPECT_EQ(PatchStatTrampoline(code.data(), code.size(), StatTrampolineAddress()), 0u);
  auto brokerless = CompilePromisesWithAction({Promise::kStdio}, SECCOMP_RET_ERRNO | EPERM);
  ASSERT_TRUE(brokerless.ok()) << brokerless.status();
  EXPECT_FALSE(brokerless->stat_trap);
}

TEST(StatTrapTest, PatchRewritesBothHalvesOnce) {
  BpfProgram program = StdioProgram();
  std::vector<sock_filter> code = program.code;
  const uint64_t address = 0x00005555'12345678ull;
  ASSERT_EQ(PatchStatTrampoline(code.data(), code.size(), address), 4u);
  EXPECT_EQ(PatchStatTrampoline(code.data(), code.size(), address), 0u);
  int low = 0, high = 0;
  for (const sock_filter& insn : code) {
    if (insn.code != (BPF_JMP | BPF_JEQ | BPF_K)) continue;
    low += insn.k == 0x12345678u;
    high += insn.k == 0x00005555u;
  }
  EXPECT_EQ(low, 2);
  EXPECT_GE(high, 1);
}

// No handler: a stat with a path made anywhere but the trampoline is trapped (SIGSYS ends
// the child), the same call at the trampoline goes to the broker (ENOSYS: no listener),
// and the NULL form is answered by the kernel.
TEST(StatTrapTest, FilterTrapsAPathStatUnlessMadeAtTheTrampoline) {
  const BpfProgram program = StdioProgram();
  int status = RunLocked(program, /*handler=*/false, [] {
    struct stat st;
    if (syscall(SYS_newfstatat, 0, nullptr, &st, AT_EMPTY_PATH) != 0) return 1;
    if (VowStatTrampoline(SYS_newfstatat, 0, reinterpret_cast<long>(""),
                          reinterpret_cast<long>(&st), AT_EMPTY_PATH, 0, 0) != -ENOSYS) {
      return 2;
    }
    if (VowStatTrampoline(SYS_newfstatat, 0, 0, reinterpret_cast<long>(&st), AT_EMPTY_PATH,
                          0, 0) != 0) {
      return 3;
    }
    syscall(SYS_newfstatat, 0, "", &st, AT_EMPTY_PATH);  // trapped: SIGSYS, default action
    return 4;
  });
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) << Describe(status);
}

// The probe: process_vm_readv of the worker's own memory, at the trampoline, flags 0,
// is allowed; made anywhere else, for another pid or with flags, it is what it was before
// (a violation: ENOSYS here, no listener).
TEST(StatTrapTest, ProbeIsAllowedOnlyAtTheTrampolineForSelf) {
  const BpfProgram program = StdioProgram();
  int status = RunLocked(program, /*handler=*/false, [] {
    static const char kText[] = "Q";
    char byte = 0;
    struct iovec local = {&byte, 1};
    struct iovec remote = {const_cast<char*>(kText), 1};
    auto probe = [&](long pid, long flags) {
      return VowStatTrampoline(SYS_process_vm_readv, pid, reinterpret_cast<long>(&local), 1,
                               reinterpret_cast<long>(&remote), 1, flags);
    };
    if (probe(getpid(), 0) != 1 || byte != 'Q') return 1;
    if (probe(getppid(), 0) != -ENOSYS) return 2;
    if (probe(getpid(), 1) != -ENOSYS) return 3;
    if (syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) != -1 ||
        errno != ENOSYS) {
      return 4;
    }
    // An unmapped address: EFAULT, no fault in the caller.
    remote.iov_base = reinterpret_cast<void*>(8);
    if (probe(getpid(), 0) != -EFAULT) return 5;
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
}

// With the handler: the empty path with AT_EMPTY_PATH is answered for the fd (the right
// inode, no "broker"); every other form goes to the "broker" (ENOSYS here).
TEST(StatTrapTest, HandlerAnswersTheEmptyPathAndForwardsTheRest) {
  const BpfProgram program = StdioProgram();
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  struct stat want;
  ASSERT_EQ(fstat(pipefd[0], &want), 0);
  int status = RunLocked(program, /*handler=*/true, [&] {
    struct stat st;
    memset(&st, 0, sizeof(st));
    if (fstat(pipefd[0], &st) != 0 || st.st_ino != want.st_ino) return 1;
    memset(&st, 0, sizeof(st));
    if (syscall(SYS_newfstatat, pipefd[0], "", &st, AT_EMPTY_PATH) != 0 ||
        st.st_ino != want.st_ino) {
      return 2;
    }
    struct statx stx;
    memset(&stx, 0, sizeof(stx));
    if (syscall(SYS_statx, pipefd[0], "", AT_EMPTY_PATH, STATX_INO, &stx) != 0 ||
        stx.stx_ino != want.st_ino) {
      return 3;
    }
    // A bad fd: the kernel's answer, EBADF.
    if (fstat(1000, &st) != -1 || errno != EBADF) return 4;
    // Not fd-only: the broker's route.
    if (syscall(SYS_newfstatat, pipefd[0], "", &st, 0) != -1 || errno != ENOSYS) return 5;
    if (syscall(SYS_newfstatat, AT_FDCWD, "/etc/passwd", &st, AT_EMPTY_PATH) != -1 ||
        errno != ENOSYS) {
      return 6;
    }
    if (syscall(SYS_statx, AT_FDCWD, "/etc/passwd", AT_EMPTY_PATH, STATX_INO, &stx) != -1 ||
        errno != ENOSYS) {
      return 7;
    }
    // Unreadable path pointers: never dereferenced by the handler; the broker's route.
    const long page = sysconf(_SC_PAGESIZE);
    void* hole = mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (hole == MAP_FAILED || munmap(hole, page) != 0) return 8;
    if (syscall(SYS_newfstatat, pipefd[0], hole, &st, AT_EMPTY_PATH) != -1 ||
        errno != ENOSYS) {
      return 9;
    }
    if (syscall(SYS_newfstatat, pipefd[0], 1, &st, AT_EMPTY_PATH) != -1 || errno != ENOSYS) {
      return 10;
    }
    // errno of the interrupted code is kept.
    errno = 4242;
    if (fstat(pipefd[0], &st) != 0 || errno != 4242) return 11;
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
}

// Threads: each one's fstat answers for its own fd, while others probe real paths.
TEST(StatTrapTest, HandlerIsCorrectWithSeveralThreads) {
  const BpfProgram program = StdioProgram({Promise::kStdio, Promise::kThread});
  int status = RunLocked(program, /*handler=*/true, [] {
    constexpr int kThreads = 4;
    struct Job {
      int fd;
      ino_t ino;
      int failure;
    };
    static Job jobs[kThreads];
    for (Job& job : jobs) {
      int p[2];
      if (pipe(p) != 0) return 1;
      struct stat st;
      if (syscall(SYS_fstat, p[0], &st) != 0) return 2;
      job = Job{p[0], st.st_ino, 0};
    }
    auto body = [](void* arg) -> void* {
      Job* job = static_cast<Job*>(arg);
      for (int i = 0; i < 20000 && job->failure == 0; ++i) {
        struct stat st;
        if (fstat(job->fd, &st) != 0) job->failure = 1;
        else if (st.st_ino != job->ino) job->failure = 2;
        if (syscall(SYS_newfstatat, AT_FDCWD, "x", &st, AT_EMPTY_PATH) != -1 ||
            errno != ENOSYS) {
          job->failure = 3;
        }
      }
      return nullptr;
    };
    pthread_t threads[kThreads];
    for (int t = 0; t < kThreads; ++t) {
      if (pthread_create(&threads[t], nullptr, body, &jobs[t]) != 0) return 3;
    }
    int failure = 0;
    for (int t = 0; t < kThreads; ++t) {
      pthread_join(threads[t], nullptr);
      if (failure == 0 && jobs[t].failure != 0) failure = 10 * (t + 1) + jobs[t].failure;
    }
    return failure;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
}

}  // namespace
}  // namespace vow
