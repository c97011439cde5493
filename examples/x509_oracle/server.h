// `x509_oracle serve`: a unix SOCK_STREAM server in front of an Oracle. Runs in the
// BROKER (trusted) process; every byte a client sends is hostile and is never parsed
// here beyond the frame length: the job itself is decoded by a locked worker.
//
// Protocol (protocol.h): a client sends a job frame and reads one verdict frame; it may
// send further jobs on the same connection, one at a time. A frame that announces more
// than kMaxJobBytes gets an error verdict and the connection is closed without reading the
// payload. A client that stays silent longer than `io_timeout` (between or inside frames)
// is disconnected.
//
// Threads: one acceptor thread; one thread per connection, at most `max_connections` at
// once (further clients wait in the listen backlog until a connection ends).
#ifndef VOW_EXAMPLES_X509_ORACLE_SERVER_H_
#define VOW_EXAMPLES_X509_ORACLE_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
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
  size_t max_connections = 64;
  absl::Duration io_timeout = absl::Seconds(30);
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

  // Stops accepting, disconnects every client, waits for the connection threads, closes
  // and unlinks the socket. Idempotent.
  void Stop();

  uint64_t connections_served() const;
  uint64_t requests_served() const;

 private:
  Server(Oracle* oracle, ServerOptions options);
  void AcceptLoop();
  void Serve(int fd);
  // Joins the threads in finished_.
  void JoinFinished();

  Oracle* oracle_;
  ServerOptions options_;
  UniqueFd listen_fd_;
  bool bound_ = false;  // the socket file is ours to unlink
  UniqueFd stop_fd_;  // eventfd: readable once Stop() was called
  std::thread acceptor_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::set<int> active_ ABSL_GUARDED_BY(mu_);  // connection fds (owned by their threads)
  // Connection threads by number; a thread that is done puts its number in finished_
  // and the acceptor (or Stop) joins it.
  std::map<uint64_t, std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> finished_ ABSL_GUARDED_BY(mu_);
  uint64_t connections_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_SERVER_H_
