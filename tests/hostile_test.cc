// Hostile workers against the broker's policies (issue 8): one hostile act per test, each
// in a real forked, locked worker spawned through the public Broker API. The test process
// is the broker. Each test asserts the refusal and, where there is one, that the allowed
// act next to it still works.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/syscall.h"
#include "broker/broker.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "worker/client.h"

namespace vow {
namespace {

using Kind = WorkerResult::Kind;

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = Broker::Create();
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
  }

  WorkerResult Run(const Policy& policy, WorkerMain main) {
    auto id = broker_->Spawn(policy, std::move(main));
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return WorkerResult{};
    auto result = broker_->Wait(*id, absl::Seconds(30));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : WorkerResult{};
  }

  // Runs `main` under stdio with the errno penalty: a refused syscall fails with EPERM,
  // is recorded, and the worker carries on to report what it saw by its exit code.
  WorkerResult RunErrno(WorkerMain main) {
    Policy policy;
    policy.penalty = Penalty::kErrno;
    return Run(policy, std::move(main));
  }

  std::unique_ptr<Broker> broker_;
};

// ---- MSG_FASTOPEN in a send's flags (item 2): refused by the worker's filter. ----
// The socket is a stream pair the worker makes itself: the flag check is the filter's,
// whatever the socket.

TEST_F(HostileTest, SendtoWithFastOpenRefused) {
  WorkerResult result = RunErrno([](Client&) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    if (sendto(sv[0], "x", 1, 0, nullptr, 0) != 1) return 2;
    if (sendto(sv[0], "x", 1, MSG_FASTOPEN, nullptr, 0) != -1 || errno != EPERM) return 3;
    return 0;
  });
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0) << result.ToString();
  ASSERT_EQ(result.violations.size(), 1u) << result.ToString();
  EXPECT_EQ(result.violations[0].syscall, "sendto");
}

TEST_F(HostileTest, SendmsgWithFastOpenRefused) {
  WorkerResult result = RunErrno([](Client&) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    char byte = 'x';
    iovec iov = {&byte, 1};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (sendmsg(sv[0], &msg, MSG_NOSIGNAL) != 1) return 2;
    if (sendmsg(sv[0], &msg, MSG_FASTOPEN | MSG_NOSIGNAL) != -1 || errno != EPERM) return 3;
    return 0;
  });
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0) << result.ToString();
  ASSERT_EQ(result.violations.size(), 1u) << result.ToString();
  EXPECT_EQ(result.violations[0].syscall, "sendmsg");
}

TEST_F(HostileTest, SendmmsgWithFastOpenRefused) {
  WorkerResult result = RunErrno([](Client&) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    char byte = 'x';
    iovec iov = {&byte, 1};
    mmsghdr msgs[1] = {};
    msgs[0].msg_hdr.msg_iov = &iov;
    msgs[0].msg_hdr.msg_iovlen = 1;
    if (sendmmsg(sv[0], msgs, 1, 0) != 1) return 2;
    if (sendmmsg(sv[0], msgs, 1, MSG_FASTOPEN) != -1 || errno != EPERM) return 3;
    return 0;
  });
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0) << result.ToString();
  ASSERT_EQ(result.violations.size(), 1u) << result.ToString();
  EXPECT_EQ(result.violations[0].syscall, "sendmmsg");
}

// ---- socketpair under stdio: connection-oriented types only. ----

TEST_F(HostileTest, DatagramSocketpairRefused) {
  WorkerResult result = RunErrno([](Client&) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != -1 || errno != EPERM) {
      return 1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 2;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) != 0) return 3;
    return 0;
  });
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0) << result.ToString();
  ASSERT_EQ(result.violations.size(), 1u) << result.ToString();
  EXPECT_EQ(result.violations[0].syscall, "socketpair");
}

TEST_F(HostileTest, RawSocketpairRefused) {
  WorkerResult result = RunErrno([](Client&) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_RAW, 0, sv) != -1 || errno != EPERM) return 1;
    return 0;
  });
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0) << result.ToString();
  ASSERT_EQ(result.violations.size(), 1u) << result.ToString();
  EXPECT_EQ(result.violations[0].syscall, "socketpair");
}

// ---- UDP (item 1): the worker's datagrams reach only the allowed peer. ----

struct UdpPort {
  explicit UdpPort(const char* ip = "127.0.0.1", uint16_t want = 0) {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin = {};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(want);
    inet_pton(AF_INET, ip, &sin.sin_addr);
    ok = bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0;
    socklen_t len = sizeof(sin);
    getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    port = ntohs(sin.sin_port);
  }
  ~UdpPort() { close(fd); }
  // The payload of the next datagram within `ms`, or "" if none came.
  std::string Next(int ms) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return "";
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  int fd = -1;
  uint16_t port = 0;
  bool ok = false;
};

Policy UdpPolicy(uint16_t port) {
  Policy policy;
  ConnectRule rule;
  rule.transport = ConnectRule::Transport::kUdp;
  rule.address = std::string("\x7f\x00\x00\x01", 4);
  rule.prefix_len = 32;
  rule.port_min = rule.port_max = port;
  policy.connects.push_back(rule);
  return policy;
}

TEST_F(HostileTest, UdpSendmsgToAnotherPortReachesOnlyTheAllowedPeer) {
  UdpPort allowed, other;
  ASSERT_TRUE(allowed.ok && other.ok);
  const uint16_t to_port = other.port, good = allowed.port;
  WorkerResult result = Run(UdpPolicy(good), [&](Client& client) {
    auto fd = client.ConnectUdp("127.0.0.1", good);
    if (!fd.ok()) return 1;
    sockaddr_in to = {};
    to.sin_family = AF_INET;
    to.sin_port = htons(to_port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char payload[] = "evil";
    iovec iov = {payload, 4};
    msghdr msg = {};
    msg.msg_name = &to;
    msg.msg_namelen = sizeof(to);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    (void)!sendmsg(fd->get(), &msg, 0);
    return 0;
  });
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0) << result.ToString();
  EXPECT_EQ(allowed.Next(5000), "evil");
  EXPECT_EQ(other.Next(200), "") << "a datagram reached the other port";
}

TEST_F(HostileTest, UdpSendmmsgToAnotherAddressReachesOnlyTheAllowedPeer) {
  UdpPort allowed;
  ASSERT_TRUE(allowed.ok);
  UdpPort elsewhere("127.0.0.2", allowed.port);
  ASSERT_TRUE(elsewhere.ok);
  const uint16_t good = allowed.port;
  WorkerResult result = Run(UdpPolicy(good), [&](Client& client) {
    auto fd = client.ConnectUdp("127.0.0.1", good);
    if (!fd.ok()) return 1;
    sockaddr_in to = {};
    to.sin_family = AF_INET;
    to.sin_port = htons(good);
    inet_pton(AF_INET, "127.0.0.2", &to.sin_addr);
    char payload[] = "evil";
    iovec iov = {payload, 4};
    mmsghdr msgs[1] = {};
    msgs[0].msg_hdr.msg_name = &to;
    msgs[0].msg_hdr.msg_namelen = sizeof(to);
    msgs[0].msg_hdr.msg_iov = &iov;
    msgs[0].msg_hdr.msg_iovlen = 1;
    (void)!sendmmsg(fd->get(), msgs, 1, 0);
    return 0;
  });
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0) << result.ToString();
  EXPECT_EQ(allowed.Next(5000), "evil");
  EXPECT_EQ(elsewhere.Next(200), "") << "a datagram reached 127.0.0.2";
}

// ---- Files (items 3, 5, 9) through a real worker. ----

PathRule Letters(const std::string& path, bool r, bool w, bool c) {
  PathRule rule;
  rule.path = path;
  rule.read = r;
  rule.write = w;
  rule.create = c;
  return rule;
}

TEST_F(HostileTest, ProcRuleNeverReachesTheBrokersMemory) {
  Policy policy;
  policy.paths.push_back(Letters("/proc", true, true, false));
  const pid_t broker = getpid();
  WorkerResult result = Run(policy, [&](Client& client) {
    for (std::string path : {absl::StrCat("/proc/", broker, "/mem"),
                             absl::StrCat("/proc/", broker, "/environ"),
                             std::string("/proc/1/maps")}) {
      auto fd = client.Open(path, O_RDONLY);
      if (fd.ok() || ErrnoOf(fd.status()) != EACCES) return 2;
    }
    // /proc/self: the worker's own, or refused; never the broker's.
    auto self = client.Open("/proc/self/status", O_RDONLY);
    if (self.ok()) {
      char buf[4096];
      ssize_t n = read(self->get(), buf, sizeof(buf) - 1);
      if (n <= 0) return 3;
      buf[n] = 0;
      if (strstr(buf, absl::StrCat("\nPid:\t", broker, "\n").c_str()) != nullptr) return 4;
    } else if (ErrnoOf(self.status()) != EACCES) {
      return 5;
    }
    return 0;
  });
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0) << result.ToString();
}

TEST_F(HostileTest, DevRuleDoesNotOpenDevices) {
  Policy policy;
  policy.paths.push_back(Letters("/dev", true, true, false));
  WorkerResult result = Run(policy, [](Client& client) {
    for (const char* dev : {"/dev/kmsg", "/dev/console", "/dev/loop0", "/dev/null"}) {
      auto fd = client.Open(dev, O_RDONLY);
      if (fd.ok()) return 2;
      // Absent ones say ENOENT; present ones must be refused.
      if (ErrnoOf(fd.status()) != EACCES && ErrnoOf(fd.status()) != ENOENT) return 3;
    }
    return 0;
  });
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0) << result.ToString();
}

TEST_F(HostileTest, SymlinkedRuleCannotTruncateTheReadOnlyArea) {
  testing::TempDir dir;
  dir.MakeDir("data/ro");
  const std::string keep = dir.WriteFile("data/ro/keep.txt", "keep me");
  ASSERT_EQ(symlink("data", (dir.path() + "/datalink").c_str()), 0);
  Policy policy;
  policy.paths.push_back(Letters(dir.path() + "/datalink", true, true, true));
  policy.paths.push_back(Letters(dir.path() + "/data/ro", true, false, false));
  const std::string via = dir.path() + "/datalink/ro/keep.txt";
  const std::string create = dir.path() + "/datalink/ro/new.txt";
  WorkerResult result = Run(policy, [&](Client& client) {
    auto trunc = client.Open(via, O_WRONLY | O_TRUNC);
    if (trunc.ok() || ErrnoOf(trunc.status()) != EACCES) return 2;
    auto made = client.Open(create, O_WRONLY | O_CREAT, 0600);
    if (made.ok() || ErrnoOf(made.status()) != EACCES) return 3;
    return 0;
  });
  EXPECT_EQ(result.kind, Kind::kExited) << result.ToString();
  EXPECT_EQ(result.exit_code, 0) << result.ToString();
  struct stat st;
  ASSERT_EQ(stat(keep.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 7) << "truncated although refused";
  EXPECT_NE(access((dir.path() + "/data/ro/new.txt").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace vow
