#include "ipc/channel.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/syscall.h"

namespace vow {
namespace {

// Room for more fds than we accept, so that "too many" is seen and closed rather than
// silently cut off by the kernel (which would also close them, but hide the attempt).
constexpr int kFdSlots = 8;

int SendMsg(int sock, struct iovec* iov, int iovcnt, const int* fds, int nfds) {
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kFdSlots)];
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = iov;
  msg.msg_iovlen = iovcnt;
  if (nfds > 0) {
    if (nfds > kFdSlots) return -EINVAL;
    memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  for (;;) {
    ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n >= 0) return 0;
    if (errno != EINTR) return -errno;
  }
}

}  // namespace

absl::StatusOr<std::pair<Channel, Channel>> Channel::CreatePair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(errno, "socketpair(AF_UNIX, SOCK_SEQPACKET)");
  }
  return std::make_pair(Channel(UniqueFd(sv[0])), Channel(UniqueFd(sv[1])));
}

int Channel::Send(capnp::MessageBuilder& message, int fd) const {
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments;
  try {
    segments = message.getSegmentsForOutput();
  } catch (const kj::Exception&) {
    return -EMSGSIZE;
  }
  if (segments.size() == 0 || segments.size() > kMaxSegments) return -EMSGSIZE;
  uint32_t table[kMaxSegments + 2];
  memset(table, 0, sizeof(table));
  table[0] = static_cast<uint32_t>(segments.size() - 1);
  size_t total = 0;
  struct iovec iov[kMaxSegments + 1];
  size_t table_bytes = ((segments.size() + 2) / 2) * 8;
  iov[0].iov_base = table;
  iov[0].iov_len = table_bytes;
  total += table_bytes;
  for (size_t i = 0; i < segments.size(); ++i) {
    table[1 + i] = static_cast<uint32_t>(segments[i].size());
    iov[1 + i].iov_base = const_cast<capnp::word*>(segments[i].begin());
    iov[1 + i].iov_len = segments[i].size() * sizeof(capnp::word);
    total += iov[1 + i].iov_len;
  }
  if (total > kMaxMessageBytes) return -EMSGSIZE;
  return SendMsg(fd_.get(), iov, static_cast<int>(segments.size() + 1), &fd, fd >= 0 ? 1 : 0);
}

int Channel::SendBytes(const void* data, size_t len, const int* fds, int nfds) const {
  struct iovec iov;
  iov.iov_base = const_cast<void*>(data);
  iov.iov_len = len;
  return SendMsg(fd_.get(), &iov, 1, fds, nfds);
}

int Channel::Receive(void* buffer, size_t buffer_bytes, int* fds, int max_fds,
                     int* nfds) const {
  *nfds = 0;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kFdSlots)];
  struct iovec iov;
  iov.iov_base = buffer;
  iov.iov_len = buffer_bytes;
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  for (;;) {
    n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_TRUNC);
    if (n >= 0) break;
    if (errno != EINTR) return -errno;
  }
  // Collect every fd that arrived, whatever else is wrong with the datagram.
  int received[kFdSlots * 2];
  int count = 0;
  bool foreign_control = false;
  for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr;
       cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
      size_t len = cmsg->cmsg_len - CMSG_LEN(0);
      int k = static_cast<int>(len / sizeof(int));
      for (int i = 0; i < k; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
        if (count < static_cast<int>(sizeof(received) / sizeof(received[0]))) {
          received[count++] = fd;
        } else {
          ::close(fd);
        }
      }
    } else {
      foreign_control = true;
    }
  }
  int error = 0;
  if (msg.msg_flags & MSG_CTRUNC) error = -EPROTO;
  if (foreign_control || count > max_fds) error = -EPROTO;
  if (static_cast<size_t>(n) > buffer_bytes || (msg.msg_flags & MSG_TRUNC)) error = -EMSGSIZE;
  if (error != 0) {
    for (int i = 0; i < count; ++i) ::close(received[i]);
    return error;
  }
  if (n == 0 && count == 0) return 0;
  if (n == 0) {
    // An empty datagram carrying fds is not a message.
    for (int i = 0; i < count; ++i) ::close(received[i]);
    return -EBADMSG;
  }
  for (int i = 0; i < count; ++i) fds[i] = received[i];
  *nfds = count;
  return static_cast<int>(n);
}

}  // namespace vow
