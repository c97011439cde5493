// The broker asks for synchronous wake-ups on every worker's seccomp listener
// (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6; broker/broker_hello.cc): an answer sent
// with SECCOMP_IOCTL_NOTIF_SEND wakes the worker on the CPU of the thread that answered.
// Seen from outside: the broker's threads are kept on one CPU (B), the worker is moved to
// another (A) and then allowed both; after a brokered access() it runs on B. Without the
// flag the scheduler wakes it where it slept (A, idle) or, when A is busy, possibly on B:
// the test asks for B in every one of its rounds. Runs in a forked child (it pins its
// threads); the scheduling class is the default one (SCHED_OTHER: the flag is a hint to
// the fair class's wake-up placement only).
#include <sched.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "broker/broker.h"
#include "gtest/gtest.h"
#include "worker/client.h"

namespace vow {
namespace {

constexpr int kRounds = 20;
// Rounds that may end elsewhere: a worker preempted between queueing its notification
// and going to sleep is still on A's run queue when the answer comes, and is only marked
// running there (seen with 8 copies of this test at once, whose spinning workers keep A
// busy). Without the flag nearly every round ends on A (its CPU, idle).
constexpr int kMaxElsewhere = 4;

// Shared between the test's child and the worker (an anonymous MAP_SHARED mapping made
// before the spawn).
struct Shared {
  std::atomic<int> round{-1};        // the test: run round N (the worker then calls)
  std::atomic<int> cpu_now{-1};      // the worker: the CPU it spins on, before the call
  std::atomic<int> cpu_after[kRounds];  // the worker: its CPU right after round N's call
  std::atomic<int> done{0};
};

bool KernelAtLeast(int major, int minor) {
  struct utsname u;
  if (uname(&u) != 0) return false;
  int ma = 0, mi = 0;
  if (sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

bool SetCpus(pid_t pid, int a, int b) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(a, &set);
  if (b >= 0) CPU_SET(b, &set);
  return sched_setaffinity(pid, sizeof(set), &set) == 0;
}

// Waits up to 2 s for `cond`.
template <typename F>
bool WaitFor(F cond) {
  for (int i = 0; i < 20000; ++i) {
    if (cond()) return true;
    usleep(100);
  }
  return false;
}

// The child's body; returns its exit code (0: the worker woke on B every round).
int RunChild(int cpu_a, int cpu_b, Shared* shared) {
  // This thread and every broker thread started from it: B only.
  if (!SetCpus(0, cpu_b, -1)) return 10;
  BrokerOptions options;
  options.pool_threads_at_create = 1;
  auto broker = Broker::Create(options);
  if (!broker.ok()) return 11;
  Policy policy;  // stdio: access("/etc/passwd") is a brokered path call (libc set or ENOENT)
  auto id = (*broker)->Spawn(policy, [shared](Client&) {
    for (int r = 0; r < kRounds; ++r) {
      // Spin (no syscall) until round r is called, saying where it runs.
      while (shared->round.load() != r) shared->cpu_now.store(sched_getcpu());
      access("/etc/passwd", R_OK);
      shared->cpu_after[r].store(sched_getcpu());
    }
    while (shared->done.load() == 0) {
    }
    return 0;
  });
  if (!id.ok()) return 12;
  const pid_t worker = (*broker)->pid(*id);
  int failures = 0;
  for (int r = 0; r < kRounds; ++r) {
    // Move the worker to A, then let it run on either CPU and call.
    if (!SetCpus(worker, cpu_a, -1)) return 13;
    shared->cpu_now.store(-1);
    if (!WaitFor([&] { return shared->cpu_now.load() == cpu_a; })) return 14;
    if (!SetCpus(worker, cpu_a, cpu_b)) return 15;
    shared->round.store(r);
    if (!WaitFor([&] { return shared->cpu_after[r].load() >= 0; })) return 16;
    if (shared->cpu_after[r].load() != cpu_b) {
      fprintf(stderr, "round %d: woke on CPU %d, the broker's threads are on %d\n", r,
              shared->cpu_after[r].load(), cpu_b);
      ++failures;
    }
  }
  shared->done.store(1);
  auto result = (*broker)->Wait(*id, absl::Seconds(30));
  if (!result.ok() || result->kind != WorkerResult::Kind::kExited || result->exit_code != 0) {
    return 17;
  }
  return failures <= kMaxElsewhere ? 0 : 20 + failures;
}

TEST(SyncWakeupTest, AnsweredWorkerRunsOnTheAnsweringThreadsCpu) {
  if (!KernelAtLeast(6, 6)) GTEST_SKIP() << "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP needs Linux 6.6";
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  int cpus[2] = {-1, -1};
  for (int c = 0, n = 0; c < CPU_SETSIZE && n < 2; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus[n++] = c;
  }
  if (cpus[1] < 0) GTEST_SKIP() << "needs two CPUs";
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* shared = new (mem) Shared();
  for (auto& c : shared->cpu_after) c.store(-1);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(RunChild(cpus[0], cpus[1], shared));
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10-17: set-up failed; 20+N: N of " << kRounds
      << " rounds woke the worker elsewhere than on the answering thread's CPU (at most "
      << kMaxElsewhere << " may)";
  munmap(mem, sizeof(Shared));
}

}  // namespace
}  // namespace vow
