// WorkerPool: pre-forked locked workers, replaced after a crash, all ended with the pool.
#include "broker/worker_pool.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/echo_worker.h"
#include "worker/client.h"

namespace vow {
namespace {

using testing::Ask;
using testing::EchoWorker;

TEST(WorkerPoolTest, ServesReplacesAndEndsEveryWorker) {
  auto broker = Broker::Create();
  ASSERT_TRUE(broker.ok());
  auto policy = (*broker)->Prepare(Policy{});
  ASSERT_TRUE(policy.ok());
  std::atomic<int> crashed{0};
  absl::Mutex exits_mu;
  std::string exits;  // every exit the pool reported, for a failure's message
  WorkerPool::Options options;
  options.size = 2;
  options.on_exit = [&](WorkerId, const WorkerResult& r) {
    {
      absl::MutexLock lock(&exits_mu);
      absl::StrAppend(&exits, r.ToString(), "\n");
    }
    if (r.kind == WorkerResult::Kind::kSignaled && r.signal == SIGABRT) ++crashed;
  };
  auto reported = [&] {
    absl::MutexLock lock(&exits_mu);
    return exits;
  };
  {
    auto pool = WorkerPool::Create(broker->get(), *policy, EchoWorker, options);
    ASSERT_TRUE(pool.ok()) << pool.status();
    auto a = (*pool)->Acquire();
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(Ask(a->fd(), "ping"), "ping");
    WorkerId first = a->id();
    (*pool)->Release(std::move(*a), true);

    // A crash: the caller sees no answer, releases it as unhealthy, a new worker comes.
    auto b = (*pool)->Acquire();
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(Ask(b->fd(), "boom"), "");
    (*pool)->Release(std::move(*b), false);
    for (int i = 0; i < 500 && (crashed.load() == 0 || (*pool)->idle() < 2); ++i) usleep(10000);
    EXPECT_EQ(crashed.load(), 1) << "exits reported:\n" << reported();
    EXPECT_EQ((*pool)->idle(), 2u);
    for (int i = 0; i < 10; ++i) {
      auto c = (*pool)->Acquire();
      ASSERT_TRUE(c.ok());
      EXPECT_EQ(Ask(c->fd(), "pong"), "pong");
      (*pool)->Release(std::move(*c), true);
    }
    (void)first;
    // One worker still lent when the pool goes: the pool ends it too.
    auto lent = (*pool)->Acquire();
    ASSERT_TRUE(lent.ok());
    EXPECT_EQ((*broker)->live_workers(), 2u);
    pool->reset();
  }
  EXPECT_EQ((*broker)->live_workers(), 0u);
}

}  // namespace
}  // namespace vow
