#include "base/placed_thread.h"

#include <sched.h>

#include "gtest/gtest.h"

namespace vow {
namespace {

// Restores the calling thread's affinity when it goes.
class KeepAffinity {
 public:
  KeepAffinity() { ok_ = sched_getaffinity(0, sizeof(mask_), &mask_) == 0; }
  ~KeepAffinity() {
    if (ok_) sched_setaffinity(0, sizeof(mask_), &mask_);
  }
  const cpu_set_t& mask() const { return mask_; }

 private:
  cpu_set_t mask_;
  bool ok_ = false;
};

TEST(PlacedThreadTest, StartsOnAnotherCpuThenHasItsCreatorsMask) {
  KeepAffinity keep;
  if (CPU_COUNT(&keep.mask()) < 2) GTEST_SKIP() << "one CPU allowed here";
  cpu_set_t seen;
  CPU_ZERO(&seen);
  bool ran = false;
  PlacedThread t([&] {
    ran = true;
    sched_getaffinity(0, sizeof(seen), &seen);
  });
  t.join();
  ASSERT_TRUE(ran);
  ASSERT_TRUE(t.placed());
  ASSERT_GE(t.avoided_cpu(), 0);
  // Its first instruction ran elsewhere than where its creator was when it made it.
  EXPECT_GE(t.first_cpu(), 0);
  EXPECT_NE(t.first_cpu(), t.avoided_cpu());
  EXPECT_TRUE(CPU_ISSET(t.first_cpu(), &keep.mask()));
  // And the placement was only a start: it may run anywhere its creator may.
  EXPECT_TRUE(CPU_EQUAL(&seen, &keep.mask()));
}

TEST(PlacedThreadTest, ACreatorAllowedOneCpuStartsItThereAsUsual) {
  KeepAffinity keep;
  const int here = sched_getcpu();
  ASSERT_GE(here, 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(here, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  cpu_set_t seen;
  CPU_ZERO(&seen);
  PlacedThread t([&] { sched_getaffinity(0, sizeof(seen), &seen); });
  t.join();
  EXPECT_FALSE(t.placed());
  EXPECT_EQ(t.avoided_cpu(), -1);
  EXPECT_EQ(t.first_cpu(), here);
  EXPECT_TRUE(CPU_EQUAL(&seen, &one));
}

TEST(PlacedThreadTest, OtherCpusLeavesOutTheCallersCpu) {
  KeepAffinity keep;
  cpu_set_t others, all;
  int here = -1;
  const bool any = PlacedThread::OtherCpus(&others, &all, &here);
  ASSERT_GE(here, 0);
  EXPECT_TRUE(CPU_EQUAL(&all, &keep.mask()));
  EXPECT_FALSE(CPU_ISSET(here, &others));
  EXPECT_EQ(CPU_COUNT(&others), CPU_COUNT(&all) - 1);
  EXPECT_EQ(any, CPU_COUNT(&all) > 1);
}

TEST(PlacedThreadTest, JoinsOnDestruction) {
  int runs = 0;
  { PlacedThread t([&] { ++runs; }); }
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace vow
