// TaskPool::Prestart and the broker's use of it (BrokerOptions::pool_threads_at_create):
// threads are counted in /proc/self/task, so this binary holds nothing else that starts
// or ends threads.
#include <dirent.h>
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
