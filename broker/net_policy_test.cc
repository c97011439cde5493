#include "broker/net_policy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/syscall.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow {
namespace {

using ::testing::HasSubstr;
using Transport = ConnectRule::Transport;

std::string V4(const char* text) {
  in_addr a;
  EXPECT_EQ(inet_pton(AF_INET, text, &a), 1) << text;
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

std::string V6(const char* text) {
  in6_addr a;
  EXPECT_EQ(inet_pton(AF_INET6, text, &a), 1) << text;
  return std::string(reinterpret_cast<const char*>(&a), 16);
}

ConnectRule IpRule(Transport t, std::string address, int prefix, uint16_t lo, uint16_t hi) {
  ConnectRule r;
  r.transport = t;
  r.address = std::move(address);
  r.prefix_len = prefix;
  r.port_min = lo;
  r.port_max = hi;
  return r;
}

ConnectRule UnixRule(std::string path) {
  ConnectRule r;
  r.transport = Transport::kUnix;
  r.unix_path = std::move(path);
  return r;
}

ConnectTarget Ip(Transport t, std::string address, uint16_t port) {
  ConnectTarget target;
  target.transport = t;
  target.address = std::move(address);
  target.port = port;
  return target;
}

NetPolicy Make(const std::vector<ConnectRule>& rules) {
  absl::StatusOr<NetPolicy> p = NetPolicy::Create(rules);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) std::abort();
  return *std::move(p);
}

// A listening TCP socket on an ephemeral port of `family`'s loopback.
struct Listener {
  explicit Listener(int family) {
    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_storage ss = {};
    socklen_t len;
    if (family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*sin);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_addr = in6addr_loopback;
      len = sizeof(*sin6);
    }
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&ss), len), 0) << strerror(errno);
    EXPECT_EQ(listen(fd, 8), 0);
    EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len), 0);
    port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                   : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  ~Listener() { close(fd); }
  // Accepts one connection (waiting up to 5 s) and checks bytes flow both ways.
  void ExpectConnected(int client) {
    pollfd p = {fd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 5000), 1);
    int server = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(server, 0);
    ASSERT_EQ(write(client, "ping", 4), 4);
    char buf[4];
    ASSERT_EQ(read(server, buf, 4), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
    close(server);
  }
  int fd = -1;
  uint16_t port = 0;
};

int Err(const NetPolicy& p, const ConnectTarget& t) {
  absl::StatusOr<UniqueFd> fd = p.Connect(t);
  if (fd.ok()) return 0;
  EXPECT_NE(ErrnoOf(fd.status()), 0) << fd.status();
  return ErrnoOf(fd.status());
}

TEST(NetPolicyTest, AllowedTcpPortConnects) {
  Listener l(AF_INET);
  NetPolicy p = Make({IpRule(Transport::kTcp, V4("127.0.0.1"), 32, l.port, l.port)});
  absl::StatusOr<UniqueFd> fd = p.Connect(Ip(Transport::kTcp, V4("127.0.0.1"), l.port));
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0) << "handed over blocking";
  l.ExpectConnected(fd->get());
}

TEST(NetPolicyTest, OtherPortOrAddressIsEacces) {
  Listener l(AF_INET);
  NetPolicy p = Make({IpRule(Transport::kTcp, V4("127.0.0.1"), 32, l.port, l.port)});
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V4("127.0.0.1"), l.port == 65535 ? 1 : l.port + 1)),
            EACCES);
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V4("127.0.0.2"), l.port)), EACCES);
  EXPECT_EQ(Err(p, Ip(Transport::kUdp, V4("127.0.0.1"), l.port)), EACCES) << "transport";
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V6("::1"), l.port)), EACCES) << "family";
  absl::StatusOr<UniqueFd> fd = p.Connect(Ip(Transport::kTcp, V4("10.1.2.3"), 80));
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("no connect rule allows tcp 10.1.2.3 port 80"));
}

TEST(NetPolicyTest, CidrSlash8MatchesLoopbackNet) {
  Listener l(AF_INET);
  // Host bits in the rule are ignored (127.9.9.9/8 is 127.0.0.0/8).
  NetPolicy p = Make({IpRule(Transport::kTcp, V4("127.9.9.9"), 8, 1, 65535)});
  absl::StatusOr<UniqueFd> fd = p.Connect(Ip(Transport::kTcp, V4("127.0.0.1"), l.port));
  ASSERT_TRUE(fd.ok()) << fd.status();
  l.ExpectConnected(fd->get());
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V4("128.0.0.1"), l.port)), EACCES);
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V4("126.255.255.255"), l.port)), EACCES);
}

TEST(NetPolicyTest, RefusedLoopbackConnectionFailsFast) {
  int port;
  {
    Listener l(AF_INET);  // find a port that is free once this closes
    port = l.port;
  }
  NetPolicy p = Make({IpRule(Transport::kTcp, V4("127.0.0.0"), 8, 1, 65535)});
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V4("127.0.0.1"), static_cast<uint16_t>(port))),
            ECONNREFUSED);
}

TEST(NetPolicyTest, Ipv6Loopback) {
  Listener l(AF_INET6);
  NetPolicy p = Make({IpRule(Transport::kTcp, V6("::1"), 128, l.port, l.port)});
  absl::StatusOr<UniqueFd> fd = p.Connect(Ip(Transport::kTcp, V6("::1"), l.port));
  ASSERT_TRUE(fd.ok()) << fd.status();
  l.ExpectConnected(fd->get());
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V6("::2"), l.port)), EACCES);
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V4("127.0.0.1"), l.port)), EACCES);
}

TEST(NetPolicyTest, V4MappedTargetIsMatchedAsIpv4) {
  Listener l(AF_INET);
  NetPolicy v4 = Make({IpRule(Transport::kTcp, V4("127.0.0.1"), 32, l.port, l.port)});
  absl::StatusOr<UniqueFd> fd = v4.Connect(Ip(Transport::kTcp, V6("::ffff:127.0.0.1"), l.port));
  ASSERT_TRUE(fd.ok()) << fd.status();
  l.ExpectConnected(fd->get());
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  ASSERT_EQ(getpeername(fd->get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
  EXPECT_EQ(ss.ss_family, AF_INET) << "connected as IPv4";
  // The mapped form cannot reach an IPv4 address no IPv4 rule allows, even when a wide
  // IPv6 rule exists.
  NetPolicy v6_any = Make({IpRule(Transport::kTcp, V6("::"), 0, 1, 65535)});
  EXPECT_EQ(Err(v6_any, Ip(Transport::kTcp, V6("::ffff:127.0.0.1"), l.port)), EACCES);
  EXPECT_EQ(Err(v4, Ip(Transport::kTcp, V6("::ffff:127.0.0.2"), l.port)), EACCES);
}

TEST(NetPolicyTest, V4MappedRuleIsAnIpv4Rule) {
  Listener l(AF_INET);
  NetPolicy p = Make({IpRule(Transport::kTcp, V6("::ffff:127.0.0.0"), 104, 1, 65535)});
  absl::StatusOr<UniqueFd> fd = p.Connect(Ip(Transport::kTcp, V4("127.0.0.1"), l.port));
  ASSERT_TRUE(fd.ok()) << fd.status();
  l.ExpectConnected(fd->get());
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V4("10.0.0.1"), l.port)), EACCES);
}

TEST(NetPolicyTest, MalformedTargets) {
  NetPolicy p = Make({IpRule(Transport::kTcp, V4("0.0.0.0"), 0, 1, 65535),
                      IpRule(Transport::kTcp, V6("::"), 0, 1, 65535)});
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, "abc", 80)), EINVAL);
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, "", 80)), EINVAL);
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, std::string(17, '\1'), 80)), EINVAL);
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V4("127.0.0.1"), 0)), EINVAL);
  EXPECT_EQ(Err(p, Ip(static_cast<Transport>(9), V4("127.0.0.1"), 80)), EINVAL);
  // The unspecified addresses reach the local host: never allowed.
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V4("0.0.0.0"), 80)), EACCES);
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V6("::"), 80)), EACCES);
  EXPECT_EQ(Err(p, Ip(Transport::kTcp, V6("::ffff:0.0.0.0"), 80)), EACCES);
}

TEST(NetPolicyTest, UdpConnects) {
  int server = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  socklen_t len = sizeof(sin);
  ASSERT_EQ(getsockname(server, reinterpret_cast<sockaddr*>(&sin), &len), 0);
  uint16_t port = ntohs(sin.sin_port);
  NetPolicy p = Make({IpRule(Transport::kUdp, V4("127.0.0.1"), 32, port, port)});
  absl::StatusOr<UniqueFd> fd = p.Connect(Ip(Transport::kUdp, V4("127.0.0.1"), port));
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_EQ(write(fd->get(), "dgram", 5), 5);
  char buf[8];
  EXPECT_EQ(recv(server, buf, sizeof(buf), 0), 5);
  close(server);
}

// Item 1: the worker gets a relay end, never a UDP socket: an address in sendmsg cannot
// reach another peer.
TEST(NetPolicyTest, UdpIsRelayedNeverHandedOver) {
  auto bound = [](uint16_t* port) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin = {};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    socklen_t len = sizeof(sin);
    getsockname(s, reinterpret_cast<sockaddr*>(&sin), &len);
    *port = ntohs(sin.sin_port);
    return s;
  };
  uint16_t port = 0, other_port = 0;
  int server = bound(&port);
  int other = bound(&other_port);
  NetPolicy p = Make({IpRule(Transport::kUdp, V4("127.0.0.1"), 32, port, port)});
  absl::StatusOr<UniqueFd> fd = p.Connect(Ip(Transport::kUdp, V4("127.0.0.1"), port));
  ASSERT_TRUE(fd.ok()) << fd.status();
  int type = 0, family = 0;
  socklen_t len = sizeof(type);
  ASSERT_EQ(getsockopt(fd->get(), SOL_SOCKET, SO_TYPE, &type, &len), 0);
  len = sizeof(family);
  ASSERT_EQ(getsockopt(fd->get(), SOL_SOCKET, SO_DOMAIN, &family, &len), 0);
  EXPECT_EQ(type, SOCK_SEQPACKET);
  EXPECT_EQ(family, AF_UNIX);
  // sendmsg with msg_name naming the other port: the datagram goes to the allowed peer.
  sockaddr_in to = {};
  to.sin_family = AF_INET;
  to.sin_port = htons(other_port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char payload[] = "evil";
  iovec iov = {payload, 4};
  msghdr msg = {};
  msg.msg_name = &to;
  msg.msg_namelen = sizeof(to);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  sendmsg(fd->get(), &msg, 0);
  pollfd pf = {server, POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 5000), 1);
  char buf[8];
  sockaddr_in from = {};
  socklen_t from_len = sizeof(from);
  ASSERT_EQ(recvfrom(server, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len),
            4);
  EXPECT_EQ(recv(other, buf, sizeof(buf), MSG_DONTWAIT), -1) << "reached the other port";
  // A reply comes back through the relay.
  ASSERT_EQ(sendto(server, "pong", 4, 0, reinterpret_cast<sockaddr*>(&from), from_len), 4);
  pf = {fd->get(), POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 5000), 1);
  EXPECT_EQ(recv(fd->get(), buf, sizeof(buf), 0), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  EXPECT_EQ(p.relayed_sessions(), 1u);
  fd->reset();
  for (int i = 0; i < 200 && p.relayed_sessions() != 0; ++i) usleep(10000);
  EXPECT_EQ(p.relayed_sessions(), 0u) << "closing the worker's end ends the session";
  close(server);
  close(other);
}

// Item 2: a connection that is not established by the deadline is not handed over.
TEST(NetPolicyTest, TcpHandedOverOnlyOnceEstablished) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  ASSERT_EQ(listen(l, 0), 0);
  socklen_t len = sizeof(sin);
  ASSERT_EQ(getsockname(l, reinterpret_cast<sockaddr*>(&sin), &len), 0);
  // Fill the accept queue (backlog 0 holds one; more SYNs are dropped, not refused).
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    connect(c, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    fillers.push_back(c);
  }
  usleep(100000);
  const uint16_t port = ntohs(sin.sin_port);
  NetPolicy p = Make({IpRule(Transport::kTcp, V4("127.0.0.1"), 32, port, port)});
  // The deadline is on the monotonic clock (a step of the system clock moves neither
  // end): one made from MonotonicNow() is waited for, not taken as long past (the
  // realtime clock is ~56 years ahead of the monotonic one).
  const absl::Time start = MonotonicNow();
  absl::StatusOr<UniqueFd> fd = p.Connect(Ip(Transport::kTcp, V4("127.0.0.1"), port),
                                          start + absl::Milliseconds(500));
  const absl::Duration took = MonotonicNow() - start;
  EXPECT_FALSE(fd.ok()) << "a connecting socket was handed over";
  EXPECT_EQ(ErrnoOf(fd.status()), ETIMEDOUT) << fd.status();
  EXPECT_GE(took, absl::Milliseconds(450)) << "the deadline was not waited for";
  EXPECT_LT(took, absl::Seconds(3));
  for (int c : fillers) close(c);
  close(l);
}

class UnixSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // sun_path is short: use /tmp rather than the (long) TEST_TMPDIR.
    std::string dir = "/tmp/vow_net_XXXXXX";
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    path_ = dir + "/sock";
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un sun = {};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path_.data(), path_.size());
    ASSERT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)), 0);
    ASSERT_EQ(listen(fd_, 4), 0);
  }
  void TearDown() override {
    close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

ConnectTarget Unix(std::string path) {
  ConnectTarget t;
  t.transport = Transport::kUnix;
  t.unix_path = std::move(path);
  return t;
}

TEST_F(UnixSocketTest, RuleAllowsExactPath) {
  NetPolicy p = Make({UnixRule(path_)});
  absl::StatusOr<UniqueFd> fd = p.Connect(Unix(path_));
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  int server = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(server, 0);
  ASSERT_EQ(write(fd->get(), "u", 1), 1);
  char c;
  EXPECT_EQ(read(server, &c, 1), 1);
  close(server);
  EXPECT_EQ(Err(p, Unix(path_ + "x")), EACCES);
  EXPECT_EQ(Err(p, Unix(dir_ + "//sock")), EACCES) << "byte-for-byte match";
}

// A second listening socket elsewhere (the "root-only" one of the confused deputy).
struct OtherListener {
  OtherListener() {
    char tmpl[] = "/tmp/vow_other_XXXXXX";
    dir = mkdtemp(tmpl);
    path = dir + "/secret.sock";
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sun = {};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.data(), path.size());
    bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun));
    listen(fd, 4);
  }
  ~OtherListener() {
    close(fd);
    unlink(path.c_str());
    rmdir(dir.c_str());
  }
  bool Accepted() {
    int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return false;
    close(c);
    return true;
  }
  std::string dir, path;
  int fd = -1;
};

// Item 7: a symlink planted at the allowed path after Prepare does not redirect.
TEST_F(UnixSocketTest, PinnedRuleIgnoresAPlantedSymlink) {
  OtherListener other;
  NetPolicy p = Make({UnixRule(path_)});  // pinned: the socket exists now
  ASSERT_EQ(unlink(path_.c_str()), 0);
  ASSERT_EQ(symlink(other.path.c_str(), path_.c_str()), 0);
  absl::StatusOr<UniqueFd> fd = p.Connect(Unix(path_));
  EXPECT_FALSE(other.Accepted()) << "the planted symlink led to another socket";
  // It reached the pinned socket (still listening, though unlinked).
  ASSERT_TRUE(fd.ok()) << fd.status();
  pollfd pf = {fd_, POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 2000), 1) << "the pinned socket got no connection";
  int server = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  EXPECT_GE(server, 0);
  if (server >= 0) close(server);
}

TEST_F(UnixSocketTest, UnpinnedRuleFollowsNoSymlink) {
  OtherListener other;
  const std::string later = dir_ + "/later.sock";
  NetPolicy p = Make({UnixRule(later)});  // does not exist yet: looked up at connect
  ASSERT_EQ(symlink(other.path.c_str(), later.c_str()), 0);
  EXPECT_EQ(Err(p, Unix(later)), ELOOP);
  EXPECT_FALSE(other.Accepted());
  unlink(later.c_str());
}

// The peer re-check: a socket bound under another name than the rule's is refused.
TEST_F(UnixSocketTest, PeerBoundUnderAnotherNameIsRefused) {
  // A directory symlink: the rule names dir/sock, the server is bound as link/sock.
  const std::string link = dir_ + "_link";
  ASSERT_EQ(symlink(dir_.c_str(), link.c_str()), 0);
  const std::string bound_as = link + "/other.sock";
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun = {};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, bound_as.data(), bound_as.size());
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)), 0);
  ASSERT_EQ(listen(s, 4), 0);
  NetPolicy p = Make({UnixRule(dir_ + "/other.sock")});
  absl::StatusOr<UniqueFd> fd = p.Connect(Unix(dir_ + "/other.sock"));
  EXPECT_EQ(ErrnoOf(fd.status()), EACCES) << fd.status();
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("bound as"));
  close(s);
  unlink((dir_ + "/other.sock").c_str());
  unlink(link.c_str());
}

TEST_F(UnixSocketTest, MalformedUnixTargets) {
  NetPolicy p = Make({UnixRule(path_)});
  EXPECT_EQ(Err(p, Unix("")), EINVAL);
  EXPECT_EQ(Err(p, Unix("relative/sock")), EINVAL);
  EXPECT_EQ(Err(p, Unix(path_ + std::string("\0x", 2))), EINVAL);
  EXPECT_EQ(Err(p, Unix(std::string("\0abstract", 9))), EACCES);
  EXPECT_EQ(Err(p, Unix("/" + std::string(107, 'a'))), ENAMETOOLONG);
  // 107 bytes is the maximum and is merely not allowed.
  EXPECT_EQ(Err(p, Unix("/" + std::string(106, 'a'))), EACCES);
}

TEST(NetPolicyCreateTest, BadRulesAreNamed) {
  struct Case {
    ConnectRule rule;
    const char* expect;
  };
  const Case cases[] = {
      {IpRule(Transport::kTcp, "abc", 8, 1, 2), "3 bytes long"},
      {IpRule(Transport::kTcp, V4("10.0.0.0"), 33, 1, 2), "prefix_len 33"},
      {IpRule(Transport::kTcp, V6("::1"), 129, 1, 2), "prefix_len 129"},
      {IpRule(Transport::kTcp, V4("10.0.0.0"), -1, 1, 2), "prefix_len -1"},
      {IpRule(Transport::kTcp, V4("10.0.0.0"), 8, 9, 2), "port_min 9"},
      {IpRule(Transport::kTcp, V4("10.0.0.0"), 8, 0, 0), "allows no port"},
      {UnixRule("relative"), "not absolute"},
      {UnixRule(""), "empty"},
      {UnixRule(std::string("\0abs", 4)), "NUL"},
      {UnixRule("/" + std::string(200, 'a')), "longer than 107"},
      {IpRule(static_cast<Transport>(7), V4("10.0.0.0"), 8, 1, 2), "unknown transport"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<NetPolicy> p =
        NetPolicy::Create({IpRule(Transport::kTcp, V4("10.0.0.0"), 8, 1, 2), c.rule});
    ASSERT_FALSE(p.ok()) << c.expect;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("connect rule 1")) << p.status();
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.expect)) << p.status();
  }
}

}  // namespace
}  // namespace vow
