// Hostile workers against the broker's policies (issue 8): one hostile act per test, each
// in a real forked, locked worker spawned through the public Broker API. The test process
// is the broker. Each test asserts the refusal and, where there is one, that the allowed
// act next to it still works.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
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

}  // namespace
}  // namespace vow
