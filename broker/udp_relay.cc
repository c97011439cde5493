#include "broker/udp_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/syscall.h"

namespace vow {
namespace {

constexpr uint64_t kWakeTag = ~uint64_t{0};
// Per wake-up and side, at most this many datagrams (fairness between sessions).
constexpr int kBurst = 64;

uint64_t Tag(uint64_t id, bool from_worker) { return id * 2 + (from_worker ? 1 : 0); }

}  // namespace

absl::StatusOr<std::unique_ptr<UdpRelay>> UdpRelay::Create() {
  std::unique_ptr<UdpRelay> relay(new UdpRelay());
  ASSIGN_OR_RETURN(long ep, Syscall("epoll_create1", [] { return epoll_create1(EPOLL_CLOEXEC); }));
  relay->epoll_.reset(static_cast<int>(ep));
  ASSIGN_OR_RETURN(long ev, Syscall("eventfd", [] {
                     return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                   }));
  relay->wake_.reset(static_cast<int>(ev));
  epoll_event e = {};
  e.events = EPOLLIN;
  e.data.u64 = kWakeTag;
  RETURN_IF_ERROR(Syscall("epoll_ctl", [&] {
                    return epoll_ctl(relay->epoll_.get(), EPOLL_CTL_ADD, relay->wake_.get(), &e);
                  }).status());
  UdpRelay* raw = relay.get();
  relay->thread_ = std::thread([raw] { raw->Loop(); });
  return relay;
}

UdpRelay::~UdpRelay() { Stop(); }

void UdpRelay::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  sessions_.clear();  // closes every fd: the workers read EOF
}

absl::StatusOr<UniqueFd> UdpRelay::Add(UniqueFd udp) {
  int sv[2];
  RETURN_IF_ERROR(Syscall("socketpair(SOCK_SEQPACKET)", [&] {
                    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
                  }).status());
  UniqueFd worker_end(sv[0]);
  auto session = std::make_unique<Session>();
  session->seq.reset(sv[1]);
  session->udp = std::move(udp);
  for (int fd : {session->seq.get(), session->udp.get()}) {
    ASSIGN_OR_RETURN(long fl, Syscall("fcntl(F_GETFL)", [&] { return fcntl(fd, F_GETFL); }));
    RETURN_IF_ERROR(Syscall("fcntl(F_SETFL)", [&] {
                      return fcntl(fd, F_SETFL, static_cast<int>(fl) | O_NONBLOCK);
                    }).status());
  }
  Session* s = session.get();
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return ErrnoStatus(ESHUTDOWN, "the UDP relay has stopped");
    if (sessions_.size() >= kMaxSessions) {
      return ErrnoStatus(EAGAIN, absl::StrCat("the UDP relay has ", kMaxSessions,
                                              " sessions open"));
    }
    id = next_id_++;
    sessions_.emplace(id, std::move(session));
  }
  // Registered after the session is in the map: the loop finds it for any event.
  epoll_event e = {};
  e.events = EPOLLIN | EPOLLRDHUP;
  e.data.u64 = Tag(id, true);
  int rc = epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s->seq.get(), &e);
  if (rc == 0) {
    e.events = EPOLLIN;
    e.data.u64 = Tag(id, false);
    rc = epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s->udp.get(), &e);
  }
  if (rc != 0) {
    const int err = errno;
    // The loop may not touch it: removal happens only there or here before it was
    // registered; deregister what was registered, then forget it.
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, s->seq.get(), nullptr);
    absl::MutexLock lock(&mu_);
    sessions_.erase(id);
    return ErrnoStatus(err, "epoll_ctl(UDP relay)");
  }
  return worker_end;
}

size_t UdpRelay::sessions() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

uint64_t UdpRelay::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void UdpRelay::Close(uint64_t id) {
  std::unique_ptr<Session> gone;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    gone = std::move(it->second);
    sessions_.erase(it);
  }
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, gone->seq.get(), nullptr);
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, gone->udp.get(), nullptr);
  // `gone` closes both fds.
}

bool UdpRelay::Pump(Session& s, bool from_worker, uint32_t events, char* buf) {
  const int in = from_worker ? s.seq.get() : s.udp.get();
  const int out = from_worker ? s.udp.get() : s.seq.get();
  uint64_t drops = 0;
  bool alive = true;
  for (int i = 0; i < kBurst; ++i) {
    // No control buffer: fds a worker passes are discarded by the kernel.
    ssize_t n = recv(in, buf, kMaxDatagram + 1, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (from_worker) alive = false;  // the worker's end failed
      // From the network: a pending ICMP error (ECONNREFUSED, ...) is consumed.
      if (!from_worker) continue;
      break;
    }
    if (n == 0 && from_worker) {
      // SOCK_SEQPACKET: 0 is an empty datagram, or the end once the worker closed.
      pollfd p = {in, POLLRDHUP, 0};
      if ((events & (EPOLLRDHUP | EPOLLHUP)) != 0 ||
          (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP)) != 0)) {
        alive = false;
        break;
      }
    }
    if (static_cast<size_t>(n) > kMaxDatagram) {
      ++drops;  // truncated: larger than any UDP payload
      continue;
    }
    ssize_t sent = send(out, buf, static_cast<size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
      ++drops;
      if (!from_worker && (errno == EPIPE || errno == ECONNRESET)) {
        alive = false;
        break;
      }
    }
  }
  if (from_worker && (events & (EPOLLHUP | EPOLLERR)) != 0) {
    // Whatever was queued has been read above (up to a burst); the worker is gone.
    pollfd p = {in, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0 || (p.revents & POLLIN) == 0) alive = false;
  }
  if (drops != 0) {
    absl::MutexLock lock(&mu_);
    dropped_ += drops;
  }
  return alive;
}

void UdpRelay::Loop() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_ptr<char[]> buf(new char[kMaxDatagram + 1]);
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // cannot happen with a valid epoll fd; Stop() still joins
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        absl::MutexLock lock(&mu_);
        if (stopped_) return;
        continue;
      }
      const uint64_t id = tag / 2;
      const bool from_worker = (tag & 1) != 0;
      Session* s;
      {
        absl::MutexLock lock(&mu_);
        auto it = sessions_.find(id);
        if (it == sessions_.end()) continue;  // closed earlier in this batch
        s = it->second.get();  // only this thread removes sessions: stays valid
      }
      if (!Pump(*s, from_worker, events[i].events, buf.get())) Close(id);
    }
  }
}

}  // namespace vow
