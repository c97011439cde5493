// `x509_oracle serve`: a unix SOCK_STREAM server in front of an Oracle. Runs in the
// BROKER (trusted) process; every byte a client sends is hostile and is never parsed
// here beyond the frame length: the job itself is decoded by a locked worker.
//
// Protocol (protocol.h): a client sends a job frame and reads one verdict frame; it may
// send further jobs on the same connection, one at a time. A frame that announces more
// than kMaxJobBytes gets an error verdict and the connection is closed without reading the
// payload.
//
// Threads and slots:
//  - one event-loop thread owns every connection (non-blocking sockets, poll): it accepts,
//    reads frames and writes verdicts. A connection costs an fd and its buffers, never a
//    thread or a worker, so idle and slow clients (slowloris) delay nobody;
//  - `verifiers` threads take COMPLETE requests from a FIFO queue and call
//    Oracle::VerifyPayload; only a request that has fully arrived ever waits for or
//    holds a pool worker;
//  - deadlines per connection: a client has `io_timeout` to deliver each whole frame,
//    counted from its connect or from the end of its previous verdict (progress does not
//    extend it: a byte a second is dropped like silence), and `io_timeout` to take its
//    verdict. Dropped clients are closed without an answer;
//  - at most `max_connections` connections are open; a client beyond that is accepted,
//    sent an internal_error verdict "server busy: ..." and closed at once (no waiting in
//    the listen backlog).
// Memory: a frame's bytes are buffered as they arrive (nothing is reserved for an
// announced length), so a connection holds at most what its client actually sent, up to
// kMaxJobBytes.
#ifndef VOW_EXAMPLES_X509_ORACLE_SERVER_H_
#define VOW_EXAMPLES_X509_ORACLE_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "examples/x509_oracle/oracle.h"

namespace vow::x509 {

struct ServerOptions {
  // A leftover socket file there (nobody listening) is replaced; a live socket or any
  // other file is an error.
  std::string socket_path;
  // Open connections at most (idle, reading, waiting for or taking a verdict).
  size_t max_connections = 256;
  // Requests verified at once (threads calling Oracle::VerifyPayload); the pool size is
  // the natural value. Complete requests beyond it wait in arrival order.
  size_t verifiers = 2;
  // For a client to deliver each whole frame, and to take each verdict (see above).
  absl::Duration io_timeout = absl::Seconds(10);
};

class Server {
 public:
  // Binds and listens on options.socket_path and starts serving. `oracle` is not owned
  // and must outlive the server.
  static absl::StatusOr<std::unique_ptr<Server>> Start(Oracle* oracle, ServerOptions options);
  // Stop()s.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting, disconnects every client (requests being verified finish, bounded by
  // the oracle's timeout, and are not answered), joins the threads, closes and unlinks
  // the socket. Idempotent.
  void Stop();

  // Connections accepted and served (not counting refused ones).
  uint64_t connections_served() const;
  // Connections refused because max_connections were open.
  uint64_t connections_refused() const;
  // Clients dropped for missing their io_timeout deadline.
  uint64_t connections_timed_out() const;
  uint64_t requests_served() const;

 private:
  struct Connection;
  Server(Oracle* oracle, ServerOptions options);
  void EventLoop();
  void VerifierLoop();
  // Wakes the event loop.
  void Wake();

  Oracle* oracle_;
  ServerOptions options_;
  UniqueFd listen_fd_;
  bool bound_ = false;  // the socket file is ours to unlink
  UniqueFd wake_fd_;    // eventfd: a verdict is ready, or Stop() was called
  std::thread loop_;
  std::vector<std::thread> verifiers_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Complete requests (connection number, payload) and their verdicts (number, JSON).
  std::deque<std::pair<uint64_t, std::string>> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, std::string>> verdicts_ ABSL_GUARDED_BY(mu_);
  uint64_t connections_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t timed_out_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_SERVER_H_
