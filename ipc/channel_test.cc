#include "ipc/channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "capnp/serialize.h"
#include "gtest/gtest.h"
#include "ipc/protocol.capnp.h"

namespace vow {
namespace {

struct Pair {
  Channel a, b;
};

Pair MakePair() {
  auto pair = Channel::CreatePair();
  EXPECT_TRUE(pair.ok());
  return Pair{std::move(pair->first), std::move(pair->second)};
}

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(ChannelTest, RoundTripWithFd) {
  Pair p = MakePair();
  MessageArena arena;
  arena.Reset();
  capnp::MallocMessageBuilder builder(arena.segment());
  auto req = builder.initRoot<wire::Request>();
  req.setId(42);
  auto open = req.initOpen();
  open.setPath(kj::arrayPtr(reinterpret_cast<const kj::byte*>("/etc/a\0b"), 8));
  open.setFlags(O_RDONLY);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_EQ(p.a.Send(builder, devnull), 0);
  ::close(devnull);

  alignas(8) capnp::word buf[kMaxMessageWords];
  int fds[kMaxFdsPerMessage];
  int nfds = 0;
  int n = p.b.Receive(buf, sizeof(buf), fds, kMaxFdsPerMessage, &nfds);
  ASSERT_GT(n, 0);
  ASSERT_EQ(nfds, 1);
  EXPECT_TRUE(::fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
  ::close(fds[0]);
  ASSERT_EQ(CheckFraming(buf, n), 0);
  capnp::FlatArrayMessageReader reader(kj::arrayPtr(buf, n / 8), ReaderLimits());
  auto got = reader.getRoot<wire::Request>();
  EXPECT_EQ(got.getId(), 42u);
  ASSERT_TRUE(got.isOpen());
  EXPECT_EQ(got.getOpen().getPath().size(), 8u);
}

TEST(ChannelTest, OversizedDatagramRefusedAndFdsClosed) {
  Pair p = MakePair();
  std::vector<char> big(kMaxMessageBytes + 64, 'x');
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_EQ(p.a.SendBytes(big.data(), big.size(), &devnull, 1), 0);
  ::close(devnull);
  alignas(8) capnp::word buf[kMaxMessageWords];
  int fds[1] = {-1};
  int nfds = 0;
  EXPECT_EQ(p.b.Receive(buf, sizeof(buf), fds, 1, &nfds), -EMSGSIZE);
  EXPECT_EQ(nfds, 0);
  // The fd that arrived with the oversized datagram was closed: the lowest free fd is
  // the one it would have had.
  int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(probe, devnull);
  ::close(probe);
}

TEST(ChannelTest, TooManyFdsRefusedAndClosed) {
  Pair p = MakePair();
  int fds_out[3];
  for (int& fd : fds_out) fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  char byte[8] = {0};
  ASSERT_EQ(p.a.SendBytes(byte, sizeof(byte), fds_out, 3), 0);
  for (int fd : fds_out) ::close(fd);
  alignas(8) capnp::word buf[16];
  int fds[1];
  int nfds = 0;
  EXPECT_EQ(p.b.Receive(buf, sizeof(buf), fds, 1, &nfds), -EPROTO);
  for (int fd : fds_out) EXPECT_FALSE(IsOpen(fd)) << fd;
}

TEST(ChannelTest, PeerClosedReadsZero) {
  Pair p = MakePair();
  { Channel gone = std::move(p.a); }
  alignas(8) capnp::word buf[16];
  int fds[1];
  int nfds = 0;
  EXPECT_EQ(p.b.Receive(buf, sizeof(buf), fds, 1, &nfds), 0);
}

TEST(FramingTest, RejectsMalformedTables) {
  alignas(8) uint32_t words[8] = {0};
  EXPECT_EQ(CheckFraming(words, 0), -EBADMSG);
  EXPECT_EQ(CheckFraming(words, 7), -EBADMSG);
  // One segment of 1 word: table (count-1=0, size=1) + 1 word = 16 bytes.
  words[0] = 0;
  words[1] = 1;
  EXPECT_EQ(CheckFraming(words, 16), 0);
  EXPECT_EQ(CheckFraming(words, 24), -EBADMSG);  // trailing bytes
  words[1] = 0xffffffff;                          // segment bigger than the datagram
  EXPECT_EQ(CheckFraming(words, 16), -EBADMSG);
  words[0] = 0xffffffff;  // 2^32 segments
  EXPECT_EQ(CheckFraming(words, 16), -EBADMSG);
  words[0] = kMaxSegments;  // one more than allowed
  EXPECT_EQ(CheckFraming(words, 32), -EBADMSG);
  // Two segments: table is 3 uint32 + padding; non-zero padding refused.
  words[0] = 1;
  words[1] = 1;
  words[2] = 1;
  words[3] = 0;
  EXPECT_EQ(CheckFraming(words, 32), 0);
  words[3] = 7;
  EXPECT_EQ(CheckFraming(words, 32), -EBADMSG);
}

// A snapshot of an arena taken while a message is being built on it (what a fork by
// another thread copies while the broker's exec child, sharing the broker's memory,
// builds its hello on the static arena) must still give a clean segment after Reset().
TEST(ChannelTest, ArenaCopiedMidBuildResetsClean) {
  static MessageArena arena, copy;
  arena.Reset();
  {
    capnp::MallocMessageBuilder builder(arena.segment());
    builder.initRoot<wire::Request>().setId(7);
    memcpy(static_cast<void*>(&copy), &arena, sizeof(arena));  // before MarkUsed
    arena.MarkUsed(builder);
  }
  copy.Reset();
  for (const capnp::word& w : copy.segment()) {
    ASSERT_EQ(memcmp(&w, "\0\0\0\0\0\0\0\0", 8), 0);
  }
  capnp::MallocMessageBuilder again(copy.segment());  // throws on a dirty first word
  again.initRoot<wire::Request>().setId(8);
  // And the arena's own next message still starts clean.
  arena.Reset();
  capnp::MallocMessageBuilder next(arena.segment());
  next.initRoot<wire::Request>().setId(9);
}

TEST(ChannelTest, BuilderUsesNoHeapForTypicalMessage) {
  MessageArena arena;
  arena.Reset();
  capnp::MallocMessageBuilder builder(arena.segment());
  auto req = builder.initRoot<wire::Request>();
  std::vector<kj::byte> path(4096, 'a');
  req.initOpen().setPath(kj::arrayPtr(path.data(), path.size()));
  auto segments = builder.getSegmentsForOutput();
  ASSERT_EQ(segments.size(), 1u);
  EXPECT_EQ(segments[0].begin(), arena.segment().begin());
}

}  // namespace
}  // namespace vow
