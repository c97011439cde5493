#include "broker/clock_policy.h"

#include <cerrno>

#include "base/syscall.h"
#include "gtest/gtest.h"

namespace vow {
namespace {

TEST(ClockPolicyTest, RealIsWithinASecondOfNow) {
  ClockRule rule;
  rule.kind = ClockRule::Kind::kReal;
  absl::StatusOr<absl::Time> t = ClockNow(rule);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_LT(absl::AbsDuration(*t - absl::Now()), absl::Seconds(1));
}

TEST(ClockPolicyTest, FixedIsExact) {
  ClockRule rule;
  rule.kind = ClockRule::Kind::kFixed;
  rule.fixed = absl::FromUnixNanos(1700000000123456789);
  absl::StatusOr<absl::Time> t = ClockNow(rule);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, rule.fixed);
  EXPECT_EQ(*ClockNow(rule), *t);
}

TEST(ClockPolicyTest, OffsetShiftsRealTime) {
  ClockRule rule;
  rule.kind = ClockRule::Kind::kOffset;
  rule.offset = absl::Hours(-24 * 365);
  absl::StatusOr<absl::Time> t = ClockNow(rule);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_LT(absl::AbsDuration(*t - (absl::Now() + rule.offset)), absl::Seconds(1));
  EXPECT_GT(absl::AbsDuration(*t - absl::Now()), absl::Hours(24 * 364));
}

TEST(ClockPolicyTest, NoneIsEperm) {
  ClockRule rule;
  rule.kind = ClockRule::Kind::kNone;
  absl::StatusOr<absl::Time> t = ClockNow(rule);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(ErrnoOf(t.status()), EPERM);
  EXPECT_NE(t.status().message().find("clock rule is none"), absl::string_view::npos);
}

TEST(ClockPolicyTest, InfiniteOrUnknownIsEinval) {
  ClockRule rule;
  rule.kind = ClockRule::Kind::kFixed;
  rule.fixed = absl::InfiniteFuture();
  EXPECT_EQ(ErrnoOf(ClockNow(rule).status()), EINVAL);
  rule.kind = ClockRule::Kind::kOffset;
  rule.offset = absl::InfiniteDuration();
  EXPECT_EQ(ErrnoOf(ClockNow(rule).status()), EINVAL);
  rule.kind = static_cast<ClockRule::Kind>(42);
  EXPECT_EQ(ErrnoOf(ClockNow(rule).status()), EINVAL);
}

}  // namespace
}  // namespace vow
