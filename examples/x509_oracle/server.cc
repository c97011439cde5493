#include "examples/x509_oracle/server.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "examples/x509_oracle/protocol.h"

namespace vow::x509 {

Server::Server(Oracle* oracle, ServerOptions options)
    : oracle_(oracle), options_(std::move(options)) {}

Server::~Server() { Stop(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(Oracle* oracle, ServerOptions options) {
  if (options.max_connections == 0) return absl::InvalidArgumentError("max_connections is 0");
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (options.socket_path.empty() || options.socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path must be 1..", sizeof(addr.sun_path) - 1, " bytes"));
  }
  memcpy(addr.sun_path, options.socket_path.data(), options.socket_path.size());
  std::unique_ptr<Server> server(new Server(oracle, std::move(options)));
  const std::string& path = server->options_.socket_path;
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(absl::StrCat(path, " exists and is not a socket"));
    }
    // A socket nobody listens on is a leftover of an earlier run; a live one is not ours.
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 &&
                connect(probe, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) == 0;
    if (probe >= 0) close(probe);
    if (live) return absl::AlreadyExistsError(absl::StrCat(path, " is in use by a server"));
    unlink(path.c_str());
  }
  ASSIGN_OR_RETURN(long fd, Syscall("socket", [] {
                     return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                   }));
  server->listen_fd_.reset(static_cast<int>(fd));
  int lfd = server->listen_fd_.get();
  RETURN_IF_ERROR(Syscall(absl::StrCat("bind ", path), [&] {
                    return bind(lfd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
                  }).status());
  server->bound_ = true;
  RETURN_IF_ERROR(Syscall("listen", [&] { return listen(lfd, 128); }).status());
  ASSIGN_OR_RETURN(long efd, Syscall("eventfd", [] {
                     return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                   }));
  server->stop_fd_.reset(static_cast<int>(efd));
  Server* s = server.get();
  server->acceptor_ = std::thread([s] { s->AcceptLoop(); });
  return server;
}

void Server::JoinFinished() {
  std::vector<std::thread> done;
  {
    absl::MutexLock lock(&mu_);
    for (uint64_t n : finished_) {
      auto it = threads_.find(n);
      if (it == threads_.end()) continue;
      done.push_back(std::move(it->second));
      threads_.erase(it);
    }
    finished_.clear();
  }
  for (std::thread& t : done) t.join();
}

void Server::AcceptLoop() {
  uint64_t next = 0;
  for (;;) {
    JoinFinished();
    {
      absl::MutexLock lock(&mu_);
      auto slot = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !finished_.empty() || threads_.size() < options_.max_connections;
      };
      mu_.Await(absl::Condition(&slot));
      if (stopping_) return;
      if (threads_.size() >= options_.max_connections) continue;  // join, then look again
    }
    struct pollfd p[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    // Wake up now and then to join finished threads even when no client comes.
    int rc = poll(p, 2, 1000);
    if (rc < 0 && errno != EINTR) return;
    if (rc <= 0) continue;
    if (p[1].revents != 0) return;
    int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // EMFILE/ENFILE: back off instead of spinning; others (ECONNABORTED, EINTR): retry.
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      close(fd);
      return;
    }
    active_.insert(fd);
    ++connections_;
    uint64_t n = next++;
    threads_[n] = std::thread([this, fd, n] {
      Serve(fd);
      absl::MutexLock lock(&mu_);
      active_.erase(fd);
      close(fd);
      finished_.push_back(n);
    });
  }
}

void Server::Serve(int fd) {
  std::string payload;
  for (;;) {
    uint32_t announced = 0;
    absl::Status s = RecvFrame(fd, kMaxJobBytes, absl::Now() + options_.io_timeout, &payload,
                               &announced);
    if (absl::IsResourceExhausted(s)) {
      // Answer without reading the payload, then hang up: the stream is out of step.
      std::string json = VerdictToJson(ErrorVerdict(absl::StrCat(
          "request frame of ", announced, " bytes exceeds the limit of ", kMaxJobBytes)));
      (void)SendAll(fd, Frame(json), absl::Now() + options_.io_timeout);
      return;
    }
    if (!s.ok()) return;  // EOF, a cut frame, a silent client, or stopping
    std::string json = oracle_->VerifyPayload(payload);
    {
      absl::MutexLock lock(&mu_);
      ++requests_;
    }
    if (!SendAll(fd, Frame(json), absl::Now() + options_.io_timeout).ok()) return;
  }
}

void Server::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    // Wakes every connection thread waiting for its client; one busy with a request
    // finishes it (bounded by the oracle's timeout) and then fails to answer.
    for (int fd : active_) shutdown(fd, SHUT_RDWR);
  }
  if (stop_fd_) {
    uint64_t one = 1;
    (void)!write(stop_fd_.get(), &one, sizeof(one));
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::map<uint64_t, std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    threads.swap(threads_);
    finished_.clear();
  }
  for (auto& [n, t] : threads) t.join();
  if (listen_fd_) {
    listen_fd_.reset();
    if (bound_) unlink(options_.socket_path.c_str());
  }
  stop_fd_.reset();
}

uint64_t Server::connections_served() const {
  absl::MutexLock lock(&mu_);
  return connections_;
}

uint64_t Server::requests_served() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

}  // namespace vow::x509
