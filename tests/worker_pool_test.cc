// WorkerPool: pre-forked locked workers, replaced after a crash, all ended with the pool.
#include "broker/worker_pool.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "gtest/gtest.h"
#include "worker/client.h"

namespace vow {
namespace {

// Echoes each 4-byte job; "boom" aborts.
int EchoWorker(Client&) {
  char buf[4];
  for (;;) {
    ssize_t n = read(0, buf, sizeof(buf));
    if (n <= 0) return 0;
    if (n == 4 && memcmp(buf, "boom", 4) == 0) abort();
    if (write(1, buf, static_cast<size_t>(n)) != n) return 1;
  }
}

std::string Ask(int fd, const char* job) {
  if (write(fd, job, 4) != 4) return "";
  char buf[4];
  ssize_t n = read(fd, buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST(WorkerPoolTest, ServesReplacesAndEndsEveryWorker) {
  auto broker = Broker::Create();
  ASSERT_TRUE(broker.ok());
  auto policy = (*broker)->Prepare(Policy{});
  ASSERT_TRUE(policy.ok());
  std::atomic<int> crashed{0};
  WorkerPool::Options options;
  options.size = 2;
  options.on_exit = [&](WorkerId, const WorkerResult& r) {
    if (r.kind == WorkerResult::Kind::kSignaled && r.signal == SIGABRT) ++crashed;
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
    EXPECT_EQ(crashed.load(), 1);
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
