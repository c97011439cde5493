#include "policies/policy_file.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/syscall.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policies/policy.h"
#include "policies/promises.h"

namespace vow {
namespace {

using ::testing::HasSubstr;

// The parse of `text` as "x.policy"; fails the test if it does not parse.
Policy Parse(absl::string_view text) {
  absl::StatusOr<Policy> p = ParsePolicy(text, "x.policy");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : Policy{};
}

// The error message of parsing `text` as "x.policy"; "<parsed>" if it parsed.
std::string ErrorOf(absl::string_view text) {
  absl::StatusOr<Policy> p = ParsePolicy(text, "x.policy");
  if (p.ok()) return "<parsed>";
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(p.status().message());
}

std::string V4(const char* text) {
  std::string out(4, '\0');
  EXPECT_EQ(inet_pton(AF_INET, text, out.data()), 1);
  return out;
}

std::string V6(const char* text) {
  std::string out(16, '\0');
  EXPECT_EQ(inet_pton(AF_INET6, text, out.data()), 1);
  return out;
}

void ExpectSamePolicy(const Policy& a, const Policy& b) {
  EXPECT_EQ(a.promises.bits(), b.promises.bits());
  EXPECT_EQ(a.penalty, b.penalty);
  ASSERT_EQ(a.paths.size(), b.paths.size());
  for (size_t i = 0; i < a.paths.size(); ++i) {
    EXPECT_EQ(a.paths[i].path, b.paths[i].path);
    EXPECT_EQ(a.paths[i].read, b.paths[i].read);
    EXPECT_EQ(a.paths[i].write, b.paths[i].write);
    EXPECT_EQ(a.paths[i].exec, b.paths[i].exec);
    EXPECT_EQ(a.paths[i].create, b.paths[i].create);
  }
  ASSERT_EQ(a.connects.size(), b.connects.size());
  for (size_t i = 0; i < a.connects.size(); ++i) {
    EXPECT_EQ(a.connects[i].transport, b.connects[i].transport);
    EXPECT_EQ(a.connects[i].address, b.connects[i].address);
    EXPECT_EQ(a.connects[i].prefix_len, b.connects[i].prefix_len);
    EXPECT_EQ(a.connects[i].port_min, b.connects[i].port_min);
    EXPECT_EQ(a.connects[i].port_max, b.connects[i].port_max);
    EXPECT_EQ(a.connects[i].unix_path, b.connects[i].unix_path);
  }
  EXPECT_EQ(a.clock.kind, b.clock.kind);
  EXPECT_EQ(a.clock.fixed, b.clock.fixed);
  EXPECT_EQ(a.clock.offset, b.clock.offset);
  EXPECT_EQ(a.limits.max_open_fds, b.limits.max_open_fds);
  EXPECT_EQ(a.limits.requests_per_second, b.limits.requests_per_second);
  EXPECT_EQ(a.limits.max_message_bytes, b.limits.max_message_bytes);
  EXPECT_EQ(a.limits.cpu_seconds, b.limits.cpu_seconds);
  EXPECT_EQ(a.limits.memory_bytes, b.limits.memory_bytes);
  EXPECT_EQ(a.limits.wall_time, b.limits.wall_time);
  EXPECT_EQ(a.exec_promises.has_value(), b.exec_promises.has_value());
  if (a.exec_promises.has_value() && b.exec_promises.has_value()) {
    EXPECT_EQ(a.exec_promises->bits(), b.exec_promises->bits());
  }
  EXPECT_TRUE(a.layers.modes == b.layers.modes);
  EXPECT_EQ(a.identity.kind, b.identity.kind);
  EXPECT_EQ(a.identity.uid, b.identity.uid);
  EXPECT_EQ(a.identity.gid, b.identity.gid);
  EXPECT_EQ(a.libc_set, b.libc_set);
}

void ExpectRoundTrip(const Policy& p) {
  const std::string text = FormatPolicy(p);
  absl::StatusOr<Policy> back = ParsePolicy(text, "formatted");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  ExpectSamePolicy(p, *back);
  EXPECT_EQ(FormatPolicy(*back), text);
}

// ---------------------------------------------------------------- constructs

TEST(PolicyFileTest, EmptyFileIsTheDefaultPolicy) {
  for (absl::string_view text : {"", "\n", "# only a comment\n\n   \t\n", "\r\n#x\r\n"}) {
    const Policy p = Parse(text);
    ExpectSamePolicy(p, Policy{});
    EXPECT_TRUE(p.promises == PromiseSet{Promise::kStdio});
  }
}

TEST(PolicyFileTest, Promises) {
  const Policy p = Parse("promises stdio rpath prot_exec\tid\n");
  EXPECT_TRUE((p.promises ==
               PromiseSet{Promise::kStdio, Promise::kRpath, Promise::kProtExec, Promise::kId}));
  // Exactly the set written: stdio is not implied.
  EXPECT_TRUE(Parse("promises rpath").promises == PromiseSet{Promise::kRpath});
  // Every name of the vocabulary parses.
  for (int i = 0; i < kPromiseCount; ++i) {
    const auto promise = static_cast<Promise>(i);
    const Policy one = Parse(absl::StrCat("promises ", PromiseName(promise)));
    EXPECT_TRUE(one.promises == PromiseSet{promise}) << PromiseName(promise);
  }
}

TEST(PolicyFileTest, Penalty) {
  EXPECT_EQ(Parse("penalty kill").penalty, Penalty::kKill);
  EXPECT_EQ(Parse("penalty errno").penalty, Penalty::kErrno);
  EXPECT_EQ(Parse("penalty trap").penalty, Penalty::kTrap);
  EXPECT_EQ(Parse("penalty log").penalty, Penalty::kLog);
}

TEST(PolicyFileTest, Unveil) {
  const Policy p = Parse(
      "unveil /etc/ssl/certs r\n"
      "unveil /tmp/out rwc\n"
      "unveil /usr/bin/tool x\n"
      "unveil /etc/ssl/private none\n"
      "unveil / cxwr\n"
      "unveil \"/srv/my files/a\\\"b\\\\c\" w\n"
      "unveil /a#b r\n");
  ASSERT_EQ(p.paths.size(), 7u);
  EXPECT_EQ(p.paths[0].path, "/etc/ssl/certs");
  EXPECT_TRUE(p.paths[0].read);
  EXPECT_FALSE(p.paths[0].write || p.paths[0].exec || p.paths[0].create);
  EXPECT_EQ(p.paths[1].path, "/tmp/out");
  EXPECT_TRUE(p.paths[1].read && p.paths[1].write && p.paths[1].create);
  EXPECT_FALSE(p.paths[1].exec);
  EXPECT_TRUE(p.paths[2].exec);
  EXPECT_FALSE(p.paths[2].read || p.paths[2].write || p.paths[2].create);
  EXPECT_FALSE(p.paths[3].read || p.paths[3].write || p.paths[3].exec || p.paths[3].create);
  EXPECT_EQ(p.paths[4].path, "/");
  EXPECT_TRUE(p.paths[4].read && p.paths[4].write && p.paths[4].exec && p.paths[4].create);
  EXPECT_EQ(p.paths[5].path, "/srv/my files/a\"b\\c");
  EXPECT_TRUE(p.paths[5].write);
  EXPECT_EQ(p.paths[6].path, "/a#b");  // '#' starts a comment only at the start of a word
}

TEST(PolicyFileTest, ConnectTcpUdp) {
  const Policy p = Parse(
      "connect tcp 127.0.0.1:8080\n"
      "connect tcp 10.0.0.0/8:443\n"
      "connect tcp [::1]:1-65535\n"
      "connect udp 192.168.1.1:53\n"
      "connect tcp [2001:db8::/32]:*\n"
      "connect udp 0.0.0.0/0:0-1023\n"
      "connect tcp [::ffff:1.2.3.4]:80\n");
  ASSERT_EQ(p.connects.size(), 7u);
  const ConnectRule& a = p.connects[0];
  EXPECT_EQ(a.transport, ConnectRule::Transport::kTcp);
  EXPECT_EQ(a.address, V4("127.0.0.1"));
  EXPECT_EQ(a.prefix_len, 32);
  EXPECT_EQ(a.port_min, 8080);
  EXPECT_EQ(a.port_max, 8080);
  EXPECT_EQ(p.connects[1].address, V4("10.0.0.0"));
  EXPECT_EQ(p.connects[1].prefix_len, 8);
  EXPECT_EQ(p.connects[1].port_min, 443);
  EXPECT_EQ(p.connects[2].address, V6("::1"));
  EXPECT_EQ(p.connects[2].prefix_len, 128);
  EXPECT_EQ(p.connects[2].port_min, 1);
  EXPECT_EQ(p.connects[2].port_max, 65535);
  EXPECT_EQ(p.connects[3].transport, ConnectRule::Transport::kUdp);
  EXPECT_EQ(p.connects[3].address, V4("192.168.1.1"));
  EXPECT_EQ(p.connects[3].port_min, 53);
  EXPECT_EQ(p.connects[4].address, V6("2001:db8::"));
  EXPECT_EQ(p.connects[4].prefix_len, 32);
  EXPECT_EQ(p.connects[4].port_min, 0);
  EXPECT_EQ(p.connects[4].port_max, 65535);
  EXPECT_EQ(p.connects[5].prefix_len, 0);
  EXPECT_EQ(p.connects[5].port_min, 0);
  EXPECT_EQ(p.connects[5].port_max, 1023);
  EXPECT_EQ(p.connects[6].address, V6("::ffff:1.2.3.4"));
  EXPECT_EQ(p.connects[6].address.size(), 16u);
}

TEST(PolicyFileTest, ConnectUnix) {
  const Policy p = Parse("connect unix /run/app.sock\nconnect unix \"/run/my app.sock\"\n");
  ASSERT_EQ(p.connects.size(), 2u);
  EXPECT_EQ(p.connects[0].transport, ConnectRule::Transport::kUnix);
  EXPECT_EQ(p.connects[0].unix_path, "/run/app.sock");
  EXPECT_TRUE(p.connects[0].address.empty());
  EXPECT_EQ(p.connects[1].unix_path, "/run/my app.sock");
}

TEST(PolicyFileTest, Clock) {
  EXPECT_EQ(Parse("clock real").clock.kind, ClockRule::Kind::kReal);
  EXPECT_EQ(Parse("clock none").clock.kind, ClockRule::Kind::kNone);
  const Policy fixed = Parse("clock fixed 2024-05-01T00:00:00Z");
  EXPECT_EQ(fixed.clock.kind, ClockRule::Kind::kFixed);
  EXPECT_EQ(fixed.clock.fixed, absl::FromUnixSeconds(1714521600));
  EXPECT_EQ(Parse("clock fixed 2024-05-01T02:00:00.25+02:00").clock.fixed,
            absl::FromUnixSeconds(1714521600) + absl::Milliseconds(250));
  EXPECT_EQ(Parse("clock fixed 1969-12-31T23:59:59Z").clock.fixed, absl::FromUnixSeconds(-1));
  const Policy offset = Parse("clock offset -3600s");
  EXPECT_EQ(offset.clock.kind, ClockRule::Kind::kOffset);
  EXPECT_EQ(offset.clock.offset, absl::Seconds(-3600));
  EXPECT_EQ(Parse("clock offset +2h").clock.offset, absl::Hours(2));
  EXPECT_EQ(Parse("clock offset 1d").clock.offset, absl::Hours(24));
  EXPECT_EQ(Parse("clock offset 5ns").clock.offset, absl::Nanoseconds(5));
  EXPECT_EQ(Parse("clock offset 7us").clock.offset, absl::Microseconds(7));
  EXPECT_EQ(Parse("clock offset 0s").clock.offset, absl::ZeroDuration());
}

TEST(PolicyFileTest, Limits) {
  const Policy p = Parse(
      "limit open_fds 64\n"
      "limit requests_per_second 1000\n"
      "limit message_bytes 65536\n"
      "limit cpu_seconds 10\n"
      "limit memory 256M\n"
      "limit wall_time 30s\n");
  EXPECT_EQ(p.limits.max_open_fds, 64u);
  EXPECT_EQ(p.limits.requests_per_second, 1000u);
  EXPECT_EQ(p.limits.max_message_bytes, 65536u);
  EXPECT_EQ(p.limits.cpu_seconds, 10u);
  EXPECT_EQ(p.limits.memory_bytes, uint64_t{256} << 20);
  EXPECT_EQ(p.limits.wall_time, absl::Seconds(30));

  EXPECT_EQ(Parse("limit memory 3G").limits.memory_bytes, uint64_t{3} << 30);
  EXPECT_EQ(Parse("limit memory 2T").limits.memory_bytes, uint64_t{2} << 40);
  EXPECT_EQ(Parse("limit message_bytes 4K").limits.max_message_bytes, 4096u);
  EXPECT_EQ(Parse("limit message_bytes 4294967295").limits.max_message_bytes, 4294967295u);
  EXPECT_EQ(Parse("limit memory 18446744073709551615").limits.memory_bytes, ~uint64_t{0});
  EXPECT_EQ(Parse("limit wall_time 90m").limits.wall_time, absl::Minutes(90));
  EXPECT_EQ(Parse("limit open_fds 4294967295").limits.max_open_fds, 4294967295u);

  // `unlimited` stores 0, overriding the non-zero defaults too.
  const Policy u = Parse(
      "limit open_fds unlimited\nlimit message_bytes unlimited\nlimit memory unlimited\n"
      "limit wall_time unlimited\nlimit cpu_seconds unlimited\n"
      "limit requests_per_second unlimited\n");
  EXPECT_EQ(u.limits.max_open_fds, 0u);
  EXPECT_EQ(u.limits.max_message_bytes, 0u);
  EXPECT_EQ(u.limits.memory_bytes, 0u);
  EXPECT_EQ(u.limits.wall_time, absl::ZeroDuration());
  EXPECT_EQ(u.limits.cpu_seconds, 0u);
  EXPECT_EQ(u.limits.requests_per_second, 0u);

  // Absent limits keep Limits' defaults.
  const Policy d = Parse("limit memory 1G");
  EXPECT_EQ(d.limits.max_open_fds, Limits{}.max_open_fds);
  EXPECT_EQ(d.limits.max_message_bytes, Limits{}.max_message_bytes);
}

TEST(PolicyFileTest, CommentsBlanksCrlfAndTabs) {
  // "r#c" is one word: '#' only starts a comment at the start of a word.
  EXPECT_EQ(ErrorOf("unveil /x r#c"),
            "x.policy:1:12: expected permissions made of r, w, x, c (or \"none\") after the "
            "path; \"#\" is not a permission");
  const Policy q = Parse("promises stdio rpath\t# c\r\nunveil /x r # c\r\npenalty log");
  EXPECT_TRUE((q.promises == PromiseSet{Promise::kStdio, Promise::kRpath}));
  ASSERT_EQ(q.paths.size(), 1u);
  EXPECT_EQ(q.penalty, Penalty::kLog);
}

// ---------------------------------------------------------------- round trips

TEST(PolicyFileTest, FormatRoundTripsEveryConstruct) {
  ExpectRoundTrip(Policy{});
  Policy p;
  p.promises = PromiseSet{Promise::kStdio, Promise::kRpath, Promise::kInet, Promise::kProtExec};
  p.penalty = Penalty::kTrap;
  p.paths.push_back(PathRule{"/etc/ssl/certs", true, false, false, false});
  p.paths.push_back(PathRule{"/tmp/out", true, true, false, true});
  p.paths.push_back(PathRule{"/usr/bin", false, false, true, false});
  p.paths.push_back(PathRule{"/etc/ssl/private", false, false, false, false});
  p.paths.push_back(PathRule{"/srv/a b\t\"q\"\\", true, false, false, false});
  p.paths.push_back(PathRule{"/", true, false, false, false});
  ConnectRule tcp;
  tcp.transport = ConnectRule::Transport::kTcp;
  tcp.address = V4("10.0.0.0");
  tcp.prefix_len = 8;
  tcp.port_min = 443;
  tcp.port_max = 443;
  p.connects.push_back(tcp);
  ConnectRule v6;
  v6.transport = ConnectRule::Transport::kUdp;
  v6.address = V6("2001:db8::");
  v6.prefix_len = 48;
  v6.port_min = 1;
  v6.port_max = 1024;
  p.connects.push_back(v6);
  ConnectRule any = v6;
  any.transport = ConnectRule::Transport::kTcp;
  any.address = V6("::1");
  any.prefix_len = 128;
  any.port_min = 0;
  any.port_max = 65535;
  p.connects.push_back(any);
  ConnectRule unix_rule;
  unix_rule.transport = ConnectRule::Transport::kUnix;
  unix_rule.unix_path = "/run/app.sock";
  p.connects.push_back(unix_rule);
  p.limits.max_open_fds = 64;
  p.limits.requests_per_second = 0;
  p.limits.max_message_bytes = 65537;
  p.limits.cpu_seconds = 10;
  p.limits.memory_bytes = uint64_t{256} << 20;
  p.limits.wall_time = absl::Milliseconds(1500);
  p.clock.kind = ClockRule::Kind::kFixed;
  p.clock.fixed = absl::FromUnixSeconds(1714521600) + absl::Nanoseconds(1);
  ExpectRoundTrip(p);

  p.clock = ClockRule{};
  p.clock.kind = ClockRule::Kind::kOffset;
  p.clock.offset = absl::Seconds(-3600);
  ExpectRoundTrip(p);
  p.clock.offset = absl::Hours(49);
  ExpectRoundTrip(p);
  p.clock.offset = absl::Nanoseconds(123456789);
  ExpectRoundTrip(p);
  p.clock.kind = ClockRule::Kind::kNone;
  p.clock.offset = absl::ZeroDuration();  // not written for `none`
  ExpectRoundTrip(p);
  p.penalty = Penalty::kLog;
  p.limits = Limits{};
  p.limits.memory_bytes = 1;
  p.limits.wall_time = absl::Hours(36500 * 24);
  ExpectRoundTrip(p);
  p.exec_promises = PromiseSet{Promise::kStdio, Promise::kRpath};
  p.promises.insert(Promise::kExec);
  for (int i = 0; i < kLayerCount; ++i) {
    p.layers.modes[i] = i % 2 == 0 ? LayerMode::kOff : LayerMode::kOn;
  }
  p.identity = Identity{Identity::Kind::kKeep};
  p.libc_set = false;
  ExpectRoundTrip(p);
  p.identity = Identity{Identity::Kind::kIds, 4294967294u, 1};
  p.layers[Layer::kUserns] = LayerMode::kAuto;
  ExpectRoundTrip(p);
}

TEST(PolicyFileTest, FormatIsReadable) {
  Policy p;
  p.promises = PromiseSet{Promise::kStdio, Promise::kRpath};
  p.paths.push_back(PathRule{"/etc/ssl/certs", true});
  p.limits.memory_bytes = uint64_t{256} << 20;
  p.limits.wall_time = absl::Seconds(30);
  p.clock.kind = ClockRule::Kind::kFixed;
  p.clock.fixed = absl::FromUnixSeconds(1714521600);
  EXPECT_EQ(FormatPolicy(p),
            "promises stdio rpath\n"
            "penalty kill\n"
            "clock fixed 2024-05-01T00:00:00Z\n"
            "limit open_fds 256\n"
            "limit requests_per_second unlimited\n"
            "limit message_bytes 64K\n"
            "limit cpu_seconds unlimited\n"
            "limit memory 256M\n"
            "limit wall_time 30s\n"
            "identity nobody\n"
            "libc default\n"
            "unveil /etc/ssl/certs r\n");
  p.layers[Layer::kNetns] = LayerMode::kOff;
  p.layers[Layer::kPidns] = LayerMode::kOn;
  p.identity = Identity{Identity::Kind::kIds, 1000, 100};
  p.libc_set = false;
  p.exec_promises = PromiseSet{Promise::kStdio};
  EXPECT_EQ(FormatPolicy(p),
            "promises stdio rpath\n"
            "execpromises stdio\n"
            "penalty kill\n"
            "clock fixed 2024-05-01T00:00:00Z\n"
            "limit open_fds 256\n"
            "limit requests_per_second unlimited\n"
            "limit message_bytes 64K\n"
            "limit cpu_seconds unlimited\n"
            "limit memory 256M\n"
            "limit wall_time 30s\n"
            "layers -netns +pidns\n"
            "identity 1000:100\n"
            "libc none\n"
            "unveil /etc/ssl/certs r\n");
}

TEST(PolicyFileTest, InexpressiblePoliciesFormatToTextThatIsRefused) {
  Policy relative;
  relative.paths.push_back(PathRule{"etc/passwd", true});
  EXPECT_THAT(ErrorOf(FormatPolicy(relative)), HasSubstr("is relative"));
  Policy empty;
  empty.promises = PromiseSet{};
  EXPECT_THAT(ErrorOf(FormatPolicy(empty)), HasSubstr("expected at least one promise"));
  Policy bad_address;
  ConnectRule r;
  r.address = "abc";
  bad_address.connects.push_back(r);
  EXPECT_THAT(ErrorOf(FormatPolicy(bad_address)), HasSubstr("expected an IPv4/IPv6 address"));
  Policy far;
  far.clock.kind = ClockRule::Kind::kOffset;
  far.clock.offset = absl::InfiniteDuration();
  EXPECT_NE(ErrorOf(FormatPolicy(far)), "<parsed>");
  Policy negative;
  negative.limits.wall_time = absl::Seconds(-1);
  EXPECT_THAT(ErrorOf(FormatPolicy(negative)), HasSubstr("a sign is not allowed"));
  Policy auto_pid;
  auto_pid.layers[Layer::kPidns] = LayerMode::kAuto;  // no spelling for it
  EXPECT_THAT(ErrorOf(FormatPolicy(auto_pid)), HasSubstr("expected +NAME (required) or -NAME"));
  Policy root_ids;
  root_ids.identity = Identity{Identity::Kind::kIds, 0, 0};
  EXPECT_THAT(ErrorOf(FormatPolicy(root_ids)), HasSubstr("root's id"));
  Policy no_exec;
  no_exec.exec_promises = PromiseSet{};
  EXPECT_THAT(ErrorOf(FormatPolicy(no_exec)), HasSubstr("expected at least one promise"));
}

TEST(PolicyFileTest, Layers) {
  const Policy defaults = Parse("");
  for (int i = 0; i < kLayerCount; ++i) {
    const Layer layer = static_cast<Layer>(i);
    EXPECT_EQ(defaults.layers[layer], DefaultLayerMode(layer)) << LayerName(layer);
    // Every name parses, both ways, and touches only its own layer.
    for (const char* sign : {"+", "-"}) {
      const Policy p = Parse(absl::StrCat("layers ", sign, LayerName(layer)));
      for (int j = 0; j < kLayerCount; ++j) {
        const Layer other = static_cast<Layer>(j);
        const LayerMode want = j != i                      ? DefaultLayerMode(other)
                               : std::string(sign) == "+" ? LayerMode::kOn
                                                          : LayerMode::kOff;
        EXPECT_EQ(p.layers[other], want) << sign << LayerName(layer) << " " << LayerName(other);
      }
    }
    EXPECT_EQ(LayerFromName(LayerName(layer)), layer);
  }
  EXPECT_EQ(DefaultLayerMode(Layer::kPidns), LayerMode::kOff);
  EXPECT_EQ(DefaultLayerMode(Layer::kLandlock), LayerMode::kAuto);
  const Policy p = Parse("layers -netns\t-landlock +pidns # comment\n");
  EXPECT_EQ(p.layers[Layer::kNetns], LayerMode::kOff);
  EXPECT_EQ(p.layers[Layer::kLandlock], LayerMode::kOff);
  EXPECT_EQ(p.layers[Layer::kPidns], LayerMode::kOn);
  EXPECT_EQ(p.layers[Layer::kMountns], LayerMode::kAuto);
  EXPECT_EQ(FormatLayers(p.layers), "-netns +pidns -landlock");
}

TEST(PolicyFileTest, IdentityLibcExecPromises) {
  EXPECT_EQ(Parse("").identity.kind, Identity::Kind::kNobody);
  EXPECT_EQ(Parse("identity nobody").identity.kind, Identity::Kind::kNobody);
  EXPECT_EQ(Parse("identity keep").identity.kind, Identity::Kind::kKeep);
  const Policy ids = Parse("identity 1000:100");
  EXPECT_EQ(ids.identity.kind, Identity::Kind::kIds);
  EXPECT_EQ(ids.identity.uid, 1000u);
  EXPECT_EQ(ids.identity.gid, 100u);
  EXPECT_TRUE(Parse("").libc_set);
  EXPECT_TRUE(Parse("libc default").libc_set);
  EXPECT_FALSE(Parse("libc none").libc_set);
  EXPECT_FALSE(Parse("").exec_promises.has_value());
  const Policy exec = Parse("promises stdio exec\nexecpromises stdio rpath\n");
  ASSERT_TRUE(exec.exec_promises.has_value());
  EXPECT_TRUE((*exec.exec_promises == PromiseSet{Promise::kStdio, Promise::kRpath}));
}

// ---------------------------------------------------------------- errors

TEST(PolicyFileErrorTest, UnknownPromise) {
  EXPECT_EQ(ErrorOf("# c\npromises stdio rpat\n"),
            "x.policy:2:16: unknown promise \"rpat\"; did you mean \"rpath\"?");
  EXPECT_EQ(ErrorOf("promises xyzzy"), "x.policy:1:10: unknown promise \"xyzzy\"");
  EXPECT_EQ(ErrorOf("promises stdio stdio"), "x.policy:1:16: promise \"stdio\" is listed twice");
  EXPECT_EQ(ErrorOf("promises"),
            "x.policy:1:9: expected at least one promise name after \"promises\"");
  EXPECT_EQ(ErrorOf("promises \"stdio\""), "x.policy:1:10: quotes are only allowed around paths");
}

TEST(PolicyFileErrorTest, UnknownDirective) {
  EXPECT_EQ(ErrorOf("\n\n  unviel /tmp r"),
            "x.policy:3:3: unknown directive \"unviel\"; did you mean \"unveil\"?");
  EXPECT_EQ(ErrorOf("pledge stdio"),
            "x.policy:1:1: unknown directive \"pledge\"; did you mean \"promises\"?");
  EXPECT_EQ(ErrorOf("frobnicate"),
            "x.policy:1:1: unknown directive \"frobnicate\"; expected one of: promises, penalty, "
            "unveil, connect, clock, limit, layers, identity, libc, execpromises");
  EXPECT_EQ(ErrorOf("layer -netns"),
            "x.policy:1:1: unknown directive \"layer\"; did you mean \"layers\"?");
  EXPECT_EQ(ErrorOf("execpromise stdio"),
            "x.policy:1:1: unknown directive \"execpromise\"; did you mean \"execpromises\"?");
  EXPECT_EQ(ErrorOf("Promises stdio"),
            "x.policy:1:1: unknown directive \"Promises\"; did you mean \"promises\"?");
}

TEST(PolicyFileErrorTest, Layers) {
  EXPECT_EQ(ErrorOf("layers"),
            "x.policy:1:7: expected +NAME or -NAME after \"layers\" (e.g. -netns or +pidns)");
  EXPECT_EQ(ErrorOf("layers netns"),
            "x.policy:1:8: expected +NAME (required) or -NAME (off), found \"netns\"; layers are "
            "userns, mountns, netns, ipcns, utsns, pidns, landlock");
  EXPECT_EQ(ErrorOf("layers -netns -netn"),
            "x.policy:1:16: unknown layer \"netn\"; did you mean \"netns\"?");
  EXPECT_EQ(ErrorOf("layers +frobnicate"),
            "x.policy:1:9: unknown layer \"frobnicate\"; expected one of: userns, mountns, netns, "
            "ipcns, utsns, pidns, landlock");
  EXPECT_EQ(ErrorOf("layers -netns +netns"), "x.policy:1:15: layer \"netns\" is listed twice");
  EXPECT_EQ(ErrorOf("layers -netns\nlayers +pidns"),
            "x.policy:2:1: duplicate \"layers\" line; the first is on line 1");
  EXPECT_EQ(ErrorOf("layers \"-netns\""), "x.policy:1:8: quotes are only allowed around paths");
  EXPECT_EQ(ErrorOf("layers -"), "x.policy:1:9: unknown layer \"\"; expected one of: userns, "
                                 "mountns, netns, ipcns, utsns, pidns, landlock");
}

TEST(PolicyFileErrorTest, IdentityLibcExecPromises) {
  EXPECT_EQ(ErrorOf("identity"), "x.policy:1:9: expected nobody, keep or UID:GID after \"identity\"");
  EXPECT_EQ(ErrorOf("identity root"),
            "x.policy:1:10: unknown identity \"root\"; did you mean \"keep\"?");
  EXPECT_EQ(ErrorOf("identity nobdy"),
            "x.policy:1:10: unknown identity \"nobdy\"; did you mean \"nobody\"?");
  EXPECT_EQ(ErrorOf("identity 1000"), "x.policy:1:10: expected UID:GID, found \"1000\"");
  EXPECT_EQ(ErrorOf("identity 1000:x"), "x.policy:1:15: expected a numeric gid after ':'");
  EXPECT_EQ(ErrorOf("identity 1000:"), "x.policy:1:15: expected a numeric gid after ':'");
  EXPECT_EQ(ErrorOf("identity 4294967295:1"),
            "x.policy:1:10: uid 4294967295 is out of range 0..4294967294");
  EXPECT_EQ(ErrorOf("identity 0:0"),
            "x.policy:1:10: identity \"0:0\" is root's id without root's capabilities; write "
            "\"identity keep\" to stay root, or another id");
  EXPECT_THAT(ErrorOf("identity 1000:0"), HasSubstr("root's id"));
  EXPECT_EQ(ErrorOf("identity keep now"),
            "x.policy:1:15: unexpected \"now\" after the identity; expected the end of the line "
            "or a # comment");
  EXPECT_EQ(ErrorOf("identity keep\nidentity nobody"),
            "x.policy:2:1: duplicate \"identity\" line; the first is on line 1");
  EXPECT_EQ(ErrorOf("libc nonee"), "x.policy:1:6: unknown libc set \"nonee\"; did you mean \"none\"?");
  EXPECT_EQ(ErrorOf("libc"), "x.policy:1:5: expected default or none after \"libc\"");
  EXPECT_EQ(ErrorOf("libc none\nlibc none"),
            "x.policy:2:1: duplicate \"libc\" line; the first is on line 1");
  EXPECT_EQ(ErrorOf("execpromises"),
            "x.policy:1:13: expected at least one promise name after \"execpromises\"");
  EXPECT_EQ(ErrorOf("execpromises stdio rpat"),
            "x.policy:1:20: unknown promise \"rpat\"; did you mean \"rpath\"?");
  EXPECT_EQ(ErrorOf("execpromises stdio\nexecpromises stdio"),
            "x.policy:2:1: duplicate \"execpromises\" line; the first is on line 1");
}

TEST(PolicyFileErrorTest, Duplicates) {
  EXPECT_EQ(ErrorOf("clock real\n\nclock none\n"),
            "x.policy:3:1: duplicate \"clock\" line; the first is on line 1");
  EXPECT_EQ(ErrorOf("penalty kill\npenalty log\n"),
            "x.policy:2:1: duplicate \"penalty\" line; the first is on line 1");
  EXPECT_EQ(ErrorOf("promises stdio\npromises rpath\n"),
            "x.policy:2:1: duplicate \"promises\" line; the first is on line 1");
  EXPECT_EQ(ErrorOf("limit memory 1G\nlimit open_fds 3\nlimit memory 2G\n"),
            "x.policy:3:1: duplicate \"limit memory\" line; the first is on line 1");
  EXPECT_EQ(ErrorOf("unveil /a r\nunveil /a w\n"),
            "x.policy:2:8: path \"/a\" is already unveiled on line 1");
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4:5\nconnect udp 1.2.3.4:5\nconnect tcp 1.2.3.4:5\n"),
            "x.policy:3:1: the same connect rule is already on line 1");
  EXPECT_EQ(ErrorOf("connect unix /s\nconnect unix /s\n"),
            "x.policy:2:1: the same connect rule is already on line 1");
}

TEST(PolicyFileErrorTest, Penalty) {
  EXPECT_EQ(ErrorOf("penalty kil"),
            "x.policy:1:9: unknown penalty \"kil\"; did you mean \"kill\"?");
  EXPECT_EQ(ErrorOf("penalty"),
            "x.policy:1:8: expected a penalty after \"penalty\": kill, errno, trap or log");
  EXPECT_EQ(ErrorOf("penalty kill now"),
            "x.policy:1:14: unexpected \"now\" after the penalty; expected the end of the line "
            "or a # comment");
}

TEST(PolicyFileErrorTest, Unveil) {
  EXPECT_EQ(ErrorOf("unveil tmp/out r"),
            "x.policy:1:8: unveil path \"tmp/out\" is relative; it must be absolute (start with "
            "\"/\")");
  EXPECT_EQ(ErrorOf("unveil /tmp/out"),
            "x.policy:1:16: expected permissions made of r, w, x, c (or \"none\") after the path");
  EXPECT_EQ(ErrorOf("unveil /tmp/out rq"),
            "x.policy:1:18: expected permissions made of r, w, x, c (or \"none\") after the "
            "path; \"q\" is not a permission");
  EXPECT_EQ(ErrorOf("unveil /tmp/out rwr"), "x.policy:1:19: permission \"r\" is given twice");
  EXPECT_EQ(ErrorOf("unveil /tmp/out/ r"),
            "x.policy:1:16: a trailing \"/\" is not allowed; write \"/tmp/out\"");
  EXPECT_EQ(ErrorOf("unveil /tmp//out r"),
            "x.policy:1:13: an empty path component (\"//\") is not allowed");
  EXPECT_EQ(ErrorOf("unveil /tmp/../etc r"),
            "x.policy:1:13: the path component \"..\" is not allowed; write the path without it");
  EXPECT_EQ(ErrorOf("unveil /./etc r"),
            "x.policy:1:9: the path component \".\" is not allowed; write the path without it");
  EXPECT_EQ(ErrorOf("unveil /tmp r w"),
            "x.policy:1:15: unexpected \"w\" after the permissions; expected the end of the line "
            "or a # comment");
  EXPECT_EQ(ErrorOf("unveil"), "x.policy:1:7: expected an absolute path after \"unveil\"");
  EXPECT_EQ(ErrorOf("unveil \"\" r"), "x.policy:1:8: expected an absolute path for unveil");
  EXPECT_EQ(ErrorOf("unveil /tmp \"r\""), "x.policy:1:13: quotes are only allowed around paths");
  EXPECT_EQ(ErrorOf(absl::StrCat("unveil /", std::string(4095, 'a'), " r")),
            "x.policy:1:8: unveil path is 4096 bytes; at most 4095 are allowed");
  EXPECT_EQ(ErrorOf(absl::StrCat("unveil /", std::string(4094, 'a'), " r")), "<parsed>");
}

TEST(PolicyFileErrorTest, Quoting) {
  // Columns inside a quoted path are those of the source bytes.
  EXPECT_EQ(ErrorOf("unveil \"/a b\\\\//c\" r"),
            "x.policy:1:16: an empty path component (\"//\") is not allowed");
  EXPECT_EQ(ErrorOf("unveil \"/a r"),
            "x.policy:1:8: unterminated quoted path: expected a closing \"");
  EXPECT_EQ(ErrorOf("unveil \"/a\\"),
            "x.policy:1:8: unterminated quoted path: expected a closing \"");
  EXPECT_EQ(ErrorOf("unveil \"/a\\n\" r"),
            "x.policy:1:11: unknown escape \"\\\\n\" in a quoted path; only \\\" and \\\\ are "
            "allowed");
  EXPECT_EQ(ErrorOf("unveil \"/a\"r r"), "x.policy:1:12: expected a blank after the closing quote");
  EXPECT_EQ(ErrorOf("unveil /a\"b r"),
            "x.policy:1:10: unexpected '\"' inside a word; a path with a quote must be written in "
            "quotes, with the quote escaped as \\\"");
}

TEST(PolicyFileErrorTest, ConnectAddresses) {
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3:80"),
            "x.policy:1:13: expected an IPv4/IPv6 address or CIDR; found \"1.2.3\"");
  EXPECT_EQ(ErrorOf("connect tcp 256.1.1.1:80"),
            "x.policy:1:13: expected an IPv4/IPv6 address or CIDR; found \"256.1.1.1\"");
  EXPECT_EQ(ErrorOf("connect tcp localhost:80"),
            "x.policy:1:13: expected an IPv4/IPv6 address or CIDR; found \"localhost\" (host "
            "names are not resolved)");
  EXPECT_EQ(ErrorOf("connect tcp [::g]:80"),
            "x.policy:1:14: expected an IPv4/IPv6 address or CIDR; found \"::g\"");
  EXPECT_EQ(ErrorOf("connect tcp [1.2.3.4]:80"),
            "x.policy:1:14: expected an IPv4/IPv6 address or CIDR; found \"1.2.3.4\"");
  EXPECT_EQ(ErrorOf("connect tcp :80"),
            "x.policy:1:13: expected an IPv4/IPv6 address or CIDR; found \"\"");
  EXPECT_EQ(ErrorOf("connect tcp ::1:80"),
            "x.policy:1:13: an IPv6 address must be written in brackets, e.g. [::1]:443");
  EXPECT_EQ(ErrorOf("connect tcp [::1:80"),
            "x.policy:1:13: expected a \"]\" after the IPv6 address");
  EXPECT_EQ(ErrorOf("connect tcp [::1]80"),
            "x.policy:1:18: expected \":\" and a port after the address, e.g. [::1]:443");
  EXPECT_EQ(ErrorOf("connect tcp [::1]"),
            "x.policy:1:18: expected \":\" and a port after the address, e.g. [::1]:443");
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4"),
            "x.policy:1:20: expected \":\" and a port after the address, e.g. 10.0.0.1:443");
  EXPECT_EQ(ErrorOf("connect tcp 01.2.3.4:80"),
            "x.policy:1:13: expected an IPv4/IPv6 address or CIDR; found \"01.2.3.4\"");
}

TEST(PolicyFileErrorTest, ConnectPrefixes) {
  EXPECT_EQ(ErrorOf("connect tcp 10.0.0.0/33:443"),
            "x.policy:1:22: prefix length 33 is out of range 0..32");
  EXPECT_EQ(ErrorOf("connect tcp [2001:db8::/129]:443"),
            "x.policy:1:25: prefix length 129 is out of range 0..128");
  EXPECT_EQ(ErrorOf("connect tcp 10.0.0.0/:443"),
            "x.policy:1:22: expected a prefix length (0..32) after \"/\"");
  EXPECT_EQ(ErrorOf("connect tcp 10.0.0.0/08:443"),
            "x.policy:1:22: leading zeros are not allowed in \"08\"");
  EXPECT_EQ(ErrorOf("connect tcp 10.0.0.1/8:443"),
            "x.policy:1:13: the address has bits set after its /8 prefix; did you mean "
            "10.0.0.0/8?");
  EXPECT_EQ(ErrorOf("connect tcp [2001:db8::1/32]:443"),
            "x.policy:1:14: the address has bits set after its /32 prefix; did you mean "
            "[2001:db8::/32]?");
  EXPECT_EQ(ErrorOf("connect tcp 10.0.0.0/-1:443"),
            "x.policy:1:22: expected a prefix length (0..32) after \"/\"");
}

TEST(PolicyFileErrorTest, ConnectPorts) {
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4:65536"),
            "x.policy:1:21: port 65536 is out of range 0..65535");
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4:99999999999999999999999"),
            "x.policy:1:21: port 99999999999999999999999 is out of range 0..65535");
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4:1-70000"),
            "x.policy:1:23: port 70000 is out of range 0..65535");
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4:443-80"),
            "x.policy:1:21: the port range 443-80 is empty: the first port is larger than the "
            "last");
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4:"),
            "x.policy:1:21: expected a port (0..65535), a range N-M or * after \":\"");
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4:https"),
            "x.policy:1:21: expected a port (0..65535), a range N-M or * after \":\"");
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4:80-"),
            "x.policy:1:24: expected the last port of the range (0..65535) after \"-\"");
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4:080"),
            "x.policy:1:21: leading zeros are not allowed in \"080\"");
  EXPECT_EQ(ErrorOf("connect tcp 1.2.3.4:80 extra"),
            "x.policy:1:24: unexpected \"extra\" after the address and port; expected the end of "
            "the line or a # comment");
}

TEST(PolicyFileErrorTest, ConnectTransportAndUnix) {
  EXPECT_EQ(ErrorOf("connect tpc 1.2.3.4:80"),
            "x.policy:1:9: unknown transport \"tpc\"; did you mean \"tcp\"?");
  EXPECT_EQ(ErrorOf("connect"),
            "x.policy:1:8: expected a transport after \"connect\": tcp, udp or unix");
  EXPECT_EQ(ErrorOf("connect tcp"),
            "x.policy:1:12: expected an address and a port: 127.0.0.1:443, 10.0.0.0/8:443, "
            "[::1]:1-1024");
  EXPECT_EQ(ErrorOf("connect unix"), "x.policy:1:13: expected the absolute path of a unix socket");
  EXPECT_EQ(ErrorOf("connect unix run/app.sock"),
            "x.policy:1:14: unix socket path \"run/app.sock\" is relative; it must be absolute "
            "(start with \"/\")");
  EXPECT_EQ(ErrorOf(absl::StrCat("connect unix /", std::string(107, 's'))),
            "x.policy:1:14: unix socket path is 108 bytes; at most 107 are allowed");
  EXPECT_EQ(ErrorOf(absl::StrCat("connect unix /", std::string(106, 's'))), "<parsed>");
  EXPECT_EQ(ErrorOf("connect unix /a.sock r"),
            "x.policy:1:22: unexpected \"r\" after the socket path; expected the end of the line "
            "or a # comment");
}

TEST(PolicyFileErrorTest, Clock) {
  EXPECT_EQ(ErrorOf("clock rael"), "x.policy:1:7: unknown clock \"rael\"; did you mean \"real\"?");
  EXPECT_EQ(ErrorOf("clock"),
            "x.policy:1:6: expected a clock after \"clock\": real, fixed, offset or none");
  EXPECT_EQ(ErrorOf("clock real now"),
            "x.policy:1:12: unexpected \"now\" after the clock; expected the end of the line or a "
            "# comment");
  EXPECT_EQ(ErrorOf("clock fixed"),
            "x.policy:1:12: expected an RFC 3339 time after \"fixed\", e.g. 2024-05-01T00:00:00Z");
  const std::string expected_time =
      "expected an RFC 3339 time such as 2024-05-01T00:00:00Z or 2024-05-01T02:00:00+02:00";
  for (const char* bad :
       {"2024-05-01", "2024-05-01t00:00:00z", "infinite-future", "2024-05-01T00:00:00",
        "2024-05-01T00:00:00.Z", "2024-05-01T00:00:00.1234567890Z", "2024-05-01T00:00:00+0200",
        "12024-05-01T00:00:00Z", "2024-5-01T00:00:00Z"}) {
    EXPECT_EQ(ErrorOf(absl::StrCat("clock fixed ", bad)),
              absl::StrCat("x.policy:1:13: ", expected_time, "; found \"", bad, "\""));
  }
  EXPECT_THAT(ErrorOf("clock fixed 2024-02-30T00:00:00Z"),
              HasSubstr("x.policy:1:13: time \"2024-02-30T00:00:00Z\" is not a valid date and "
                        "time"));
  EXPECT_THAT(ErrorOf("clock fixed 2024-05-01T24:00:00Z"), HasSubstr("is not a valid date"));
  EXPECT_EQ(ErrorOf("clock fixed 9999-12-31T23:59:60Z"),
            "x.policy:1:13: time \"9999-12-31T23:59:60Z\" is outside years 0000..9999 when "
            "written in UTC");
  EXPECT_EQ(ErrorOf("clock fixed 0000-01-01T00:00:00+01:00"),
            "x.policy:1:13: time \"0000-01-01T00:00:00+01:00\" is outside years 0000..9999 "
            "when written in UTC");
  // The extremes that stay inside round-trip.
  for (const char* edge :
       {"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2016-12-31T23:59:60Z"}) {
    ExpectRoundTrip(Parse(absl::StrCat("clock fixed ", edge)));
  }
  EXPECT_EQ(ErrorOf("clock fixed 2024-05-01T00:00:00Z x"),
            "x.policy:1:34: unexpected \"x\" after the clock's value; expected the end of the "
            "line or a # comment");
  EXPECT_EQ(ErrorOf("clock offset"),
            "x.policy:1:13: expected a duration after \"offset\", e.g. -3600s or 2h");
  EXPECT_EQ(ErrorOf("clock offset -3600"),
            "x.policy:1:19: expected a unit after 3600: ns, us, ms, s, m, h or d");
  EXPECT_EQ(ErrorOf("clock offset 10y"),
            "x.policy:1:16: unknown duration unit \"y\"; expected ns, us, ms, s, m, h or d");
  EXPECT_EQ(ErrorOf("clock offset -s"),
            "x.policy:1:15: expected a duration: a number and a unit (ns, us, ms, s, m, h or "
            "d), e.g. 30s");
  EXPECT_EQ(ErrorOf("clock offset 36501d"),
            "x.policy:1:14: duration \"36501d\" is out of range; at most 36500d (100 years)");
  EXPECT_EQ(ErrorOf("clock offset 99999999999999999999999ns"),
            "x.policy:1:14: duration \"99999999999999999999999ns\" is out of range; at most "
            "36500d (100 years)");
  EXPECT_EQ(ErrorOf("clock offset 1.5h"),
            "x.policy:1:15: unknown duration unit \".5h\"; expected ns, us, ms, s, m, h or d");
  EXPECT_EQ(ErrorOf("clock offset 1h30m"),
            "x.policy:1:15: unknown duration unit \"h30m\"; expected ns, us, ms, s, m, h or d");
}

TEST(PolicyFileErrorTest, Limits) {
  EXPECT_EQ(ErrorOf("limit open_fd 3"),
            "x.policy:1:7: unknown limit \"open_fd\"; did you mean \"open_fds\"?");
  EXPECT_EQ(ErrorOf("limit"),
            "x.policy:1:6: expected a limit name after \"limit\": open_fds, requests_per_second, "
            "message_bytes, cpu_seconds, memory, wall_time");
  EXPECT_EQ(ErrorOf("limit memory"),
            "x.policy:1:13: expected a value for memory (or \"unlimited\")");
  EXPECT_EQ(ErrorOf("limit open_fds 0"),
            "x.policy:1:16: a limit of 0 is not allowed; write \"unlimited\" for no limit");
  EXPECT_EQ(ErrorOf("limit memory 0M"),
            "x.policy:1:14: a limit of 0 is not allowed; write \"unlimited\" for no limit");
  EXPECT_EQ(ErrorOf("limit wall_time 0s"),
            "x.policy:1:17: a limit of 0 is not allowed; write \"unlimited\" for no limit");
  EXPECT_EQ(ErrorOf("limit open_fds 4294967296"),
            "x.policy:1:16: open_fds 4294967296 is out of range 0..4294967295");
  EXPECT_EQ(ErrorOf("limit open_fds -1"),
            "x.policy:1:16: expected a number for open_fds (or \"unlimited\")");
  EXPECT_EQ(ErrorOf("limit open_fds 64K"),
            "x.policy:1:16: expected a number for open_fds (or \"unlimited\")");
  EXPECT_EQ(ErrorOf("limit message_bytes 4G"),
            "x.policy:1:21: message_bytes \"4G\" is out of range; at most 4294967295 bytes");
  EXPECT_EQ(ErrorOf("limit memory 16777216T"),
            "x.policy:1:14: memory \"16777216T\" is out of range; at most 18446744073709551615 "
            "bytes");
  EXPECT_EQ(ErrorOf("limit memory 18446744073709551616"),
            "x.policy:1:14: memory \"18446744073709551616\" is out of range; at most "
            "18446744073709551615 bytes");
  EXPECT_EQ(ErrorOf("limit memory 256MB"),
            "x.policy:1:14: expected a size for memory: a number of bytes, optionally followed "
            "by K, M, G or T (powers of 1024), or \"unlimited\"");
  EXPECT_EQ(ErrorOf("limit memory 256m"),
            "x.policy:1:14: expected a size for memory: a number of bytes, optionally followed "
            "by K, M, G or T (powers of 1024), or \"unlimited\"");
  EXPECT_EQ(ErrorOf("limit memory 0256M"),
            "x.policy:1:14: leading zeros are not allowed in \"0256M\"");
  EXPECT_EQ(ErrorOf("limit wall_time 30"),
            "x.policy:1:19: expected a unit after 30: ns, us, ms, s, m, h or d");
  EXPECT_EQ(ErrorOf("limit wall_time -30s"),
            "x.policy:1:17: a sign is not allowed in this duration");
  EXPECT_EQ(ErrorOf("limit wall_time 30s 40s"),
            "x.policy:1:21: unexpected \"40s\" after the limit's value; expected the end of the "
            "line or a # comment");
}

TEST(PolicyFileErrorTest, Bytes) {
  EXPECT_EQ(ErrorOf("promises stdio\nunveil /a\x01 r\n"),
            "x.policy:2:10: control character 0x01 is not allowed");
  EXPECT_EQ(ErrorOf(absl::string_view("# a\0b\n", 6)),
            "x.policy:1:4: control character 0x00 is not allowed");
  EXPECT_EQ(ErrorOf("promises stdio\x7f"), "x.policy:1:15: control character 0x7f is not allowed");
  EXPECT_EQ(ErrorOf("promises stdio\rpenalty kill\n"),
            "x.policy:1:15: a carriage return must be followed by a line feed");
  EXPECT_EQ(ErrorOf("promises stdio\r"),
            "x.policy:1:15: a carriage return must be followed by a line feed");
  EXPECT_EQ(ErrorOf("promises stdio\r\r\n"),
            "x.policy:1:15: a carriage return must be followed by a line feed");
  EXPECT_EQ(ErrorOf("\xEF\xBB\xBFpromises stdio"),
            "x.policy:1:1: a UTF-8 byte order mark is not allowed; save the file without it");
  EXPECT_EQ(ErrorOf("promises std\xC3\xAF"),
            "x.policy:1:10: unknown promise \"std\\xc3\\xaf\"; did you mean \"stdio\"?");
  // UTF-8 is fine in comments and paths.
  EXPECT_EQ(Parse("# caf\xC3\xA9\nunveil /caf\xC3\xA9 r").paths[0].path, "/caf\xC3\xA9");
}

TEST(PolicyFileErrorTest, Sizes) {
  const std::string long_line = absl::StrCat("# ", std::string(kMaxPolicyLineBytes, 'x'));
  EXPECT_EQ(ErrorOf(absl::StrCat("promises stdio\n", long_line)),
            absl::StrCat("x.policy:2:", kMaxPolicyLineBytes + 1, ": the line is longer than ",
                         kMaxPolicyLineBytes, " bytes"));
  EXPECT_EQ(ErrorOf(std::string(kMaxPolicyLineBytes, '#')), "<parsed>");

  std::string big;
  while (big.size() <= kMaxPolicyFileBytes) big += "# filler filler filler filler\n";
  EXPECT_EQ(ErrorOf(big), absl::StrCat("x.policy: the policy is ", big.size(),
                                       " bytes; at most 1048576 are allowed"));
  big.resize(kMaxPolicyFileBytes - 1);
  big += "\n";
  EXPECT_EQ(ErrorOf(big), "<parsed>");

  // An unknown word is quoted at most 64 bytes long in a message.
  EXPECT_EQ(ErrorOf(std::string(200, 'z')),
            absl::StrCat("x.policy:1:1: unknown directive \"", std::string(64, 'z'),
                         "...\"; expected one of: promises, penalty, unveil, connect, clock, "
                         "limit, layers, identity, libc, execpromises"));
}

TEST(PolicyFileErrorTest, FileNameIsUsed) {
  absl::StatusOr<Policy> p = ParsePolicy("penalty x", "/etc/vow/w.policy");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "/etc/vow/w.policy:1:9: unknown penalty \"x\"; expected one of: kill, errno, trap, "
            "log");
  p = ParsePolicy("penalty x");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("<policy>:1:9:"));
}

// ---------------------------------------------------------------- suggestions

TEST(NearestPromiseNameTest, Typos) {
  EXPECT_EQ(NearestPromiseName("rpat"), "rpath");
  EXPECT_EQ(NearestPromiseName("stdoi"), "stdio");  // transposition
  EXPECT_EQ(NearestPromiseName("STDIO"), "stdio");  // case
  EXPECT_EQ(NearestPromiseName("wpth"), "wpath");
  EXPECT_EQ(NearestPromiseName("inett"), "inet");
  EXPECT_EQ(NearestPromiseName("protexec"), "prot_exec");
  EXPECT_EQ(NearestPromiseName("threads"), "thread");
  EXPECT_EQ(NearestPromiseName("recfd"), "recvfd");
  EXPECT_EQ(NearestPromiseName("tmpath"), "tmppath");
}

TEST(NearestPromiseNameTest, TooFarIsNothing) {
  EXPECT_EQ(NearestPromiseName("xyzzy"), std::nullopt);
  EXPECT_EQ(NearestPromiseName(""), std::nullopt);
  EXPECT_EQ(NearestPromiseName("q"), std::nullopt);
  EXPECT_EQ(NearestPromiseName("network"), std::nullopt);
  EXPECT_EQ(NearestPromiseName(std::string(1000, 'a')), std::nullopt);
}

// ---------------------------------------------------------------- files

TEST(LoadPolicyFileTest, ExamplesParseAndRoundTrip) {
  for (const char* name : {"x509_oracle", "file_parser", "renderer"}) {
    const std::string path = absl::StrCat("policies/examples/", name, ".policy");
    absl::StatusOr<Policy> p = LoadPolicyFile(path);
    ASSERT_TRUE(p.ok()) << p.status();
    ExpectRoundTrip(*p);
  }
  absl::StatusOr<Policy> x509 = LoadPolicyFile("policies/examples/x509_oracle.policy");
  ASSERT_TRUE(x509.ok());
  EXPECT_TRUE(x509->promises == PromiseSet{Promise::kStdio});
  EXPECT_EQ(x509->clock.kind, ClockRule::Kind::kFixed);
  ASSERT_GE(x509->paths.size(), 1u);
  EXPECT_EQ(x509->paths[0].path, "/etc/ssl/certs");
  absl::StatusOr<Policy> renderer = LoadPolicyFile("policies/examples/renderer.policy");
  ASSERT_TRUE(renderer.ok());
  EXPECT_EQ(renderer->connects.size(), 5u);
  EXPECT_EQ(renderer->paths[1].path, "/opt/my app/assets");
}

std::string TempFile(absl::string_view contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/policy_file_test_XXXXXX");
  const int fd = mkstemp(path.data());
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
  close(fd);
  return path;
}

TEST(LoadPolicyFileTest, ErrorsNameThePath) {
  const std::string path = TempFile("promises stdio\nunveil /x rz\n");
  absl::StatusOr<Policy> p = LoadPolicyFile(path);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            absl::StrCat(path,
                         ":2:12: expected permissions made of r, w, x, c (or \"none\") "
                         "after the path; \"z\" is not a permission"));
  unlink(path.c_str());
}

TEST(LoadPolicyFileTest, MissingDirectoryAndTooLarge) {
  absl::StatusOr<Policy> missing = LoadPolicyFile("/nonexistent/vow.policy");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoOf(missing.status()), ENOENT);

  absl::StatusOr<Policy> dir = LoadPolicyFile("/");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kFailedPrecondition);

  const std::string big = TempFile(std::string(kMaxPolicyFileBytes + 1, '\n'));
  absl::StatusOr<Policy> too_large = LoadPolicyFile(big);
  ASSERT_FALSE(too_large.ok());
  EXPECT_THAT(too_large.status().message(), HasSubstr("at most 1048576 are allowed"));
  unlink(big.c_str());

  const std::string ok = TempFile(std::string(kMaxPolicyFileBytes, '\n'));
  EXPECT_TRUE(LoadPolicyFile(ok).ok());
  unlink(ok.c_str());
}

}  // namespace
}  // namespace vow
