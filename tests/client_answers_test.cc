// The worker's decoding of the broker's answers (worker/client.cc, Exchange): an fd answer
// that is exactly Response{id, fd} is taken without a Cap'n Proto reader (README, "Open,
// round 6"); these tests hold that shortcut to what the reader concludes. A fake broker
// answers a Client over a socket pair with hand-built answers; the last test uses the real
// broker.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "broker/broker.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "gtest/gtest.h"
#include "ipc/channel.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"
#include "worker/client.h"

namespace vow {
namespace {

// One answer of the fake broker: an fd answer (with `fd` attached, or nothing when -1),
// or an error when `err` != 0; to the request's id plus `id_offset`.
struct Answer {
  int64_t id_offset = 0;
  int fd = -1;
  int err = 0;
};

// Serves one request on `channel` with `answers`, in order, built as the broker builds
// them (SendFdOrError in broker/broker_wire.cc).
void FakeBroker(const Channel& channel, std::vector<Answer> answers) {
  alignas(8) capnp::word buffer[kMaxMessageWords];
  int fds[kMaxFdsPerMessage];
  int nfds = 0;
  const int n = channel.Receive(buffer, sizeof(buffer), fds, kMaxFdsPerMessage, &nfds);
  ASSERT_GT(n, 0);
  capnp::FlatArrayMessageReader reader(kj::arrayPtr(buffer, n / sizeof(capnp::word)));
  const uint64_t id = reader.getRoot<wire::Request>().getId();
  for (const Answer& a : answers) {
    capnp::word space[8] = {};
    capnp::MallocMessageBuilder builder(kj::arrayPtr(space, 8));
    auto response = builder.initRoot<wire::Response>();
    response.setId(id + a.id_offset);
    if (a.err != 0) {
      auto error = response.initError();
      error.setErrno(a.err);
      error.setReason("no");  // short: one segment, the id where an fd answer has it
    } else {
      response.setFd();
    }
    ASSERT_EQ(channel.Send(builder, a.fd), 0);
  }
}

class ClientAnswersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    client_fd_ = sv[0];
    broker_ = Channel(UniqueFd(sv[1]));
    null_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    zero_ = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(null_, 0);
    ASSERT_GE(zero_, 0);
  }
  void TearDown() override {
    close(client_fd_);
    close(null_);
    close(zero_);
  }
  // One OpenRaw answered with `answers`.
  int Open(Client& client, std::vector<Answer> answers) {
    std::thread server(FakeBroker, std::cref(broker_), std::move(answers));
    const int fd = client.OpenRaw("/x", 2, O_RDONLY, 0);
    server.join();
    return fd;
  }
  static bool SameFile(int a, int b) {
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
  }

  int client_fd_ = -1;
  Channel broker_;
  int null_ = -1, zero_ = -1;
};

TEST_F(ClientAnswersTest, AnFdAnswerIsTakenWithoutAReader) {
  Client client(client_fd_);
  const int fd = Open(client, {{0, null_, 0}});
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(SameFile(fd, null_));
  EXPECT_EQ(client.fd_answers_without_reader(), 1u);
  close(fd);
}

// An fd answer to an earlier request (a stale id) is skipped, its fd closed, as the reader
// path does: the answer with the id asked for is the one returned.
TEST_F(ClientAnswersTest, AStaleFdAnswerIsSkipped) {
  Client client(client_fd_);
  const int fd = Open(client, {{5, zero_, 0}, {0, null_, 0}});
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(SameFile(fd, null_)) << "the stale answer's fd was returned";
  EXPECT_FALSE(SameFile(fd, zero_));
  close(fd);
}

TEST_F(ClientAnswersTest, AnFdAnswerWithoutAnFdIsAProtocolError) {
  Client client(client_fd_);
  EXPECT_EQ(Open(client, {{0, -1, 0}}), -EPROTO);
}

// Not the fixed fd answer: the reader decodes it (an error with its errno and reason). One
// segment, so its framing and id sit where an fd answer's do: only the other words differ.
TEST_F(ClientAnswersTest, AnErrorAnswerTakesTheReader) {
  Client client(client_fd_);
  EXPECT_EQ(Open(client, {{0, -1, EACCES}}), -EACCES);
  EXPECT_EQ(client.last_reason(), "no");
  EXPECT_EQ(client.fd_answers_without_reader(), 0u);
}

// What the real broker sends for a granted open is the answer the Client learnt: every
// open of the worker took the shortcut (else the shortcut would be dead code, silently).
TEST(ClientAnswersBrokerTest, TheBrokersFdAnswersTakeTheShortcut) {
  auto broker = Broker::Create();
  ASSERT_TRUE(broker.ok()) << broker.status();
  Policy policy;
  policy.paths.push_back(PathRule{"/etc/hostname", /*read=*/true});
  auto id = (*broker)->Spawn(policy, [](Client& client) {
    for (int i = 0; i < 3; ++i) {
      const int fd = client.OpenRaw("/etc/hostname", 13, O_RDONLY, 0);
      if (fd < 0) return 100 + i;
      close(fd);
    }
    return static_cast<int>(client.fd_answers_without_reader());
  });
  ASSERT_TRUE(id.ok()) << id.status();
  auto result = (*broker)->Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->kind, WorkerResult::Kind::kExited) << result->ToString();
  EXPECT_EQ(result->exit_code, 3) << result->ToString();
}

}  // namespace
}  // namespace vow
