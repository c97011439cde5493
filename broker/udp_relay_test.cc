#include "broker/udp_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/time/clock.h"
#include "base/syscall.h"
#include "gtest/gtest.h"

namespace vow {
namespace {

// A UDP socket bound on 127.0.0.1 (any port).
int BoundUdp(sockaddr_in* addr) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  *addr = {};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, reinterpret_cast<sockaddr*>(addr), sizeof(*addr)) != 0) return -1;
  socklen_t len = sizeof(*addr);
  getsockname(s, reinterpret_cast<sockaddr*>(addr), &len);
  return s;
}

UniqueFd ConnectedUdp(const sockaddr_in& peer) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  connect(s, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer));
  return UniqueFd(s);
}

bool Readable(int fd, int ms) {
  pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, ms) == 1;
}

TEST(UdpRelayTest, RelaysBothWaysToTheOnePeerOnly) {
  sockaddr_in peer_addr, other_addr;
  int peer = BoundUdp(&peer_addr);
  int other = BoundUdp(&other_addr);
  auto relay = UdpRelay::Create();
  ASSERT_TRUE(relay.ok()) << relay.status();
  auto end = (*relay)->Add(ConnectedUdp(peer_addr));
  ASSERT_TRUE(end.ok()) << end.status();
  // sendmmsg with a destination per message: each goes to the peer.
  char a[] = "one", b[] = "two";
  iovec iov[2] = {{a, 3}, {b, 3}};
  mmsghdr msgs[2] = {};
  for (int i = 0; i < 2; ++i) {
    msgs[i].msg_hdr.msg_name = &other_addr;
    msgs[i].msg_hdr.msg_namelen = sizeof(other_addr);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  EXPECT_EQ(sendmmsg(end->get(), msgs, 2, 0), 2);
  char buf[16];
  sockaddr_in from = {};
  socklen_t from_len = sizeof(from);
  ASSERT_TRUE(Readable(peer, 5000));
  EXPECT_EQ(recvfrom(peer, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len), 3);
  EXPECT_EQ(std::string(buf, 3), "one");
  ASSERT_TRUE(Readable(peer, 5000));
  EXPECT_EQ(recv(peer, buf, sizeof(buf), 0), 3);
  EXPECT_FALSE(Readable(other, 100)) << "a datagram reached another address";
  // Replies come back; a datagram from a stranger does not (the UDP socket is connected).
  sockaddr_in stranger_addr;
  int stranger = BoundUdp(&stranger_addr);
  ASSERT_EQ(sendto(stranger, "spam", 4, 0, reinterpret_cast<sockaddr*>(&from), from_len), 4);
  ASSERT_EQ(sendto(peer, "pong", 4, 0, reinterpret_cast<sockaddr*>(&from), from_len), 4);
  ASSERT_TRUE(Readable(end->get(), 5000));
  EXPECT_EQ(recv(end->get(), buf, sizeof(buf), 0), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  EXPECT_FALSE(Readable(end->get(), 100));
  // An empty datagram is a datagram, not the end.
  EXPECT_EQ(send(end->get(), "", 0, 0), 0);
  ASSERT_TRUE(Readable(peer, 5000));
  EXPECT_EQ(recv(peer, buf, sizeof(buf), 0), 0);
  EXPECT_EQ((*relay)->sessions(), 1u);
  close(peer);
  close(other);
  close(stranger);
}

TEST(UdpRelayTest, ClosingTheWorkersEndEndsTheSession) {
  sockaddr_in peer_addr;
  int peer = BoundUdp(&peer_addr);
  auto relay = UdpRelay::Create();
  ASSERT_TRUE(relay.ok());
  auto end = (*relay)->Add(ConnectedUdp(peer_addr));
  ASSERT_TRUE(end.ok());
  EXPECT_EQ((*relay)->sessions(), 1u);
  end->reset();
  for (int i = 0; i < 500 && (*relay)->sessions() != 0; ++i) usleep(10000);
  EXPECT_EQ((*relay)->sessions(), 0u);
  close(peer);
}

TEST(UdpRelayTest, StopEndsEverySessionAndJoins) {
  sockaddr_in peer_addr;
  int peer = BoundUdp(&peer_addr);
  auto relay = UdpRelay::Create();
  ASSERT_TRUE(relay.ok());
  auto end = (*relay)->Add(ConnectedUdp(peer_addr));
  ASSERT_TRUE(end.ok());
  (*relay)->Stop();
  char c;
  ASSERT_TRUE(Readable(end->get(), 5000));
  EXPECT_EQ(recv(end->get(), &c, 1, 0), 0) << "EOF after Stop";
  auto again = (*relay)->Add(ConnectedUdp(peer_addr));
  EXPECT_EQ(ErrnoOf(again.status()), ESHUTDOWN);
  close(peer);
}

// A flood toward a peer that never reads, and a worker that never reads replies: the
// relay drops (and counts) instead of blocking, and keeps serving another session.
TEST(UdpRelayTest, FloodsAreDroppedNeverBlock) {
  sockaddr_in peer_addr;
  int peer = BoundUdp(&peer_addr);
  auto relay = UdpRelay::Create();
  ASSERT_TRUE(relay.ok());
  auto flood = (*relay)->Add(ConnectedUdp(peer_addr));
  ASSERT_TRUE(flood.ok());
  std::string big(60000, 'x');
  for (int i = 0; i < 200; ++i) send(flood->get(), big.data(), big.size(), MSG_DONTWAIT);
  // Oversized for UDP: dropped.
  std::string huge(70000, 'y');
  int snd = 1 << 20;
  setsockopt(flood->get(), SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
  send(flood->get(), huge.data(), huge.size(), MSG_DONTWAIT);
  sockaddr_in quiet_addr;
  int quiet = BoundUdp(&quiet_addr);
  auto other = (*relay)->Add(ConnectedUdp(quiet_addr));
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(send(other->get(), "hi", 2, 0), 2);
  ASSERT_TRUE(Readable(quiet, 5000)) << "the relay stalled behind a flood";
  for (int i = 0; i < 500 && (*relay)->dropped() == 0; ++i) usleep(10000);
  EXPECT_GT((*relay)->dropped(), 0u);
  close(peer);
  close(quiet);
}

}  // namespace
}  // namespace vow
