// What Verify() asks of the kernel after WarmUpOpenSsl(): it must run under a `stdio`
// lock-down, so no file may be opened (config files, engines, /etc/localtime, /dev/tty,
// /dev/urandom...) and no clock may be read (the time is an input).
//
// Each check runs in a forked child that installs a seccomp filter (libseccomp) after
// the warm-up and before verifying the whole corpus; the parent checks how it ended.
// This binary also interposes time(), gettimeofday() and clock_gettime() (normally vDSO
// calls that seccomp never sees) to count clock reads.
#include <errno.h>
#include <openssl/asn1.h>
#include <openssl/x509.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "examples/x509_oracle/corpus.h"
#include "examples/x509_oracle/verify.h"
#include "gtest/gtest.h"

namespace {
std::atomic<int> g_clock_reads{0};
}  // namespace

// Interposers: the executable's definitions win over libc's for libcrypto's calls.
// They forward to the real syscalls (not the vDSO), so a clock read is also visible to
// a seccomp filter.
extern "C" time_t time(time_t* t) {
  g_clock_reads.fetch_add(1);
  return static_cast<time_t>(syscall(SYS_time, t));
}
extern "C" int gettimeofday(struct timeval* tv, void* tz) {
  g_clock_reads.fetch_add(1);
  return static_cast<int>(syscall(SYS_gettimeofday, tv, tz));
}
extern "C" int clock_gettime(clockid_t clk, struct timespec* ts) {
  g_clock_reads.fetch_add(1);
  return static_cast<int>(syscall(SYS_clock_gettime, clk, ts));
}

namespace vow::x509 {
namespace {

// Runs `body` in a forked child; returns its wait status.
template <typename F>
int RunInChild(F body) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// 0 if Verify gives every corpus entry its expected verdict, else 1 + index.
int VerifyCorpus(const std::vector<CorpusEntry>& corpus) {
  for (size_t i = 0; i < corpus.size(); ++i) {
    const CorpusEntry& e = corpus[i];
    Verdict v = Verify(e.request);
    bool ok = e.expect_input_error
                  ? (!v.valid && !v.input_error.empty())
                  : (v.input_error.empty() && v.valid == e.expect_valid &&
                     v.error_code == e.expect_error && v.error_depth == e.expect_depth);
    if (!ok) return 1 + static_cast<int>(i);
  }
  return 0;
}

TEST(VerifySyscallsTest, NoFileIsOpenedAfterWarmUp) {
  int status = RunInChild([] {
    if (!WarmUpOpenSsl()) return 100;
    std::vector<CorpusEntry> corpus = MakeCorpus();  // before the filter: keygen
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr) return 101;
    for (int nr : {SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(creat),
                   SCMP_SYS(socket), SCMP_SYS(connect), SCMP_SYS(execve)}) {
      if (seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, nr, 0) != 0) return 102;
    }
    if (seccomp_load(ctx) != 0) return 103;
    seccomp_release(ctx);
    // Twice: the second round must not need anything the first did not.
    int rc = VerifyCorpus(corpus);
    if (rc == 0) rc = VerifyCorpus(corpus);
    return rc;
  });
  ASSERT_FALSE(WIFSIGNALED(status))
      << "killed by signal " << WTERMSIG(status) << " (SIGSYS = a file was opened)";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "100+: setup failed; 1..99: corpus entry failed";
}

TEST(VerifySyscallsTest, SeccompCatchesOpenWithoutWarmUp) {
  // Control: the same filter kills a child that lets OpenSSL/glibc initialise lazily
  // (first gmtime_r reads /etc/localtime), so the test above can fail.
  int status = RunInChild([] {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(openat), 0);
    seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(open), 0);
    if (seccomp_load(ctx) != 0) return 103;
    FILE* f = fopen("/etc/hostname", "r");
    return f == nullptr ? 1 : 0;
  });
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

// The inventory: which syscalls does Verify make at all? A filter allows only what
// memory management and exiting need; any other syscall traps, the handler records
// its number (and makes it fail with ENOSYS), and the child reports the list.
constexpr int kMaxRecorded = 64;
volatile sig_atomic_t g_recorded_count = 0;
volatile int g_recorded[kMaxRecorded];

void RecordSyscall(int, siginfo_t* info, void* uctx) {
  int n = g_recorded_count;
  if (n < kMaxRecorded) {
    g_recorded[n] = info->si_syscall;
    g_recorded_count = n + 1;
  }
  static_cast<ucontext_t*>(uctx)->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
}

TEST(VerifySyscallsTest, InventoryOfSyscallsAtVerifyTime) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  int status = RunInChild([&] {
    close(pipefd[0]);
    if (!WarmUpOpenSsl()) return 100;
    std::vector<CorpusEntry> corpus = MakeCorpus();
    struct sigaction sa = {};
    sa.sa_sigaction = RecordSyscall;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, nullptr);
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (ctx == nullptr) return 101;
    for (int nr : {SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
                   SCMP_SYS(madvise), SCMP_SYS(mprotect), SCMP_SYS(futex),
                   SCMP_SYS(write), SCMP_SYS(exit_group), SCMP_SYS(exit),
                   SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
                   // AddressSanitizer's signal interception asks for it in the handler.
                   SCMP_SYS(sigaltstack)}) {
      if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) return 102;
    }
    if (seccomp_load(ctx) != 0) return 103;
    g_clock_reads.store(0);
    int rc = VerifyCorpus(corpus);
    int reads = g_clock_reads.load();
    int n = g_recorded_count;
    // Report: verify result, clock reads, then the recorded syscall numbers.
    int header[3] = {rc, reads, n};
    if (write(pipefd[1], header, sizeof(header)) != sizeof(header)) return 104;
    for (int i = 0; i < n; ++i) {
      int nr = g_recorded[i];
      if (write(pipefd[1], &nr, sizeof(nr)) != sizeof(nr)) return 104;
    }
    return 0;
  });
  close(pipefd[1]);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  int header[3];
  ASSERT_EQ(read(pipefd[0], header, sizeof(header)), static_cast<ssize_t>(sizeof(header)));
  std::set<std::string> names;
  for (int i = 0; i < header[2]; ++i) {
    int nr;
    ASSERT_EQ(read(pipefd[0], &nr, sizeof(nr)), static_cast<ssize_t>(sizeof(nr)));
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    names.insert(name != nullptr ? name : std::to_string(nr));
    free(name);
  }
  close(pipefd[0]);
  std::string list;
  for (const std::string& n : names) list += n + " ";
  std::printf("syscalls Verify made beyond memory management: [%s]\n", list.c_str());
  EXPECT_EQ(header[0], 0) << "corpus entry " << header[0] - 1 << " got a wrong verdict";
  EXPECT_EQ(header[1], 0) << "clock reads during Verify";
  EXPECT_TRUE(names.empty()) << list;
}

TEST(VerifySyscallsTest, NoClockReadWhenTheTimeIsGiven) {
  ASSERT_TRUE(WarmUpOpenSsl());
  std::vector<CorpusEntry> corpus = MakeCorpus();
  // Control: the interposer sees OpenSSL's own clock reads.
  ASN1_TIME* t = ASN1_TIME_new();
  ASSERT_TRUE(ASN1_TIME_set(t, 0));
  int before = g_clock_reads.load();
  X509_cmp_current_time(t);
  EXPECT_GT(g_clock_reads.load(), before) << "interposition does not work";
  ASN1_TIME_free(t);

  before = g_clock_reads.load();
  for (const CorpusEntry& e : corpus) Verify(e.request);
  EXPECT_EQ(g_clock_reads.load(), before);
}

}  // namespace
}  // namespace vow::x509
