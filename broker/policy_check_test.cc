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

namespace vow {
namespace {

TEST(ValidatePolicyTest, ExecPromises) {
  Policy p;
  p.promises = PromiseSet{Promise::kStdio, Promise::kRpath, Promise::kExec};
  p.exec_promises = PromiseSet{Promise::kStdio, Promise::kRpath};
  EXPECT_TRUE(ValidatePolicy(p).ok()) << ValidatePolicy(p);
  p.exec_promises = PromiseSet{Promise::kStdio, Promise::kInet};
  EXPECT_EQ(Error(p),
            "execpromises \"stdio inet\": name \"inet\", which the promises do not hold (a "
            "filter only narrows across execve)");
  p.exec_promises = PromiseSet{Promise::kRpath};
  EXPECT_EQ(Error(p), "execpromises \"rpath\": do not include stdio");
  p.promises.erase(Promise::kExec);
  p.exec_promises = PromiseSet{Promise::kStdio};
  EXPECT_THAT(Error(p), HasSubstr("need the exec promise"));
}

TEST(ValidatePolicyTest, LayersAndIdentity) {
  Policy p;
  p.layers[Layer::kPidns] = LayerMode::kAuto;
  EXPECT_EQ(Error(p), "layers: pidns: must be on (+pidns) or off (-pidns), not automatic");
  p = Policy{};
  p.layers[Layer::kNetns] = static_cast<LayerMode>(9);
  EXPECT_EQ(Error(p), "layers: netns: unknown mode 9");
  p = Policy{};
  p.identity = Identity{Identity::Kind::kIds, 0, 100};
  EXPECT_THAT(Error(p), HasSubstr("root's id"));
  p.identity = Identity{Identity::Kind::kIds, 100, 0xffffffffu};
  EXPECT_THAT(Error(p), HasSubstr("4294967295 is not an id"));
  p.identity = Identity{Identity::Kind::kIds, 100, 100};
  EXPECT_TRUE(ValidatePolicy(p).ok());
  p.identity = Identity{Identity::Kind::kKeep};
  EXPECT_TRUE(ValidatePolicy(p).ok());
  p.layers[Layer::kUserns] = LayerMode::kOn;
  EXPECT_EQ(Error(p), "layers: +userns: needs an identity drop; identity keep stays root");
}

LayerSupport Everything() {
  LayerSupport s;
  s.landlock_abi = 7;
  s.userns = s.mountns = s.netns = s.ipcns = s.utsns = s.pidns = s.is_root = true;
  return s;
}

TEST(ResolveLayersTest, AutoFollowsTheKernelOnIsRequiredOffIsOff) {
  absl::StatusOr<LayerSpec> spec = ResolveLayers(Policy{}, Everything());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->userns && spec->mountns && spec->netns && spec->ipcns && spec->utsns &&
              spec->landlock && spec->drop_identity);
  EXPECT_FALSE(spec->pidns);  // off unless asked for
  EXPECT_EQ(spec->uid, 65534u);
  EXPECT_EQ(spec->gid, 65534u);

  // A kernel without netns: automatic netns is off (and reported so), required is refused.
  LayerSupport no_net = Everything();
  no_net.netns = false;
  spec = ResolveLayers(Policy{}, no_net);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->netns);
  EXPECT_TRUE(spec->mountns);
  Policy required;
  required.layers[Layer::kNetns] = LayerMode::kOn;
  spec = ResolveLayers(required, no_net);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(spec.status().message(),
            "layers: +netns is required, but netns: unshare(CLONE_NEWNET) is not allowed here");
  LayerSupport no_landlock = Everything();
  no_landlock.landlock_abi = 0;
  required.layers[Layer::kLandlock] = LayerMode::kOn;
  spec = ResolveLayers(required, no_landlock);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "layers: +landlock is required, but landlock: the kernel has no Landlock");

  // Explicitly off, even where the kernel has it.
  Policy off;
  off.layers[Layer::kLandlock] = LayerMode::kOff;
  off.layers[Layer::kMountns] = LayerMode::kOff;
  off.layers[Layer::kPidns] = LayerMode::kOn;
  spec = ResolveLayers(off, Everything());
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE(spec->landlock);
  EXPECT_FALSE(spec->mountns);
  EXPECT_TRUE(spec->pidns);
}

TEST(ResolveLayersTest, Identity) {
  Policy p;
  p.identity = Identity{Identity::Kind::kIds, 1000, 100};
  absl::StatusOr<LayerSpec> spec = ResolveLayers(p, Everything());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->uid, 1000u);
  EXPECT_EQ(spec->gid, 100u);
  EXPECT_TRUE(spec->drop_identity);
  // Keep: no drop, so no user namespace either (automatic userns follows the drop).
  p.identity = Identity{Identity::Kind::kKeep};
  spec = ResolveLayers(p, Everything());
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE(spec->drop_identity);
  EXPECT_FALSE(spec->userns);
  // Not root: the default drop cannot happen, and says so; keep runs with what the
  // kernel allows an unprivileged caller (Landlock only).
  LayerSupport user = Everything();
  user.is_root = false;
  spec = ResolveLayers(Policy{}, user);
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("needs root"));
  spec = ResolveLayers(p, user);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->mountns || spec->netns || spec->ipcns || spec->utsns || spec->userns);
  EXPECT_TRUE(spec->landlock);
}

}  // namespace
}  // namespace vow
