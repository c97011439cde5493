// The worker's stubs for what the broker does on its behalf. Runs in the locked worker.
//
// Names mirror the schema and the broker: `open` <-> HandleOpen <-> Client::Open.
// Each call is one synchronous request/response on the channel, using only sendmsg and
// recvmsg. The Raw* calls are async-signal-safe and allocate nothing (their buffers live
// in the Client); the Status-returning wrappers allocate only to build an error message.
// A Client is not thread-safe: give each thread its own channel, or serialize calls.
#ifndef VOW_WORKER_CLIENT_H_
#define VOW_WORKER_CLIENT_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "ipc/channel.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"

namespace vow {

// Learns, in this process, what a Client learns once per process (the broker's fd answer,
// client.cc), so that the workers it then forks inherit it. The broker calls it before it
// forks a worker or a fork server; nothing else needs to.
void PrepareClientForFork();

class Client {
 public:
  // Uses (does not own) the channel socket `channel_fd`.
  explicit Client(int channel_fd);
  // The same, on memory that is zero and that nothing has written (a forked worker's
  // static storage): its message arena is not zeroed again (MessageArena::OnZeroMemory).
  Client(int channel_fd, MessageArena::OnZeroMemory);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Opens `path` (absolute) with open(2) `flags` and `mode` through the broker.
  // Returns the fd (O_CLOEXEC; the caller owns it) or -errno. Async-signal-safe.
  int OpenRaw(const char* path, size_t path_len, int flags, mode_t mode);
  absl::StatusOr<UniqueFd> Open(absl::string_view path, int flags, mode_t mode = 0);

  // Connects through the broker. `address` is "a.b.c.d" or an IPv6 literal.
  // Returns a connected socket (the first read/write waits for the handshake) or -errno.
  int ConnectInetRaw(bool udp, const void* address, size_t address_len, uint16_t port);
  absl::StatusOr<UniqueFd> ConnectTcp(absl::string_view address, uint16_t port);
  absl::StatusOr<UniqueFd> ConnectUdp(absl::string_view address, uint16_t port);
  absl::StatusOr<UniqueFd> ConnectUnix(absl::string_view path);

  // The time under the policy's clock rule (real, fixed, offset; refused for none).
  int NowRaw(int64_t* seconds, uint32_t* nanos);
  absl::StatusOr<absl::Time> Now();

  // The reason the broker gave for the last refused request (empty if none). Points into
  // the Client; valid until the next call.
  absl::string_view last_reason() const { return absl::string_view(reason_, reason_len_); }

  int channel_fd() const { return channel_fd_; }

  // How many answers were taken as the broker's fd answer without a Cap'n Proto reader
  // (the fast path in Exchange). For tests and benchmarks.
  uint64_t fd_answers_without_reader() const { return fd_answers_without_reader_; }

 private:
  // Sends the request in arena_ and waits for the answer with the same id. Returns the
  // received fd (>= 0) for an fd answer, 0 for a time, or -errno.
  int Exchange(capnp::MessageBuilder& request, uint64_t id, int64_t* seconds,
               uint32_t* nanos);
  absl::Status ErrorStatus(int err, absl::string_view call) const;
  // Starts a request in `builder` (built on arena_, which the caller has Reset()).
  wire::Request::Builder NewRequest(capnp::MessageBuilder& builder, uint64_t* id);
  absl::StatusOr<UniqueFd> ConnectInet(bool udp, absl::string_view address, uint16_t port);
  // Whether the answer in receive_buffer_ (framing checked) is exactly Response{id, fd}
  // (learnt once per process from Cap'n Proto itself, client.cc): decoded by comparing
  // words, no reader (~0.1 us less on every brokered open, README "Open, round 6");
  // anything else (an error, a time, a stale id, another layout) takes the reader.
  bool IsFdAnswerTo(uint64_t id) const;

  int channel_fd_;
  Channel channel_;  // a view: released in the destructor, never closed by the Client
  uint64_t next_id_ = 1;
  char reason_[256];
  size_t reason_len_ = 0;
  MessageArena arena_;
  alignas(8) capnp::word receive_buffer_[kMaxMessageWords];
  uint64_t fd_answers_without_reader_ = 0;

 public:
  ~Client();
};

}  // namespace vow

#endif  // VOW_WORKER_CLIENT_H_
