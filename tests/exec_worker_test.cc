// Workers that are separate binaries: SpawnExec, LockDownExecWorker, the filter sent over
// the channel; and the `vow` command (run, learn, check) on such a worker.
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/broker.h"
#include "broker/learn.h"
#include "policies/promise_compiler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace vow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Kind = WorkerResult::Kind;

using testing::Runfile;

class ExecWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::move(*Broker::Create());
    worker_ = Runfile("tests/test_worker");
    ASSERT_EQ(access(worker_.c_str(), X_OK), 0) << worker_;
  }
  WorkerResult Exec(const Policy& policy, std::vector<std::string> args, int out_fd = -1) {
    auto prepared = broker_->Prepare(policy);
    EXPECT_TRUE(prepared.ok()) << prepared.status();
    args.insert(args.begin(), worker_);
    SpawnOptions options;
    options.stdout_fd = out_fd;
    options.stderr_fd = 2;
    auto id = broker_->SpawnExec(*prepared, args, options);
    EXPECT_TRUE(id.ok()) << id.status();
    auto result = broker_->Wait(*id, absl::Seconds(30));
    EXPECT_TRUE(result.ok());
    return *result;
  }
  std::unique_ptr<Broker> broker_;
  std::string worker_;
};

// The exec tracer's table (which images hold the full promises; execpromises) is mapped by
// the broker and its tracer only: a worker forked while a tracer lives must not inherit it
// (one that could write it could give a narrowed image its full promises; found by review:
// it was an anonymous shared mapping every later fork inherited).
TEST_F(ExecWorkerTest, AForkedWorkerDoesNotInheritTheTracerTable) {
  Policy narrowed;
  narrowed.promises = PromiseSet{Promise::kStdio, Promise::kExec};
  narrowed.exec_promises = PromiseSet{Promise::kStdio};
  auto prepared = broker_->Prepare(narrowed);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  SpawnOptions options;
  options.stdout_fd = out[1];
  options.stderr_fd = 2;
  auto traced = broker_->SpawnExec(*prepared, {worker_, "pause"}, options);
  close(out[1]);
  ASSERT_TRUE(traced.ok()) << traced.status();
  char line[16] = {};
  ASSERT_GT(read(out[0], line, sizeof(line) - 1), 0);
  close(out[0]);
  // The setup holds: the table is mapped here while the tracer lives.
  ASSERT_THAT(testing::ReadFile("/proc/self/maps"), HasSubstr("vow-exec-tracer"));

  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  SpawnOptions forked_options;
  forked_options.stdout_fd = ready[1];
  auto forked = broker_->Spawn(Policy{}, [](Client&) {
    if (write(1, "r", 1) != 1) return 1;
    pause();
    return 0;
  }, forked_options);
  close(ready[1]);
  ASSERT_TRUE(forked.ok()) << forked.status();
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  const std::string maps =
      testing::ReadFile(absl::StrCat("/proc/", broker_->pid(*forked), "/maps"));
  ASSERT_FALSE(maps.empty());
  EXPECT_THAT(maps, Not(HasSubstr("vow-exec-tracer")));
  EXPECT_THAT(maps, Not(HasSubstr("/dev/zero (deleted)")));
  broker_->Kill(*forked);
  broker_->Kill(*traced);
  (void)broker_->Wait(*forked, absl::Seconds(30));
  (void)broker_->Wait(*traced, absl::Seconds(30));
}

TEST_F(ExecWorkerTest, LocksDownAndRuns) {
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  WorkerResult result = Exec(Policy{}, {"ok"}, out[1]);
  close(out[1]);
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(testing::ReadAll(out[0]), "locked and running\n");
  close(out[0]);
  // The broker audited the whole handshake.
  // Locked by the broker's child before execve: hello first, then the one execve.
  bool hello = false, exec_after_hello = false;
  for (const AuditEntry& e : broker_->audit().Entries()) {
    hello |= e.request == "hello";
    exec_after_hello |= hello && e.allowed && absl::StartsWith(e.request, "execve");
  }
  EXPECT_TRUE(hello);
  EXPECT_TRUE(exec_after_hello);
}

// The exec child shares the broker's memory until its execve, and "dumpable" belongs to
// the memory: the lock-down must not make the broker itself non-dumpable (no core dumps,
// /proc/<broker> owned by root, its own user's ptrace refused).
TEST_F(ExecWorkerTest, TheBrokerStaysDumpable) {
  ASSERT_EQ(prctl(PR_GET_DUMPABLE), 1);
  WorkerResult result = Exec(Policy{}, {"ok"});
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(prctl(PR_GET_DUMPABLE), 1);
}

TEST_F(ExecWorkerTest, DirectOpenRefusedAndNamed) {
  WorkerResult result = Exec(Policy{}, {"open_direct"});
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 11);  // open() failed
  ASSERT_EQ(result.refusals.size(), 1u) << result.ToString();
  EXPECT_THAT(result.refusals[0].ToString(), HasSubstr("openat(\"/etc/hostname\""));
}

TEST_F(ExecWorkerTest, BrokeredOpen) {
  testing::TempDir dir;
  std::string file = dir.WriteFile("data.txt", "from the broker");
  Policy policy;
  policy.paths.push_back(PathRule{dir.path(), /*read=*/true});
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  WorkerResult result = Exec(policy, {"brokered", file}, out[1]);
  close(out[1]);
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(testing::ReadAll(out[0]), "from the broker");
  close(out[0]);
}

TEST_F(ExecWorkerTest, GarbageEndsTheWorker) {
  WorkerResult result = Exec(Policy{}, {"garbage"});
  EXPECT_EQ(result.kind, Kind::kProtocolError) << result.ToString();
}

// Garbage and an immediate exit: the broker often reads the bytes only when it reaps the
// worker (the drain). It broke the protocol all the same, and the result says so.
TEST_F(ExecWorkerTest, GarbageThenExitIsStillAProtocolError) {
  for (int i = 0; i < 20; ++i) {
    WorkerResult result = Exec(Policy{}, {"garbage_exit"});
    ASSERT_EQ(result.kind, Kind::kProtocolError) << "run " << i << ": " << result.ToString();
  }
}

// The same, deterministically: a throttled worker's channel is out of epoll, so garbage it
// sends just before exiting is read only by the drain when it is reaped.
// Almost always: the worker writes right after a throttled answer, and the channel stays out
// of epoll for 1/32 s. On a loaded machine the exit can take longer than that to reach the
// broker's pidfd, and the garbage is then read live (also a protocol error, but not the
// drain): up to five runs, each a protocol error, at least one of them found by the drain.
TEST_F(ExecWorkerTest, GarbageFromAThrottledWorkerIsAProtocolError) {
  bool drained = false;
  for (int run = 0; run < 5 && !drained; ++run) {
    WorkerResult result = Exec(Policy{}, {"throttled_garbage"});
    ASSERT_EQ(result.kind, Kind::kProtocolError) << "run " << run << ": " << result.ToString();
    drained = absl::StrContains(result.reason, "read after it exited");
  }
  EXPECT_TRUE(drained) << "the garbage was never left to the drain";
}

// SpawnExec's child shares the broker's memory until it execs (CLONE_VM). A signal that
// reaches it there must not run one of the broker's handlers on that memory: the child
// starts with every signal blocked and sets them back to the default before unblocking.
// Here SIGUSR1, which this process catches, is sent to each spawn child as soon as it
// shows up in /proc (while it still waits to be let go): a handler that ran in a child
// would see a pid other than ours.
std::atomic<pid_t> g_test_pid{0};
std::atomic<bool> g_handler_ran_elsewhere{false};
void RecordWhereTheHandlerRan(int) {
  if (getpid() != g_test_pid.load()) g_handler_ran_elsewhere = true;
}

TEST_F(ExecWorkerTest, SpawnChildNeverRunsTheBrokersSignalHandlers) {
  g_test_pid = getpid();
  struct sigaction sa = {}, old = {};
  sa.sa_handler = RecordWhereTheHandlerRan;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  const pid_t spawner = static_cast<pid_t>(syscall(SYS_gettid));
  const std::string children = absl::StrCat("/proc/self/task/", spawner, "/children");
  std::atomic<bool> stop{false};
  std::atomic<int> signalled{0};
  std::thread killer([&] {
    while (!stop.load()) {
      FILE* f = fopen(children.c_str(), "re");
      if (f == nullptr) continue;
      int pid;
      while (fscanf(f, "%d", &pid) == 1) {
        if (kill(pid, SIGUSR1) == 0) ++signalled;
      }
      fclose(f);
    }
  });
  auto prepared = broker_->Prepare(Policy{});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  int kinds_signaled = 0;
  for (int i = 0; i < 40; ++i) {
    auto id = broker_->SpawnExec(*prepared, {"/bin/true"});
    ASSERT_TRUE(id.ok()) << id.status();
    auto result = broker_->Wait(*id, absl::Seconds(30));
    ASSERT_TRUE(result.ok()) << result.status();
    // Killed by SIGUSR1 (default action) or run to the end: both fine.
    if (result->kind == Kind::kSignaled && result->signal == SIGUSR1) ++kinds_signaled;
  }
  stop = true;
  killer.join();
  ASSERT_EQ(sigaction(SIGUSR1, &old, nullptr), 0);
  EXPECT_GT(signalled.load(), 0) << "no child was ever signalled: the test proved nothing";
  EXPECT_FALSE(g_handler_ran_elsewhere.load())
      << "a spawn child ran this process's SIGUSR1 handler (" << signalled.load()
      << " signals sent, " << kinds_signaled << " children ended by SIGUSR1)";
}

// Spawns `rounds` exec'd workers ("ok") one after the other on each of `threads` threads
// at once, waits for each; every failure is a test failure. Returns how many exited 0.
int SpawnOkWorkersFromThreads(Broker& broker, const std::shared_ptr<const PreparedPolicy>& prepared,
                              const std::string& worker, int threads, int rounds) {
  std::atomic<int> ok{0};
  std::vector<std::vector<std::string>> failures(threads);
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        auto id = broker.SpawnExec(prepared, {worker, "ok"});
        if (!id.ok()) {
          failures[t].push_back(std::string(id.status().message()));
          continue;
        }
        auto result = broker.Wait(*id, absl::Seconds(30));
        if (result.ok() && result->kind == WorkerResult::Kind::kExited &&
            result->exit_code == 0) {
          ++ok;
        } else {
          failures[t].push_back(result.ok() ? result->ToString()
                                            : std::string(result.status().message()));
        }
      }
    });
  }
  for (std::thread& t : running) t.join();
  for (const auto& f : failures) {
    for (const std::string& why : f) ADD_FAILURE() << why;
  }
  return ok.load();
}

// Exec children share the broker's memory and run LockDown at the same time (each sends
// its own spawn's prebuilt hello, nothing in a static buffer): exec'd workers spawned
// from several threads at once all get locked, say hello and run.
TEST_F(ExecWorkerTest, ExecSpawnsFromManyThreadsAtOnce) {
  auto prepared = broker_->Prepare(Policy{});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(SpawnOkWorkersFromThreads(*broker_, *prepared, worker_, 4, 30), 120);
}

// Two threads' exec children at once, many times: the hook (after the clone, before the
// release) holds each child 20 ms and counts the children held at the same moment, so
// the test sees that two children shared the memory at once; each spawn's worker says
// hello (the broker checks it) and exits 0, and the broker is dumpable again after.
std::atomic<int> g_children_held{0};
std::atomic<int> g_children_held_max{0};
void HoldTheChild(pid_t) {
  const int now = g_children_held.fetch_add(1) + 1;
  int max = g_children_held_max.load();
  while (now > max && !g_children_held_max.compare_exchange_weak(max, now)) {
  }
  absl::SleepFor(absl::Milliseconds(20));
  g_children_held.fetch_sub(1);
}

TEST_F(ExecWorkerTest, ExecChildrenOfTwoThreadsRunAtOnce) {
  auto prepared = broker_->Prepare(Policy{});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1) << "the test process starts dumpable";
  g_children_held = 0;
  g_children_held_max = 0;
  SetExecChildHookForTesting(HoldTheChild);
  constexpr int kRounds = 40;
  const int ok = SpawnOkWorkersFromThreads(*broker_, *prepared, worker_, 2, kRounds);
  SetExecChildHookForTesting(nullptr);
  EXPECT_EQ(ok, 2 * kRounds);
  EXPECT_EQ(g_children_held_max.load(), 2)
      << "no two exec children were ever cloned and unreleased at the same time";
  EXPECT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1)
      << "the children's identity drop left the broker non-dumpable";
}

// A child stopped before its execve (a terminal's SIGTTOU, a debugger's SIGSTOP) keeps
// neither its SpawnExec nor the next one waiting: past exec_deadline it is killed, the
// spawn fails saying why, and a SpawnExec started meanwhile from another thread runs.
// The hook stops the first child only, after its clone and before its release.
std::atomic<int> g_children_seen{0};
std::atomic<pid_t> g_stopped_child{0};
void StopTheFirstChild(pid_t pid) {
  if (g_children_seen.fetch_add(1) != 0) return;
  if (kill(pid, SIGSTOP) == 0) g_stopped_child = pid;
}

TEST_F(ExecWorkerTest, AChildStoppedBeforeItsExecveFailsItsSpawnInTime) {
  auto prepared = broker_->Prepare(Policy{});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  g_children_seen = 0;
  g_stopped_child = 0;
  SetExecChildHookForTesting(StopTheFirstChild);
  SpawnOptions options;
  options.exec_deadline = absl::Milliseconds(500);
  std::atomic<bool> first_done{false};
  absl::StatusOr<WorkerId> first = absl::UnknownError("not run");
  absl::Duration first_took;
  std::thread stuck([&] {
    const absl::Time start = absl::Now();
    first = broker_->SpawnExec(*prepared, {worker_, "ok"}, options);
    first_took = absl::Now() - start;
    first_done = true;
  });
  // Without a bound the first spawn never returns: after 20 s this test kills the stopped
  // child itself, so that it ends (and fails) instead of hanging.
  std::thread watchdog([&] {
    const absl::Time until = absl::Now() + absl::Seconds(20);
    while (!first_done.load() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(10));
    if (!first_done.load() && g_stopped_child.load() > 0) kill(g_stopped_child.load(), SIGKILL);
  });
  while (g_children_seen.load() == 0 && !first_done.load()) absl::SleepFor(absl::Milliseconds(1));
  // The first one's child is stopped now: this one does not wait for it.
  const absl::Time second_start = absl::Now();
  auto second = broker_->SpawnExec(*prepared, {worker_, "ok"});
  const absl::Duration second_took = absl::Now() - second_start;
  stuck.join();
  watchdog.join();
  SetExecChildHookForTesting(nullptr);
  ASSERT_GT(g_stopped_child.load(), 0)
      << "the first child was not stopped: the test proved nothing";

  ASSERT_FALSE(first.ok()) << "the spawn of a child stopped before its execve succeeded";
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded) << first.status();
  EXPECT_THAT(std::string(first.status().message()), HasSubstr("stopped by a signal"));
  EXPECT_LT(first_took, absl::Seconds(5)) << "the deadline was 500 ms";
  // The worker it had registered was ended and forgotten, and the audit says why.
  bool ended = false;
  for (const AuditEntry& e : broker_->audit().Entries()) {
    ended |= e.request == "end" && absl::StrContains(e.reason, "stopped by a signal");
  }
  EXPECT_TRUE(ended) << "no audit line ends the stopped child's worker";

  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_LT(second_took, absl::Seconds(10)) << "the second spawn waited for the stuck one";
  auto result = broker_->Wait(*second, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->kind, Kind::kExited) << result->ToString();
  EXPECT_EQ(result->exit_code, 0);
  // The stopped child is gone (killed and reaped), the second one too.
  EXPECT_EQ(kill(g_stopped_child.load(), 0), -1);
  EXPECT_EQ(broker_->live_workers(), 0u);
}

// A child stopped before its execve does not delay a SpawnExec from another thread at
// all (not up to its deadline either: nothing orders exec children): with the default
// 10 s exec_deadline the second spawn is done well before. The test then kills the
// stopped child itself, so that the first spawn ends without waiting for its deadline.
TEST_F(ExecWorkerTest, AStoppedChildDoesNotDelayASpawnFromAnotherThread) {
  auto prepared = broker_->Prepare(Policy{});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  g_children_seen = 0;
  g_stopped_child = 0;
  SetExecChildHookForTesting(StopTheFirstChild);
  ASSERT_EQ(SpawnOptions().exec_deadline, absl::Seconds(10));
  std::atomic<bool> first_done{false};
  absl::StatusOr<WorkerId> first = absl::UnknownError("not run");
  std::thread stuck([&] {
    first = broker_->SpawnExec(*prepared, {worker_, "ok"});
    first_done = true;
  });
  while (g_stopped_child.load() == 0 && !first_done.load()) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  const absl::Time second_start = absl::Now();
  auto second = broker_->SpawnExec(*prepared, {worker_, "ok"});
  const absl::Duration second_took = absl::Now() - second_start;
  const bool first_still_running = !first_done.load();
  if (g_stopped_child.load() > 0) kill(g_stopped_child.load(), SIGKILL);
  stuck.join();
  SetExecChildHookForTesting(nullptr);
  ASSERT_GT(g_stopped_child.load(), 0) << "the first child was not stopped: the test proved nothing";
  EXPECT_TRUE(first_still_running) << "the first spawn ended before the second was done";

  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_LT(second_took, absl::Seconds(2))
      << "the second spawn waited for the stopped child (its deadline is 10 s)";
  auto result = broker_->Wait(*second, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->kind, Kind::kExited) << result->ToString();
  EXPECT_EQ(result->exit_code, 0);
  // The first: its child was killed before its execve (the spawn returns once the child
  // exited, and its worker ends with the kill), or its spawn failed.
  if (first.ok()) {
    auto killed = broker_->Wait(*first, absl::Seconds(30));
    ASSERT_TRUE(killed.ok()) << killed.status();
    EXPECT_NE(killed->kind, Kind::kExited) << killed->ToString();
  }
  EXPECT_EQ(kill(g_stopped_child.load(), 0), -1);
  EXPECT_EQ(broker_->live_workers(), 0u);
}

// "Dumpable" belongs to the memory exec children share with the broker: while one child
// is past its lock-down (PR_SET_DUMPABLE 0, the identity drop) and before its execve,
// another thread's exec spawn that is done must not make the broker dumpable again (a
// process of the worker's uid could then ptrace that child: the broker's memory). A
// tracer thread holds the first child at its execveat's entry (syscall stop, before the
// filter), the second spawn runs to its end, the broker is still non-dumpable; once the
// first has exec'd, the broker is dumpable again.
std::atomic<pid_t> g_trace_this{0};
std::atomic<bool> g_traced{false};
void TraceTheFirstChild(pid_t pid) {
  if (g_children_seen.fetch_add(1) != 0) return;
  g_trace_this = pid;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (!g_traced.load() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(1));
}

TEST_F(ExecWorkerTest, TheBrokerStaysNonDumpableWhileAnExecChildHasNotExecd) {
  auto prepared = broker_->Prepare(Policy{});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1) << "the test process starts dumpable";
  g_children_seen = 0;
  g_trace_this = 0;
  g_traced = false;
  std::atomic<bool> at_execve{false};
  std::atomic<bool> detach{false};
  std::string tracer_error;
  // ptrace belongs to the thread that attached: this one seizes, steps and detaches.
  std::thread tracer([&] {
    while (g_trace_this.load() == 0) absl::SleepFor(absl::Milliseconds(1));
    const pid_t pid = g_trace_this.load();
    int status = 0;
    if (ptrace(PTRACE_SEIZE, pid, nullptr, PTRACE_O_TRACESYSGOOD) != 0 ||
        ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0 ||
        waitpid(pid, &status, __WALL) != pid || ptrace(PTRACE_SYSCALL, pid, nullptr, 0) != 0) {
      tracer_error = absl::StrCat("seize: ", strerror(errno));
      g_traced = true;
      return;
    }
    g_traced = true;
    for (;;) {
      if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status)) {
        tracer_error = "the child ended before its execve";
        break;
      }
      int deliver = 0;
      if (WSTOPSIG(status) == (SIGTRAP | 0x80)) {
        user_regs_struct regs;
        if (ptrace(PTRACE_GETREGS, pid, nullptr, &regs) == 0 && regs.orig_rax == SYS_execveat) {
          at_execve = true;
          while (!detach.load()) absl::SleepFor(absl::Milliseconds(1));
          ptrace(PTRACE_DETACH, pid, nullptr, 0);
          return;
        }
      } else if (status >> 16 == 0) {
        deliver = WSTOPSIG(status);  // a signal, not a ptrace event
      }
      ptrace(PTRACE_SYSCALL, pid, nullptr, deliver);
    }
    ptrace(PTRACE_DETACH, pid, nullptr, 0);
  });
  SetExecChildHookForTesting(TraceTheFirstChild);
  absl::StatusOr<WorkerId> first = absl::UnknownError("not run");
  absl::StatusOr<WorkerResult> first_result = absl::UnknownError("not run");
  // Waits for its worker too: the worker's parent-death signal follows this thread.
  std::thread held([&] {
    first = broker_->SpawnExec(*prepared, {worker_, "ok"});
    if (first.ok()) first_result = broker_->Wait(*first, absl::Seconds(30));
  });
  const absl::Time until = absl::Now() + absl::Seconds(8);
  while (!at_execve.load() && tracer_error.empty() && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  const bool held_at_execve = at_execve.load();
  int dumpable_with_second_done = -1;
  if (held_at_execve) {
    auto second = broker_->SpawnExec(*prepared, {worker_, "ok"});
    EXPECT_TRUE(second.ok()) << second.status();
    if (second.ok()) {
      auto result = broker_->Wait(*second, absl::Seconds(30));
      EXPECT_TRUE(result.ok() && result->kind == Kind::kExited && result->exit_code == 0)
          << (result.ok() ? result->ToString() : std::string(result.status().message()));
    }
    dumpable_with_second_done = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  }
  detach = true;
  held.join();
  tracer.join();
  SetExecChildHookForTesting(nullptr);
  ASSERT_TRUE(held_at_execve) << "the first child was not held at its execve: " << tracer_error;
  EXPECT_EQ(dumpable_with_second_done, 0)
      << "another spawn made the broker dumpable while a child sharing its memory had not "
         "exec'd";
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first_result.ok()) << first_result.status();
  EXPECT_EQ(first_result->kind, Kind::kExited) << first_result->ToString();
  EXPECT_EQ(first_result->exit_code, 0);
  EXPECT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1) << "the broker was left non-dumpable";
}

// layers +pidns: the broker clones the exec child with CLONE_NEWPID, so the program is
// pid 1 of its own PID namespace (the lock-down checks it), is served as any other, and
// is still ended by the broker (SIGKILL from outside the namespace reaches a pid 1).
TEST_F(ExecWorkerTest, PidnsMakesTheProgramPidOne) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("data.txt", "from the broker");
  Policy policy;
  policy.layers[Layer::kPidns] = LayerMode::kOn;
  policy.paths.push_back(PathRule{dir.path(), /*read=*/true});
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  WorkerResult result = Exec(policy, {"pid"}, out[1]);
  close(out[1]);
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(testing::ReadAll(out[0]), "pid 1\n");
  close(out[0]);
  EXPECT_THAT(result.layers, HasSubstr("pidns: on"));

  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  result = Exec(policy, {"brokered", file}, out[1]);
  close(out[1]);
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(testing::ReadAll(out[0]), "from the broker");
  close(out[0]);

  auto prepared = broker_->Prepare(policy);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  SpawnOptions options;
  options.stdout_fd = out[1];
  auto id = broker_->SpawnExec(*prepared, {worker_, "pause"}, options);
  close(out[1]);
  ASSERT_TRUE(id.ok()) << id.status();
  char line[16] = {};
  ASSERT_GT(read(out[0], line, sizeof(line) - 1), 0);
  close(out[0]);
  broker_->Kill(*id);
  auto killed = broker_->Wait(*id, absl::Seconds(10));
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(killed->kind, Kind::kSignaled) << killed->ToString();
  EXPECT_EQ(killed->signal, SIGKILL);
}

TEST_F(ExecWorkerTest, LearningModeFindsTheSmallestPromiseSet) {
  Policy policy;
  policy.penalty = Penalty::kLog;
  WorkerResult result = Exec(policy, {"learn_mix"});
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0);  // log mode let the calls run
  auto learned = LearnPromises(result, PromiseSet{Promise::kStdio});
  ASSERT_TRUE(learned.ok()) << learned.status();
  EXPECT_EQ(learned->promises.ToString(), "stdio rpath inet");
  EXPECT_THAT(learned->report, HasSubstr("openat -> rpath"));
  ASSERT_EQ(learned->rules.size(), 1u);
  EXPECT_EQ(learned->rules[0].path, "/etc");
  EXPECT_TRUE(learned->rules[0].read);
  EXPECT_THAT(learned->report, HasSubstr("socket -> inet"));
}

// The `vow` command end to end.
std::string RunVow(const std::string& args, int* status) {
  std::string cmd = absl::StrCat(Runfile("broker/vow"), " ", args, " 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

// A cache given in BrokerOptions is the one the broker compiles into and loads from, and
// CompileExecProgram fills exactly the entry SpawnExec takes (vow run compiles it on
// another thread while the broker starts): for an unmodified program under penalty trap
// (loaded as errno) and for a vow worker (kKeep).
TEST(ExecProgramCacheTest, SpawnExecLoadsWhatCompileExecProgramCompiled) {
  for (const SpawnOptions::ExecChannel channel :
       {SpawnOptions::ExecChannel::kClose, SpawnOptions::ExecChannel::kKeep}) {
    auto filters = std::make_shared<FilterCache>();
    BrokerOptions options;
    options.filters = filters;
    auto broker = Broker::Create(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    Policy policy;
    policy.penalty = Penalty::kTrap;
    ASSERT_TRUE(CompileExecProgram(*filters, policy, channel).ok());
    ASSERT_EQ(filters->size(), 1u);
    auto prepared = (*broker)->Prepare(policy);
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    SpawnOptions spawn;
    spawn.exec_channel = channel;
    const std::string program =
        channel == SpawnOptions::ExecChannel::kKeep ? Runfile("tests/test_worker") : "/bin/true";
    std::vector<std::string> argv = {program};
    if (channel == SpawnOptions::ExecChannel::kKeep) argv.push_back("ok");
    auto id = (*broker)->SpawnExec(*prepared, argv, spawn);
    ASSERT_TRUE(id.ok()) << id.status();
    auto result = (*broker)->Wait(*id, absl::Seconds(30));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->kind, Kind::kExited) << result->ToString();
    EXPECT_EQ(result->exit_code, 0) << result->ToString();
    // Nothing new was compiled: the spawn found the program in the given cache.
    EXPECT_EQ(filters->size(), 1u);
  }
  // And a broker given an empty cache compiles into it.
  auto filters = std::make_shared<FilterCache>();
  BrokerOptions options;
  options.filters = filters;
  auto broker = Broker::Create(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  auto prepared = (*broker)->Prepare(Policy{});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  auto id = (*broker)->SpawnExec(*prepared, {"/bin/true"});
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE((*broker)->Wait(*id, absl::Seconds(30)).ok());
  EXPECT_EQ(filters->size(), 1u);
}

TEST(VowCommandTest, RunLearnCheck) {
  std::string worker = Runfile("tests/test_worker");
  int status = 0;
  std::string out = RunVow(absl::StrCat("run --vow-worker -- ", worker, " ok"), &status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_THAT(out, HasSubstr("locked and running"));

  out = RunVow(absl::StrCat("run --vow-worker -- ", worker, " open_direct"), &status);
  EXPECT_EQ(WEXITSTATUS(status), 11) << out;
  EXPECT_THAT(out, HasSubstr("openat(\"/etc/hostname\", O_RDONLY) refused (ENOENT)"));

  // vow ends with _exit once the broker is Shut down: the audit lines are all written,
  // the last one (the worker's end) too.
  out = RunVow(absl::StrCat("run --audit --vow-worker -- ", worker, " open_direct"), &status);
  EXPECT_EQ(WEXITSTATUS(status), 11) << out;
  EXPECT_THAT(out, HasSubstr("deny openat(\"/etc/hostname\", O_RDONLY)"));
  EXPECT_THAT(out, HasSubstr("allow exit reason=\"exited with code 11\""));

  out = RunVow(absl::StrCat("learn --vow-worker -- ", worker, " learn_mix"), &status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_THAT(out, HasSubstr("promises stdio rpath inet"));

  // The shipped example policies parse and pass the broker's checks.
  for (const char* example : {"x509_oracle", "file_parser"}) {
    out = RunVow(absl::StrCat("check ", Runfile(absl::StrCat("policies/examples/", example,
                                                            ".policy"))),
                 &status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << example << ": " << out;
  }
  // `vow check` runs the broker's Prepare: the renderer example names the app's own
  // directories, which do not exist on a machine without the app.
  out = RunVow(absl::StrCat("check ", Runfile("policies/examples/renderer.policy")), &status);
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
  EXPECT_THAT(out, HasSubstr("\"/opt/my app/assets\": does not exist"));

  testing::TempDir dir;
  std::string bad = dir.WriteFile("bad.policy", "promises stdio rpat\n");
  out = RunVow(absl::StrCat("check ", bad), &status);
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_THAT(out, HasSubstr("bad.policy:1:16"));
  EXPECT_THAT(out, HasSubstr("rpath"));
}

}  // namespace
}  // namespace vow
