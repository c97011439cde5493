// The broker's UDP relay: a worker never holds a datagram socket of the network. For an
// allowed UDP target the broker connects a UDP socket of its own to the one allowed
// peer and gives the worker one end of a SOCK_SEQPACKET socketpair; the relay copies
// each datagram from that end to the peer and each datagram from the peer back. Runs
// in the broker; every datagram from the worker is hostile and only ever reaches the
// peer the UDP socket is connected to (msg_name, sendmmsg addresses and passed fds on
// the worker's end are ignored by the kernel or discarded here: SOCK_SEQPACKET ignores
// a destination address, and the relay receives without a control buffer).
//
// One thread per relay, with epoll, serving every session; nothing in it blocks: all
// sends are MSG_DONTWAIT and a datagram that cannot be sent at once is dropped (counted;
// UDP may lose datagrams anyway). Buffers are bounded: one 64 KiB buffer in the thread
// and the kernel's socket buffers. A datagram from the worker larger than a UDP payload
// (65,507 bytes) is dropped. A session ends when the worker closes its end (or on an
// error of that end); Stop() or the destructor ends every session (the worker then
// reads EOF) and joins the thread.
//
// Thread-safety: Add() may be called from any thread; Stop() once, from one thread.
#ifndef VOW_BROKER_UDP_RELAY_H_
#define VOW_BROKER_UDP_RELAY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"

namespace vow {

class UdpRelay {
 public:
  static constexpr size_t kMaxSessions = 512;
  static constexpr size_t kMaxDatagram = 65507;

  // Starts the relay's thread.
  static absl::StatusOr<std::unique_ptr<UdpRelay>> Create();
  ~UdpRelay();
  UdpRelay(const UdpRelay&) = delete;
  UdpRelay& operator=(const UdpRelay&) = delete;

  // Takes `udp`, a UDP socket already connected to the one allowed peer, and returns the
  // worker's end of a new SOCK_SEQPACKET pair (O_CLOEXEC, blocking), owned by the caller.
  // EAGAIN when kMaxSessions sessions are open; ESHUTDOWN after Stop().
  absl::StatusOr<UniqueFd> Add(UniqueFd udp);

  // Ends every session and joins the thread. Idempotent.
  void Stop();

  size_t sessions() const;
  // Datagrams dropped in either direction (full buffers, oversized, peer errors).
  uint64_t dropped() const;

 private:
  struct Session {
    UniqueFd udp;
    UniqueFd seq;  // the broker's end, non-blocking
  };

  UdpRelay() = default;
  void Loop();
  // Copies what is readable on one side; false: the session is over.
  bool Pump(Session& s, bool from_worker, uint32_t events, char* buf);
  void Close(uint64_t id);

  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: Stop()
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::unordered_map<uint64_t, std::unique_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vow

#endif  // VOW_BROKER_UDP_RELAY_H_
