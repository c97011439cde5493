#include "broker/policy_check.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow {
namespace {

using ::testing::HasSubstr;

PathRule R(std::string path) {
  PathRule r;
  r.path = std::move(path);
  r.read = true;
  return r;
}

ConnectRule Tcp(std::string address, int prefix) {
  ConnectRule r;
  r.address = std::move(address);
  r.prefix_len = prefix;
  r.port_min = 1;
  r.port_max = 65535;
  return r;
}

Policy Good() {
  Policy p;
  p.paths = {R("/"), R("/etc/ssl"), R("/tmp")};
  p.connects = {Tcp(std::string("\x7f\0\0\0", 4), 8)};
  return p;
}

std::string Error(const Policy& p) {
  absl::Status s = ValidatePolicy(p);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  return std::string(s.message());
}

TEST(ValidatePolicyTest, GoodPolicyAndDefaultsPass) {
  EXPECT_TRUE(ValidatePolicy(Good()).ok()) << ValidatePolicy(Good());
  EXPECT_TRUE(ValidatePolicy(Policy{}).ok());
  Policy p = Good();
  p.limits.max_message_bytes = 0;
  p.limits.max_open_fds = 0;
  p.clock.kind = ClockRule::Kind::kFixed;
  p.clock.fixed = absl::FromUnixSeconds(1700000000);
  EXPECT_TRUE(ValidatePolicy(p).ok());
  // Existence is FsPolicy::Create's business, not this pure check's.
  p.paths.push_back(R("/no/such/path/for/vow"));
  EXPECT_TRUE(ValidatePolicy(p).ok());
}

TEST(ValidatePolicyTest, BadPathRulesAreNamed) {
  struct Case {
    std::string path;
    const char* expect;
  };
  const Case cases[] = {
      {"", "empty"},
      {"etc", "not absolute"},
      {"/etc/", "trailing slash"},
      {"/etc//ssl", "'//'"},
      {"/etc/./ssl", "'.'"},
      {"/etc/../root", "'..'"},
      {std::string("/etc\0/x", 7), "NUL"},
      {"/" + std::string(5000, 'a'), "longer than"},
  };
  for (const Case& c : cases) {
    Policy p = Good();
    p.paths.push_back(R(c.path));
    std::string e = Error(p);
    EXPECT_THAT(e, HasSubstr("paths[3]")) << e;
    EXPECT_THAT(e, HasSubstr(c.expect)) << e;
  }
  Policy none = Good();
  none.paths[1].read = false;  // a deny rule (`unveil /etc/ssl none`) is valid
  EXPECT_TRUE(ValidatePolicy(none).ok());
  Policy dup = Good();
  dup.paths.push_back(R("/tmp"));
  EXPECT_THAT(Error(dup), HasSubstr("paths[3] \"/tmp\": duplicate"));
  Policy nul = Good();
  nul.paths.push_back(R(std::string("/a\0b", 4)));
  EXPECT_THAT(Error(nul), HasSubstr("paths[3] \"/a\\x00b\""));
}

TEST(ValidatePolicyTest, BadConnectRulesAreNamed) {
  Policy p = Good();
  p.connects.push_back(Tcp(std::string("\x7f\0\0\0", 4), 40));
  EXPECT_THAT(Error(p), HasSubstr("connect rule 1"));
  EXPECT_THAT(Error(p), HasSubstr("prefix_len 40"));
  p = Good();
  p.connects.push_back(Tcp("xy", 8));
  EXPECT_THAT(Error(p), HasSubstr("connect rule 1"));
  p = Good();
  ConnectRule u;
  u.transport = ConnectRule::Transport::kUnix;
  u.unix_path = "sock";
  p.connects.push_back(u);
  EXPECT_THAT(Error(p), HasSubstr("not absolute"));
}

TEST(ValidatePolicyTest, BadClock) {
  Policy p = Good();
  p.clock.kind = ClockRule::Kind::kFixed;
  p.clock.fixed = absl::InfiniteFuture();
  EXPECT_THAT(Error(p), HasSubstr("clock: fixed time"));
  p.clock.fixed = absl::FromUnixSeconds(-10);
  EXPECT_THAT(Error(p), HasSubstr("clock: fixed time"));
  p.clock.kind = ClockRule::Kind::kOffset;
  p.clock.offset = absl::InfiniteDuration();
  EXPECT_THAT(Error(p), HasSubstr("clock: offset"));
  p.clock.offset = absl::Hours(-24 * 365 * 200);
  EXPECT_THAT(Error(p), HasSubstr("clock: offset"));
  p.clock.kind = static_cast<ClockRule::Kind>(9);
  EXPECT_THAT(Error(p), HasSubstr("clock: unknown kind"));
}

TEST(ValidatePolicyTest, BadLimits) {
  Policy p = Good();
  p.limits.max_message_bytes = 100;
  EXPECT_THAT(Error(p), HasSubstr("limits.max_message_bytes"));
  p.limits.max_message_bytes = 65537;
  EXPECT_THAT(Error(p), HasSubstr("limits.max_message_bytes"));
  p.limits.max_message_bytes = 512;
  EXPECT_TRUE(ValidatePolicy(p).ok());
  p.limits.max_open_fds = 3;
  EXPECT_THAT(Error(p), HasSubstr("limits.max_open_fds"));
  p = Good();
  p.limits.memory_bytes = 4096;
  EXPECT_THAT(Error(p), HasSubstr("limits.memory_bytes"));
  p = Good();
  p.limits.wall_time = absl::Seconds(-1);
  EXPECT_THAT(Error(p), HasSubstr("limits.wall_time"));
}

TEST(ValidatePolicyTest, PromisesAndPenalty) {
  Policy p = Good();
  p.promises = PromiseSet{Promise::kRpath};
  EXPECT_THAT(Error(p), HasSubstr("promises: \"rpath\" does not include stdio"));
  p = Good();
  p.penalty = static_cast<Penalty>(17);
  EXPECT_THAT(Error(p), HasSubstr("penalty: unknown value 17"));
}

}  // namespace
}  // namespace vow
