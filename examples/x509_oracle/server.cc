#include "examples/x509_oracle/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "examples/x509_oracle/protocol.h"

namespace vow::x509 {

namespace {

// Bytes read from one connection per turn of the loop, so one fast sender does not
// starve the others.
constexpr size_t kReadPerTurn = 4 << 20;
// One recv into the loop's buffer.
constexpr size_t kChunk = 1 << 20;

}  // namespace

// One client, owned by the event loop thread.
struct Server::Connection {
  enum class State { kReading, kVerifying, kWriting };
  UniqueFd fd;
  State state = State::kReading;
  absl::Time deadline;  // kReading, kWriting
  unsigned char header[4] = {};
  size_t header_got = 0;
  uint32_t length = 0;  // valid once header_got == 4
  std::string payload;
  std::string out;
  size_t out_sent = 0;
  bool close_after_write = false;
};

Server::Server(Oracle* oracle, ServerOptions options)
    : oracle_(oracle), options_(std::move(options)) {}

Server::~Server() { Stop(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(Oracle* oracle, ServerOptions options) {
  if (options.max_connections == 0) return absl::InvalidArgumentError("max_connections is 0");
  if (options.verifiers == 0) return absl::InvalidArgumentError("verifiers is 0");
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
                     return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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
  server->wake_fd_.reset(static_cast<int>(efd));
  Server* s = server.get();
  for (size_t i = 0; i < s->options_.verifiers; ++i) {
    s->verifiers_.emplace_back([s] { s->VerifierLoop(); });
  }
  s->loop_ = std::thread([s] { s->EventLoop(); });
  return server;
}

void Server::Wake() {
  uint64_t one = 1;
  (void)!write(wake_fd_.get(), &one, sizeof(one));
}

void Server::VerifierLoop() {
  for (;;) {
    std::pair<uint64_t, std::string> job;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !jobs_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    std::string json = oracle_->VerifyPayload(job.second);
    {
      absl::MutexLock lock(&mu_);
      ++requests_;
      verdicts_.emplace_back(job.first, std::move(json));
    }
    Wake();
  }
}

void Server::EventLoop() {
  std::map<uint64_t, Connection> conns;
  uint64_t next_id = 0;
  std::vector<struct pollfd> pfds;
  std::vector<uint64_t> ids;  // pfds[i + 2] belongs to conns[ids[i]]
  char buf[4096];  // refused clients' bytes, discarded
  std::vector<char> chunk(kChunk);

  auto start_writing = [&](Connection& c, std::string json, bool close_after) {
    c.state = Connection::State::kWriting;
    c.out = Frame(json);
    c.out_sent = 0;
    c.close_after_write = close_after;
    c.deadline = absl::Now() + options_.io_timeout;
  };
  auto start_reading = [&](Connection& c) {
    c.state = Connection::State::kReading;
    c.header_got = 0;
    c.length = 0;
    c.payload.clear();
    c.payload.shrink_to_fit();
    c.out.clear();
    c.out.shrink_to_fit();
    c.deadline = absl::Now() + options_.io_timeout;
  };
  // Reads what is there; false: close the connection (EOF, error).
  auto read_some = [&](uint64_t id, Connection& c) {
    size_t budget = kReadPerTurn;
    while (budget > 0) {
      ssize_t n;
      if (c.header_got < 4) {
        n = recv(c.fd.get(), reinterpret_cast<char*>(c.header) + c.header_got,
                 4 - c.header_got, MSG_DONTWAIT);
      } else {
        size_t want = std::min<size_t>({chunk.size(), c.length - c.payload.size(), budget});
        n = recv(c.fd.get(), chunk.data(), want, MSG_DONTWAIT);
        if (n > 0) {
          // Capacity grows with what arrived (at most doubling it), never to the length a
          // client merely announced.
          size_t need = c.payload.size() + static_cast<size_t>(n);
          if (need > c.payload.capacity()) {
            c.payload.reserve(std::min<size_t>(c.length, std::max(need, 2 * c.payload.size())));
          }
          c.payload.append(chunk.data(), static_cast<size_t>(n));
        }
      }
      if (n == 0) return false;  // EOF, before or inside a frame
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK;
      }
      budget -= std::min(budget, static_cast<size_t>(n));
      if (c.header_got < 4) {
        c.header_got += static_cast<size_t>(n);
        if (c.header_got < 4) continue;
        c.length = static_cast<uint32_t>(c.header[0]) | static_cast<uint32_t>(c.header[1]) << 8 |
                   static_cast<uint32_t>(c.header[2]) << 16 |
                   static_cast<uint32_t>(c.header[3]) << 24;
        if (c.length > kMaxJobBytes) {
          // Answer without reading the payload, then hang up: the stream is out of step.
          start_writing(c,
                        VerdictToJson(ErrorVerdict(absl::StrCat(
                            "request frame of ", c.length, " bytes exceeds the limit of ",
                            kMaxJobBytes))),
                        true);
          return true;
        }
      }
      if (c.payload.size() == c.length) {
        // The whole request is here: only now does it queue for a verifier.
        c.state = Connection::State::kVerifying;
        absl::MutexLock lock(&mu_);
        jobs_.emplace_back(id, std::move(c.payload));
        c.payload = std::string();
        return true;
      }
    }
    return true;
  };
  // Writes what the socket takes; false: close the connection.
  auto write_some = [&](Connection& c) {
    while (c.out_sent < c.out.size()) {
      ssize_t n = send(c.fd.get(), c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        c.out_sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    if (c.close_after_write) return false;
    start_reading(c);
    return true;
  };
  auto refuse = [&](int fd) {
    std::string frame = Frame(VerdictToJson(InternalErrorVerdict(absl::StrCat(
        "server busy: ", options_.max_connections,
        " connections open (the server's limit); try again later"))));
    (void)!send(fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    // Unread bytes at close would reset the client's connection before it reads the
    // verdict; take what is already there (bounded).
    for (int i = 0; i < 16 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; ++i) {
    }
    close(fd);
  };

  for (;;) {
    std::vector<std::pair<uint64_t, std::string>> ready;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      ready.swap(verdicts_);
    }
    for (auto& [id, json] : ready) {
      auto it = conns.find(id);
      if (it == conns.end()) continue;
      start_writing(it->second, std::move(json), false);
      if (!write_some(it->second)) conns.erase(it);
    }

    // Deadlines: drop clients that missed theirs; the next one bounds the wait.
    absl::Time now = absl::Now();
    absl::Time next_deadline = absl::InfiniteFuture();
    uint64_t expired = 0;
    for (auto it = conns.begin(); it != conns.end();) {
      Connection& c = it->second;
      if (c.state != Connection::State::kVerifying && c.deadline <= now) {
        it = conns.erase(it);
        ++expired;
        continue;
      }
      if (c.state != Connection::State::kVerifying) {
        next_deadline = std::min(next_deadline, c.deadline);
      }
      ++it;
    }
    if (expired > 0) {
      absl::MutexLock lock(&mu_);
      timed_out_ += expired;
    }

    pfds.clear();
    ids.clear();
    pfds.push_back({listen_fd_.get(), POLLIN, 0});
    pfds.push_back({wake_fd_.get(), POLLIN, 0});
    for (auto& [id, c] : conns) {
      if (c.state == Connection::State::kVerifying) continue;
      pfds.push_back({c.fd.get(), static_cast<short>(c.state == Connection::State::kReading
                                                         ? POLLIN
                                                         : POLLOUT),
                      0});
      ids.push_back(id);
    }
    int timeout_ms = -1;
    if (next_deadline != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(next_deadline - now, absl::Milliseconds(1))),
          0, 60 * 1000));
    }
    int rc = poll(pfds.data(), pfds.size(), timeout_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfds[1].revents != 0) {
      uint64_t count;
      (void)!read(wake_fd_.get(), &count, sizeof(count));
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      if (pfds[i + 2].revents == 0) continue;
      auto it = conns.find(ids[i]);
      if (it == conns.end()) continue;
      Connection& c = it->second;
      bool keep = c.state == Connection::State::kReading ? read_some(it->first, c)
                                                         : write_some(c);
      if (!keep) conns.erase(it);
    }
    if (pfds[0].revents != 0) {
      for (;;) {
        int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          // EMFILE/ENFILE/ENOMEM: the client stays in the backlog; back off briefly
          // instead of spinning on a readable listener.
          if (errno != EAGAIN && errno != EWOULDBLOCK) absl::SleepFor(absl::Milliseconds(10));
          break;
        }
        if (conns.size() >= options_.max_connections) {
          {
            // Counted before the refusal is sent: a client that has read it sees the count.
            absl::MutexLock lock(&mu_);
            ++refused_;
          }
          refuse(fd);
          continue;
        }
        Connection& c = conns[next_id++];
        c.fd.reset(fd);
        start_reading(c);
        absl::MutexLock lock(&mu_);
        ++connections_;
      }
    }
  }
  // Stopping: every connection is closed here (their fds are owned by `conns`).
}

void Server::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  if (wake_fd_) Wake();
  if (loop_.joinable()) loop_.join();
  for (std::thread& t : verifiers_) t.join();
  verifiers_.clear();
  {
    absl::MutexLock lock(&mu_);
    jobs_.clear();
    verdicts_.clear();
  }
  if (listen_fd_) {
    listen_fd_.reset();
    if (bound_) unlink(options_.socket_path.c_str());
  }
  wake_fd_.reset();
}

uint64_t Server::connections_served() const {
  absl::MutexLock lock(&mu_);
  return connections_;
}

uint64_t Server::connections_refused() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

uint64_t Server::connections_timed_out() const {
  absl::MutexLock lock(&mu_);
  return timed_out_;
}

uint64_t Server::requests_served() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

}  // namespace vow::x509
