// Real-kernel tests: compiled programs loaded in forked children (each child sets
// NO_NEW_PRIVS itself, as the worker's lock-down does). Most tests compile with a
// test-only violation action, ERRNO(kRefused), so "refused by the filter" is told
// apart from ENOSYS and from the syscall's own errors; the real penalties (USER_NOTIF
// with and without a listener, TRAP) have their own tests.
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "policies/promise_compiler.h"
#include "policies/promise_table.h"
#include "policies/seccomp_loader.h"

namespace vow {
namespace {

constexpr int kRefused = 4000;  // errno the test programs answer violations with

#define CHILD_CHECK(cond)                                                            \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      char msg_[256];                                                                \
      int n_ = snprintf(msg_, sizeof msg_, "child check failed line %d: %s (errno %d)\n", \
                        __LINE__, #cond, errno);                                     \
      if (write(2, msg_, n_) < 0) {}                                                 \
      return 1;                                                                      \
    }                                                                                \
  } while (0)

// -1 with errno == e.
bool Fails(long rc, int e) { return rc == -1 && errno == e; }

BpfProgram TestProgram(PromiseSet promises) {
  auto p = CompilePromisesWithAction(promises, SCMP_ACT_ERRNO(kRefused));
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// Forks; the child sets NO_NEW_PRIVS, patches its pid into a copy of the program, loads
// it (with a listener if `listener` is not null, stored there), and exits with body()'s
// value. `before` runs in the child before the load. Returns the wait status.
int RunLocked(const BpfProgram& program, const std::function<int()>& body,
              const std::function<void()>& before = {}, bool with_listener = false,
              pid_t* child_pid = nullptr, const std::function<void(pid_t)>& parent = {}) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (before) before();
    alarm(20);  // never hang the test run
    std::vector<sock_filter> code = program.code;
    PatchSelfPid(code.data(), code.size(), static_cast<uint32_t>(getpid()));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(101);
    int listener = -1;
    const int rc = LoadSeccompProgram(code.data(), code.size(),
                                      with_listener ? &listener : nullptr);
    if (rc != 0) _exit(102);
    _exit(body());
  }
  if (child_pid != nullptr) *child_pid = pid;
  if (parent) parent(pid);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return status;
}

bool ExitedOk(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string Describe(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

TEST(SeccompKernelTest, StdioAllowsIoAndRefusesTheRest) {
  const BpfProgram program = TestProgram({Promise::kStdio});
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const int status = RunLocked(program, [&] {
    CHILD_CHECK(write(pipefd[1], "ok", 2) == 2);
    CHILD_CHECK(getpid() > 0);
    CHILD_CHECK(Fails(openat(AT_FDCWD, "/etc/passwd", O_RDONLY), kRefused));
    // ioctl: TIOCSTI refused, also with high bits set (the kernel truncates cmd to 32
    // bits, so the filter compares the low half); TCGETS with high bits still allowed.
    char c = 'x';
    CHILD_CHECK(Fails(syscall(__NR_ioctl, 0, TIOCSTI, &c), kRefused));
    CHILD_CHECK(Fails(syscall(__NR_ioctl, 0, (1ul << 32) | TIOCSTI, &c), kRefused));
    CHILD_CHECK(Fails(syscall(__NR_ioctl, 0, TIOCLINUX, &c), kRefused));
    struct termios* t = nullptr;
    CHILD_CHECK(Fails(syscall(__NR_ioctl, pipefd[1], (0xdeadul << 32) | TCGETS, t), ENOTTY));
    CHILD_CHECK(Fails(syscall(__NR_ioctl, pipefd[1], TCSETS, t), kRefused));
    int avail = -1;
    CHILD_CHECK(ioctl(pipefd[0], FIONREAD, &avail) == 0);
    // fcntl: plain commands yes, locks no.
    CHILD_CHECK(fcntl(pipefd[1], F_GETFL) >= 0);
    CHILD_CHECK(fcntl(pipefd[1], F_SETFL, O_NONBLOCK) == 0);
    // Never O_ASYNC: on a terminal, SIGIO to the whole foreground job.
    CHILD_CHECK(Fails(fcntl(pipefd[1], F_SETFL, O_ASYNC | O_NONBLOCK), kRefused));
    struct flock lk = {};
    CHILD_CHECK(Fails(fcntl(pipefd[1], F_SETLK, &lk), kRefused));
    // ENOSYS: probes and unknown numbers, whatever the penalty.
    CHILD_CHECK(Fails(syscall(__NR_clone3, nullptr, 0), ENOSYS));
    CHILD_CHECK(Fails(syscall(__NR_openat2, AT_FDCWD, "/", nullptr, 0), ENOSYS));
    CHILD_CHECK(Fails(syscall(__NR_rseq, nullptr, 0, 0, 0), ENOSYS));
    CHILD_CHECK(Fails(syscall(__NR_io_uring_setup, 1, nullptr), ENOSYS));
    CHILD_CHECK(Fails(syscall(__NR_close_range, 100, 200, 0), ENOSYS));
    CHILD_CHECK(Fails(syscall(457), ENOSYS));         // above libseccomp 2.5.4's table
    CHILD_CHECK(Fails(syscall(400), ENOSYS));         // a hole in the x86-64 table
    CHILD_CHECK(Fails(syscall(0x3fff0000), ENOSYS));  // huge, below the x32 bit
    // Always denied.
    CHILD_CHECK(Fails(syscall(__NR_ptrace, PTRACE_TRACEME, 0, 0, 0), kRefused));
    CHILD_CHECK(Fails(syscall(__NR_unshare, 0), kRefused));
    CHILD_CHECK(Fails(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), kRefused));
    CHILD_CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) >= 0);
    // Signals: to itself only.
    CHILD_CHECK(kill(getpid(), 0) == 0);
    CHILD_CHECK(syscall(__NR_tgkill, getpid(), gettid(), 0) == 0);
    CHILD_CHECK(Fails(kill(getppid(), 0), kRefused));
    CHILD_CHECK(Fails(kill(1, 0), kRefused));
    // Memory: never executable.
    void* rw = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(rw != MAP_FAILED);
    CHILD_CHECK(mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                     0) == MAP_FAILED && errno == kRefused);
    CHILD_CHECK(Fails(mprotect(rw, 4096, PROT_READ | PROT_EXEC), kRefused));
    CHILD_CHECK(mprotect(rw, 4096, PROT_READ) == 0);
    CHILD_CHECK(munmap(rw, 4096) == 0);
    // The stat family on an fd (fstat, or a NULL path) in the kernel; anything with a
    // path string, even "" with AT_EMPTY_PATH, goes to the broker (here: no broker, so
    // the violation action).
    struct stat st;
    CHILD_CHECK(syscall(__NR_fstat, pipefd[0], &st) == 0);
    CHILD_CHECK(syscall(__NR_newfstatat, pipefd[0], nullptr, &st, AT_EMPTY_PATH) == 0);
    CHILD_CHECK(Fails(syscall(__NR_newfstatat, pipefd[0], "", &st, AT_EMPTY_PATH), kRefused));
    CHILD_CHECK(Fails(syscall(__NR_newfstatat, AT_FDCWD, "/etc/passwd", &st, AT_EMPTY_PATH),
                      kRefused));
    CHILD_CHECK(Fails(syscall(__NR_newfstatat, AT_FDCWD, "/etc/passwd", &st, 0), kRefused));
    CHILD_CHECK(Fails(stat("/etc/passwd", &st), kRefused));
    struct statx stx;
    CHILD_CHECK(syscall(__NR_statx, pipefd[0], nullptr, AT_EMPTY_PATH, STATX_BASIC_STATS,
                        &stx) == 0);
    CHILD_CHECK(Fails(statx(AT_FDCWD, "/etc/passwd", 0, STATX_BASIC_STATS, &stx), kRefused));
    // Sockets: a pair yes, the network no; sendto only without a destination.
    int sv[2];
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHILD_CHECK(send(sv[0], "x", 1, 0) == 1);
    CHILD_CHECK(Fails(socket(AF_INET, SOCK_STREAM, 0), kRefused));
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    CHILD_CHECK(Fails(sendto(sv[0], "x", 1, 0, reinterpret_cast<sockaddr*>(&addr),
                             sizeof addr), kRefused));
    // Memory allocation, small and large (mmap'd).
    for (size_t size : {16ul, 4096ul, 1ul << 20, 64ul << 20}) {
      char* p = static_cast<char*>(malloc(size));
      CHILD_CHECK(p != nullptr);
      memset(p, 0x5a, size);
      p = static_cast<char*>(realloc(p, size * 2));
      CHILD_CHECK(p != nullptr && p[size - 1] == 0x5a);
      free(p);
    }
    auto* v = new std::vector<int>(100000, 7);
    CHILD_CHECK((*v)[99999] == 7);
    delete v;
    return 0;
  });
  close(pipefd[1]);
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
  EXPECT_EQ(ReadAll(pipefd[0]), "ok");
  close(pipefd[0]);
}

TEST(SeccompKernelTest, PrintfToAPipeAfterLockDown) {
  const BpfProgram program = TestProgram({Promise::kStdio});
  int out[2], other[2];
  ASSERT_EQ(pipe(out), 0);
  ASSERT_EQ(pipe(other), 0);
  const int status = RunLocked(
      program,
      [&] {
        // stdout was set up in the parent before fork; a stream opened after lock-down
        // goes through glibc's first-use path (fcntl F_GETFL, fstat, malloc) under the
        // filter.
        CHILD_CHECK(printf("hello %d\n", 42) > 0);
        CHILD_CHECK(fflush(stdout) == 0);
        FILE* f = fdopen(other[1], "w");
        CHILD_CHECK(f != nullptr);
        CHILD_CHECK(fprintf(f, "fresh %s %.2f\n", "stream", 1.5) > 0);
        CHILD_CHECK(fclose(f) == 0);
        return 0;
      },
      [&] {
        fflush(stdout);
        dup2(out[1], 1);
      });
  close(out[1]);
  close(other[1]);
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
  EXPECT_EQ(ReadAll(out[0]), "hello 42\n");
  EXPECT_EQ(ReadAll(other[0]), "fresh stream 1.50\n");
  close(out[0]);
  close(other[0]);
}

TEST(SeccompKernelTest, X32NumbersKillTheProcess) {
  const BpfProgram program = TestProgram({Promise::kStdio});
  const int status = RunLocked(program, [] {
    syscall(0x40000000 | __NR_getpid);
    return 0;
  });
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) << Describe(status);
}

#if defined(__x86_64__)
long Int80Getpid() {
  long ret;
  // i386 getpid is 20.
  asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

TEST(SeccompKernelTest, Int80KillsTheProcess) {
  // First check that int 0x80 works at all here (IA32 emulation may be disabled).
  const pid_t probe = fork();
  if (probe == 0) _exit(Int80Getpid() == getpid() ? 0 : 1);
  int status = 0;
  ASSERT_EQ(waitpid(probe, &status, 0), probe);
  if (!ExitedOk(status)) GTEST_SKIP() << "int 0x80 unavailable: " << Describe(status);

  const BpfProgram program = TestProgram({Promise::kStdio});
  status = RunLocked(program, [] {
    Int80Getpid();
    return 0;
  });
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) << Describe(status);
}
#endif

TEST(SeccompKernelTest, ProtExecAllowsExecutableMappings) {
  const BpfProgram program = TestProgram({Promise::kStdio, Promise::kProtExec});
  const int status = RunLocked(program, [] {
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(p != MAP_FAILED);
    CHILD_CHECK(mprotect(p, 4096, PROT_READ | PROT_WRITE | PROT_EXEC) == 0);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
}

// rpath no longer means "any file" in the kernel: path calls are always the broker's,
// so without one even a read-only open is the violation action.
TEST(SeccompKernelTest, PathCallsNeverDecidedByTheKernel) {
  const BpfProgram program = TestProgram({Promise::kStdio, Promise::kRpath});
  const int status = RunLocked(program, [] {
    struct stat st;
    CHILD_CHECK(Fails(stat("/etc/passwd", &st), kRefused));
    CHILD_CHECK(Fails(open("/etc/passwd", O_RDONLY | O_CLOEXEC), kRefused));
    CHILD_CHECK(Fails(syscall(__NR_readlink, "/proc/self/exe", &st, 8), kRefused));
    CHILD_CHECK(Fails(open("/etc/passwd", O_WRONLY), kRefused));
    CHILD_CHECK(Fails(open("/tmp/vow-never", O_RDONLY | O_CREAT, 0600), kRefused));
    CHILD_CHECK(Fails(open("/etc/passwd", O_RDONLY | O_TRUNC), kRefused));
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
}

void* ThreadBody(void* arg) {
  *static_cast<int*>(arg) = 42;
  return nullptr;
}

TEST(SeccompKernelTest, ThreadPromiseAllowsPthreadCreate) {
  // glibc tries clone3 (ENOSYS here) and falls back to clone with thread flags.
  const BpfProgram program = TestProgram({Promise::kStdio, Promise::kThread});
  int status = RunLocked(program, [] {
    int value = 0;
    pthread_t t;
    CHILD_CHECK(pthread_create(&t, nullptr, ThreadBody, &value) == 0);
    CHILD_CHECK(pthread_join(t, nullptr) == 0);
    CHILD_CHECK(value == 42);
    // A process-creating clone is not a thread.
    CHILD_CHECK(Fails(syscall(__NR_clone, SIGCHLD, 0, 0, 0, 0), kRefused));
    CHILD_CHECK(Fails(syscall(__NR_clone, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
                                              CLONE_THREAD | CLONE_NEWUSER,
                              0, 0, 0, 0),
                      kRefused));
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);

  status = RunLocked(TestProgram({Promise::kStdio}), [] {
    int value = 0;
    pthread_t t;
    CHILD_CHECK(pthread_create(&t, nullptr, ThreadBody, &value) != 0);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
}

TEST(SeccompKernelTest, NotifyWithoutListenerIsEnosys) {
  // The real kKill/kErrno/kLog programs use SECCOMP_RET_USER_NOTIF; loaded without a
  // listener, the kernel answers violations ENOSYS (so a loader that forgets the
  // listener does not silently allow anything).
  auto program = CompilePromises({Promise::kStdio}, Penalty::kKill);
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_TRUE(program->needs_listener());
  const int status = RunLocked(*program, [] {
    CHILD_CHECK(Fails(openat(AT_FDCWD, "/etc/passwd", O_RDONLY), ENOSYS));
    CHILD_CHECK(Fails(kill(getppid(), 0), ENOSYS));
    CHILD_CHECK(kill(getpid(), 0) == 0);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
}

volatile sig_atomic_t g_trapped_nr = -1;
volatile sig_atomic_t g_trapped_arch = 0;

void OnSigsys(int, siginfo_t* info, void* context) {
  g_trapped_nr = info->si_syscall;
  g_trapped_arch = static_cast<sig_atomic_t>(info->si_arch);
#if defined(__x86_64__)
  // The kernel rolls the return register back to the syscall number; a reporting
  // handler sets the result it wants the caller to see.
  static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RAX] = -EPERM;
#endif
}

TEST(SeccompKernelTest, TrapPenaltyRaisesSigsys) {
  auto program = CompilePromises({Promise::kStdio}, Penalty::kTrap);
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_TRUE(program->needs_listener());  // path calls still go to the broker
  const int status = RunLocked(
      *program,
      [] {
        const long rc = socket(AF_INET, SOCK_STREAM, 0);
        CHILD_CHECK(g_trapped_nr == __NR_socket);
        CHILD_CHECK(static_cast<uint32_t>(g_trapped_arch) == AUDIT_ARCH_X86_64);
        CHILD_CHECK(Fails(rc, EPERM));
        // ENOSYS probes do not trap.
        g_trapped_nr = -1;
        CHILD_CHECK(Fails(syscall(__NR_clone3, nullptr, 0), ENOSYS));
        CHILD_CHECK(g_trapped_nr == -1);
        return 0;
      },
      [] {
        struct sigaction sa = {};
        sa.sa_sigaction = OnSigsys;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSYS, &sa, nullptr);
      });
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
}

TEST(SeccompKernelTest, UserNotificationReachesASupervisor) {
  // The broker's side in miniature: the child loads with a listener and passes its fd
  // number through a pipe; the parent takes the fd with pidfd_getfd, receives the
  // notification for a refused openat, checks what the table says about it, and
  // answers EPERM (the kErrno penalty).
  auto program = CompilePromises({Promise::kStdio}, Penalty::kErrno);
  ASSERT_TRUE(program.ok()) << program.status();
  ASSERT_TRUE(program->needs_listener());
  int fdpipe[2];
  ASSERT_EQ(pipe(fdpipe), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(20);
    std::vector<sock_filter> code = program->code;
    PatchSelfPid(code.data(), code.size(), static_cast<uint32_t>(getpid()));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(101);
    int listener = -1;
    if (LoadSeccompProgram(code.data(), code.size(), &listener) != 0) _exit(102);
    if (write(fdpipe[1], &listener, sizeof listener) != sizeof listener) _exit(103);
    const long rc = openat(AT_FDCWD, "/etc/passwd", O_RDONLY);
    _exit(Fails(rc, EPERM) ? 0 : 104);
  }
  close(fdpipe[1]);
  int remote_fd = -1;
  ASSERT_EQ(read(fdpipe[0], &remote_fd, sizeof remote_fd),
            static_cast<ssize_t>(sizeof remote_fd));
  const int pidfd = static_cast<int>(syscall(__NR_pidfd_open, child, 0));
  ASSERT_GE(pidfd, 0) << strerror(errno);
  const int listener = static_cast<int>(syscall(__NR_pidfd_getfd, pidfd, remote_fd, 0));
  ASSERT_GE(listener, 0) << strerror(errno);
  seccomp_notif req;
  memset(&req, 0, sizeof req);
  ASSERT_EQ(ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req), 0) << strerror(errno);
  EXPECT_EQ(req.pid, static_cast<uint32_t>(child));
  EXPECT_EQ(req.data.nr, __NR_openat);
  EXPECT_EQ(req.data.arch, AUDIT_ARCH_X86_64);
  SyscallEvent event;
  event.nr = req.data.nr;
  event.audit_arch = req.data.arch;
  for (int i = 0; i < 6; ++i) event.args[i] = req.data.args[i];
  event.pid = req.pid;
  EXPECT_EQ(PromiseAllowing(event), Promise::kRpath);
  seccomp_notif_resp resp;
  memset(&resp, 0, sizeof resp);
  resp.id = req.id;
  resp.error = -EPERM;
  ASSERT_EQ(ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp), 0) << strerror(errno);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
  close(listener);
  close(pidfd);
  close(fdpipe[0]);
}

// The BPF and the C++ evaluation of the table (PromisesAllowing) must agree. Each case
// is a raw syscall that is harmless whether it runs or not (bad fds, nonexistent paths,
// signal 0); the child reports which ones the filter refused.
template <typename T>
uint64_t U(T v) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<uint64_t>(v);
  } else {
    return static_cast<uint64_t>(v);
  }
}

struct AgreementCase {
  const char* what;
  long nr;
  std::function<std::array<uint64_t, 6>(pid_t self, pid_t parent)> args;
};

std::vector<AgreementCase> AgreementCases() {
  static const char kEmpty[] = "";
  static const char kNoPath[] = "/nonexistent-vow-dir/x";
  static struct sockaddr_un sun = {AF_UNIX, {}};
  auto fixed = [](std::array<uint64_t, 6> a) {
    return [a](pid_t, pid_t) { return a; };
  };
  const uint64_t high = uint64_t{0xbeef} << 32;
  return {
      {"ioctl TCGETS", __NR_ioctl, fixed({U(-1), TCGETS})},
      {"ioctl TCGETS|high", __NR_ioctl, fixed({U(-1), TCGETS | high})},
      {"ioctl TCSETS", __NR_ioctl, fixed({U(-1), TCSETS})},
      {"ioctl TIOCSPGRP", __NR_ioctl, fixed({U(-1), TIOCSPGRP})},
      {"ioctl TIOCSTI", __NR_ioctl, fixed({U(-1), TIOCSTI})},
      {"ioctl TIOCSTI|high", __NR_ioctl, fixed({U(-1), TIOCSTI | high})},
      {"fcntl F_GETFL", __NR_fcntl, fixed({U(-1), F_GETFL})},
      {"fcntl F_SETLK", __NR_fcntl, fixed({U(-1), F_SETLK})},
      {"fcntl F_OFD_SETLKW|high", __NR_fcntl, fixed({U(-1), F_OFD_SETLKW | high})},
      {"flock", __NR_flock, fixed({U(-1), LOCK_EX})},
      {"openat rdonly", __NR_openat, fixed({U(AT_FDCWD), U(kNoPath), O_RDONLY})},
      {"openat wronly", __NR_openat, fixed({U(AT_FDCWD), U(kNoPath), O_WRONLY})},
      {"openat creat", __NR_openat, fixed({U(AT_FDCWD), U(kNoPath), O_RDWR | O_CREAT, 0600})},
      {"newfstatat empty", __NR_newfstatat, fixed({U(-1), U(kEmpty), 0, AT_EMPTY_PATH})},
      {"newfstatat path", __NR_newfstatat, fixed({U(AT_FDCWD), U(kNoPath), 0, 0})},
      {"statx path", __NR_statx, fixed({U(AT_FDCWD), U(kNoPath), 0, 0, 0})},
      {"mmap exec", __NR_mmap,
       fixed({0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, U(-1), 0})},
      {"mmap rw", __NR_mmap,
       fixed({0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, U(-1), 0})},
      {"kill self", __NR_kill, [](pid_t self, pid_t) { return std::array<uint64_t, 6>{U(self), 0}; }},
      {"kill parent", __NR_kill,
       [](pid_t, pid_t parent) { return std::array<uint64_t, 6>{U(parent), 0}; }},
      {"socket inet", __NR_socket, fixed({AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0})},
      {"socket inet raw", __NR_socket, fixed({AF_INET, SOCK_RAW, IPPROTO_ICMP})},
      {"socket unix", __NR_socket, fixed({AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0})},
      {"sendto null", __NR_sendto, fixed({U(-1), 0, 0, 0, 0, 0})},
      {"sendto addr", __NR_sendto, fixed({U(-1), 0, 0, 0, U(&sun), sizeof sun})},
      {"prctl get dumpable", __NR_prctl, fixed({PR_GET_DUMPABLE})},
      {"prctl set seccomp", __NR_prctl, fixed({PR_SET_SECCOMP, 99})},
      {"prlimit64 read", __NR_prlimit64, fixed({0, RLIMIT_NOFILE, 0, 0})},
      {"unshare 0", __NR_unshare, fixed({0})},
      {"setpgid", __NR_setpgid, fixed({U(-1), U(-1)})},
      {"wait4", __NR_wait4, fixed({U(-2), 0, WNOHANG, 0})},
  };
}

TEST(SeccompKernelTest, BpfAgreesWithTheTable) {
  const std::vector<AgreementCase> cases = AgreementCases();
  const PromiseSet sets[] = {
      {Promise::kStdio},
      {Promise::kStdio, Promise::kRpath},
      {Promise::kStdio, Promise::kWpath, Promise::kTty},
      {Promise::kStdio, Promise::kCpath, Promise::kFlock, Promise::kProtExec},
      {Promise::kStdio, Promise::kInet, Promise::kProc},
      {Promise::kStdio, Promise::kUnix},
  };
  for (const PromiseSet& set : sets) {
    int results[2];
    ASSERT_EQ(pipe(results), 0);
    const pid_t parent = getpid();
    pid_t child = -1;
    const int status = RunLocked(
        TestProgram(set),
        [&] {
          // One byte per case: 1 = refused by the filter.
          std::vector<char> refused(cases.size());
          for (size_t i = 0; i < cases.size(); ++i) {
            const auto a = cases[i].args(getpid(), parent);
            const long rc = syscall(cases[i].nr, a[0], a[1], a[2], a[3], a[4], a[5]);
            // socket(AF_UNIX) without `unix` is EACCES (see the compiler), not the penalty.
            refused[i] = (rc == -1 && (errno == kRefused || errno == EACCES)) ? 1 : 0;
          }
          return write(results[1], refused.data(), refused.size()) ==
                         static_cast<ssize_t>(refused.size())
                     ? 0
                     : 1;
        },
        {}, false, &child);
    close(results[1]);
    const std::string got = ReadAll(results[0]);
    close(results[0]);
    ASSERT_TRUE(ExitedOk(status)) << set.ToString() << ": " << Describe(status);
    ASSERT_EQ(got.size(), cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      SyscallEvent e;
      e.nr = static_cast<int>(cases[i].nr);
      e.audit_arch = AuditArch(NativeArch());
      const auto a = cases[i].args(child, parent);
      for (int j = 0; j < 6; ++j) e.args[j] = a[j];
      e.pid = static_cast<uint32_t>(child);
      // Path calls with a string are never the kernel's (no broker here: refused).
      const bool brokered = IsBrokeredSyscall(SyscallName(NativeArch(), e.nr)) &&
                            !(SyscallName(NativeArch(), e.nr) == "newfstatat" && a[1] == 0) &&
                            !(SyscallName(NativeArch(), e.nr) == "statx" && a[1] == 0);
      const bool table_allows =
          !brokered && (PromisesAllowing(e).bits() & set.bits()) != 0;
      EXPECT_EQ(got[i] == 0, table_allows)
          << "[" << set.ToString() << "] " << cases[i].what << ": BPF "
          << (got[i] ? "refused" : "allowed") << ", table "
          << (table_allows ? "allows" : "refuses");
    }
  }
}

TEST(SeccompKernelTest, PatchSelfPidRewritesEveryPlaceholder) {
  const BpfProgram stdio = TestProgram({Promise::kStdio});
  std::vector<sock_filter> code = stdio.code;
  size_t placeholders = 0;
  for (const sock_filter& f : code) placeholders += (f.k == kSelfPidPlaceholder);
  // kill and tgkill compare the same argument with the same value: libseccomp may share
  // one block between them, so the count is 1 or 2. Every occurrence must be a jeq.
  const size_t patched = PatchSelfPid(code.data(), code.size(), 4242);
  EXPECT_GE(patched, 1u);
  EXPECT_LE(patched, 2u);
  EXPECT_EQ(patched, placeholders);
  for (const sock_filter& f : code) EXPECT_NE(f.k, kSelfPidPlaceholder);
  const BpfProgram rpath = TestProgram({Promise::kRpath});
  code = rpath.code;
  EXPECT_EQ(PatchSelfPid(code.data(), code.size(), 4242), 0u);
}

TEST(SeccompKernelTest, LoaderRejectsBadPrograms) {
  EXPECT_EQ(LoadSeccompProgram(nullptr, 0, nullptr), -EINVAL);
  std::vector<sock_filter> huge(BPF_MAXINSNS + 1, sock_filter{BPF_RET | BPF_K, 0, 0, 0});
  EXPECT_EQ(LoadSeccompProgram(huge.data(), huge.size(), nullptr), -EINVAL);
}

}  // namespace
}  // namespace vow

namespace vow {
namespace {

// stdio lets a program add a filter of its own with flags 0 (it only narrows), never
// with a listener (NEW_LISTENER: its own answers would replace the broker's), TSYNC or
// any other flag, and never strict mode.
TEST(SeccompKernelTest, StdioAddsFiltersOnlyWithFlagsZero) {
  const BpfProgram program = TestProgram({Promise::kStdio});
  const int status = RunLocked(program, [&] {
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    for (unsigned flags : {SECCOMP_FILTER_FLAG_NEW_LISTENER, SECCOMP_FILTER_FLAG_TSYNC,
                           SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW}) {
      CHILD_CHECK(Fails(syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog), kRefused));
    }
    // Garbage in the high half of the flags register is ignored by the kernel (unsigned
    // int) and by the filter alike; the low half must be 0.
    CHILD_CHECK(syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0xff00000000ul, &prog) == 0);
    CHILD_CHECK(Fails(syscall(__NR_seccomp, SECCOMP_SET_MODE_STRICT, 0, nullptr), kRefused));
    CHILD_CHECK(Fails(syscall(__NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, nullptr), kRefused));
    CHILD_CHECK(syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
}

// The execpromises program (what the exec tracer injects): path calls are ALLOWed so
// the worker's own filter beneath decides them (here: its violation action), and what
// only the narrower set refuses gets EPERM (errno) or kills (kill), whatever the outer
// filter allows.
TEST(SeccompKernelTest, ExecPromisesProgramNarrowsAndLeavesPathCallsToTheOuterFilter) {
  const BpfProgram outer = TestProgram({Promise::kStdio, Promise::kInet, Promise::kRpath});
  auto narrow = CompileExecPromises({Promise::kStdio}, Penalty::kErrno);
  ASSERT_TRUE(narrow.ok()) << narrow.status();
  EXPECT_EQ(narrow->brokered_action, SECCOMP_RET_ALLOW);
  EXPECT_FALSE(narrow->needs_listener());
  auto load_narrow = [&](const BpfProgram& p) {
    struct sock_fprog fprog = {static_cast<unsigned short>(p.code.size()),
                               const_cast<sock_filter*>(p.code.data())};
    return syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
  };
  int status = RunLocked(outer, [&] {
    CHILD_CHECK(load_narrow(*narrow) == 0);
    CHILD_CHECK(Fails(socket(AF_INET, SOCK_STREAM, 0), EPERM));  // outer allows, narrow not
    CHILD_CHECK(Fails(openat(AT_FDCWD, "/dev/null", O_RDONLY), kRefused));  // the outer's
    CHILD_CHECK(getpid() > 0);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
  // Alone: a path call passes the narrowing program (the outer filter is what stops it).
  status = RunLocked(outer, [&] { return 0; }, [&] {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(103);
    if (load_narrow(*narrow) != 0) _exit(104);
    const int fd = openat(AT_FDCWD, "/dev/null", O_RDONLY);
    _exit(fd >= 0 ? 0 : 105);
  });
  EXPECT_TRUE(ExitedOk(status)) << Describe(status);
  auto kill = CompileExecPromises({Promise::kStdio}, Penalty::kKill);
  ASSERT_TRUE(kill.ok()) << kill.status();
  status = RunLocked(outer, [&] {
    CHILD_CHECK(load_narrow(*kill) == 0);
    socket(AF_INET, SOCK_STREAM, 0);
    return 0;
  });
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) << Describe(status);
}

}  // namespace
}  // namespace vow
