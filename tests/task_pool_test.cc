// TaskPool::Prestart and the broker's use of it (BrokerOptions::pool_threads_at_create):
// threads are counted in /proc/self/task, so this binary holds nothing else that starts
// or ends threads.
#include <dirent.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

#include "broker/broker.h"
#include "broker/task_pool.h"
#include "gtest/gtest.h"

namespace vow {
namespace {

int Threads() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (struct dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

// Waits up to 2 s for the thread count to be `want`; returns the last count.
int ThreadsSettleAt(int want) {
  int n = Threads();
  for (int i = 0; i < 200 && n != want; ++i) {
    usleep(10000);
    n = Threads();
  }
  return n;
}

TEST(TaskPoolTest, PrestartedThreadsServeTheFirstTasks) {
  const int before = Threads();
  {
    TaskPool pool(2, 8);
    pool.Prestart(2);
    // Prestart returns once they wait for a task: both exist now.
    EXPECT_EQ(Threads(), before + 2);
    std::atomic<int> ran{0};
    pool.Submit([&ran] { ++ran; });
    for (int i = 0; i < 200 && ran.load() == 0; ++i) usleep(10000);
    EXPECT_EQ(ran.load(), 1);
    // An idle thread took it: none was started for it.
    EXPECT_EQ(Threads(), before + 2);
  }
  EXPECT_EQ(ThreadsSettleAt(before), before);  // the threads end with the pool
}

// What a task's first malloc and stack pages cost the thread that runs it: its minor page
// faults (RUSAGE_THREAD) across a malloc + free and 8 KiB of stack written.
__attribute__((noinline)) long FirstTouchFaults() {
  struct rusage before = {}, after = {};
  getrusage(RUSAGE_THREAD, &before);
  void* volatile block = malloc(64);
  free(block);
  volatile char stack[8 * 1024];
  for (size_t i = 0; i < sizeof(stack); i += 4096) stack[i] = 1;
  getrusage(RUSAGE_THREAD, &after);
  return after.ru_minflt - before.ru_minflt;
}

// The faults of the first task of a pool of one thread (prestarted or not), in a forked
// child: the thread stacks and arenas glibc keeps from the threads of earlier tests are
// copy-on-write there, so a thread that reuses one still faults on its first writes, as
// a fresh one does. Returns -1 when the child failed.
long FaultsOfTheFirstTask(bool prestart) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    TaskPool pool(1, 1);
    if (prestart) pool.Prestart(1);
    std::atomic<long> faults{-1};
    pool.Submit([&faults] { faults = FirstTouchFaults(); });
    for (int i = 0; i < 500 && faults.load() < 0; ++i) usleep(10000);
    const long n = faults.load();
    _exit(n < 0 ? 255 : n > 200 ? 200 : static_cast<int>(n));
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) == 255) {
    return -1;
  }
  return WEXITSTATUS(status);
}

// A prestarted thread has made its malloc arena and touched its stack before it is idle,
// so its first task (the loader's first brokered call) takes no page fault for them; a
// thread started for a task does both in that task (which shows the test can tell).
TEST(TaskPoolTest, PrestartedThreadsHaveTheirArenaAndStackBeforeTheFirstTask) {
  EXPECT_GT(FaultsOfTheFirstTask(/*prestart=*/false), 0);
  EXPECT_EQ(FaultsOfTheFirstTask(/*prestart=*/true), 0);
}

TEST(TaskPoolTest, BrokerStartsItsPoolThreadsAtCreateWhenAsked) {
  const int before = Threads();
  {
    auto broker = Broker::Create();
    ASSERT_TRUE(broker.ok()) << broker.status();
    // The serving thread only.
    EXPECT_EQ(ThreadsSettleAt(before + 1), before + 1);
  }
  ASSERT_EQ(ThreadsSettleAt(before), before);
  {
    BrokerOptions options;
    options.pool_threads_at_create = 1;
    auto broker = Broker::Create(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    // The serving thread and one pool thread, waiting for the first call.
    EXPECT_EQ(ThreadsSettleAt(before + 2), before + 2);
  }
  EXPECT_EQ(ThreadsSettleAt(before), before);
}

}  // namespace
}  // namespace vow
