// The transport: one SOCK_SEQPACKET socket, one message per datagram, fds as SCM_RIGHTS.
// Both sides. Send() and Receive() are async-signal-safe and allocate nothing (the
// worker calls them from its SIGSYS handler); they return -errno instead of a Status.
//
// Receive() is written for a hostile peer: a datagram larger than the buffer (MSG_TRUNC),
// cut ancillary data (MSG_CTRUNC), a control message that is not SCM_RIGHTS, or more fds
// than the caller allows all make it fail, and every fd that arrived is closed first, so
// nothing leaks into the receiver.
#ifndef VOW_IPC_CHANNEL_H_
#define VOW_IPC_CHANNEL_H_

#include <utility>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "capnp/message.h"
#include "ipc/message.h"

namespace vow {

// The most fds vow ever attaches to one message.
inline constexpr int kMaxFdsPerMessage = 1;

class Channel {
 public:
  Channel() = default;
  explicit Channel(UniqueFd fd) : fd_(std::move(fd)) {}

  // A connected SOCK_SEQPACKET pair, both ends O_CLOEXEC.
  static absl::StatusOr<std::pair<Channel, Channel>> CreatePair();

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  // Gives up the socket; the caller owns it.
  [[nodiscard]] int release() { return fd_.release(); }

  // Sends `message` as one datagram with `fd` attached when fd >= 0 (the caller keeps its
  // copy). Returns 0, -EMSGSIZE if the encoding exceeds kMaxMessageBytes or has more
  // than kMaxSegments segments, or -errno of sendmsg. Blocks unless the socket is
  // non-blocking; retries EINTR. Uses MSG_NOSIGNAL.
  int Send(capnp::MessageBuilder& message, int fd = -1) const;

  // Same, for bytes already framed (tests and fuzzers use it to send hostile datagrams).
  int SendBytes(const void* data, size_t len, const int* fds = nullptr, int nfds = 0) const;

  // Receives one datagram into `buffer` (8-byte aligned). On success returns the byte
  // count (> 0) and stores up to `max_fds` received fds (O_CLOEXEC) in `fds`, their
  // number in `*nfds`; the caller owns them. Returns 0 when the peer has closed, -EAGAIN
  // on a non-blocking socket with nothing queued, -EMSGSIZE for a datagram larger than
  // the buffer, -EPROTO for bad ancillary data (cut, foreign type, too many fds), or
  // -errno of recvmsg. Retries EINTR.
  int Receive(void* buffer, size_t buffer_bytes, int* fds, int max_fds, int* nfds) const;

 private:
  UniqueFd fd_;
};

}  // namespace vow

#endif  // VOW_IPC_CHANNEL_H_
