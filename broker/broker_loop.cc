// The privileged serving loop: one thread multiplexes every worker with epoll (its
// channel, its seccomp listener, its pidfd), reads datagrams and notifications, hands
// brokered calls to the task pool and enforces the deadlines. Runs in the privileged
// process; every byte it reads is hostile. See broker_internal.h for the map of the files.
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "base/unique_fd.h"
#include "broker/broker_internal.h"
#include "broker/clock_policy.h"
#include "broker/fs_policy.h"
#include "broker/net_policy.h"
#include "broker/path_call.h"
#include "broker/path_handler.h"
#include "broker/request.h"
#include "broker/task_pool.h"
#include "capnp/serialize.h"
#include "ipc/channel.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"
#include "policies/promise_compiler.h"

namespace vow {
namespace {

constexpr size_t kMaxViolationsKept = 1000;
// Messages handled per worker per wake-up, so one flooding worker cannot starve others.
// One: epoll is level-triggered, so a worker with more queued comes round again after
// every other ready worker had its turn; and a synchronous worker (the normal case)
// never has a second message queued, so trying to read one would cost a wasted recvmsg
// per request.
constexpr int kMessagesPerWakeup = 1;
// A brokered call (open, stat, connect...) that has not finished after this long ends
// its worker: the pool thread may be stuck in the kernel (a hung FUSE mount), but no
// other worker waits for it.
constexpr absl::Duration kBrokeredCallDeadline = absl::Seconds(10);
// How long a brokered TCP connect may take to be established.
constexpr absl::Duration kConnectDeadline = absl::Seconds(5);
// Violation reports (penalty trap) a worker may send per second before it is ended.
constexpr int kMaxViolationReportsPerSecond = 100;

}  // namespace

std::string AllowedByText(const std::string& promise) {
  return promise.empty() ? "no promise allows this" : absl::StrCat("promise ", promise,
                                                                   " would allow it");
}

std::string Violation::ToString() const {
  return absl::StrCat(syscall, "(", args[0], ", ", args[1], ", ", args[2], ", ", args[3], ", ",
                      args[4], ", ", args[5], ") refused; ", AllowedByText(allowed_by),
                      from_kernel ? "" : " (reported by the worker)");
}

void Broker::Impl::RecordViolation(Worker& w, Violation v) {
  Audit(w, absl::StrCat("syscall ", v.syscall), false,
        absl::StrCat("refused by seccomp; ", AllowedByText(v.allowed_by),
                     v.from_kernel ? "" : " (reported by the worker)"));
  if (w.result.violations.size() < kMaxViolationsKept) w.result.violations.push_back(std::move(v));
}

void Broker::Impl::HandleNotification(Worker& w) {
  // The kernel tells us which syscall a worker thread is blocked in. Sizes come from the
  // kernel (SECCOMP_GET_NOTIF_SIZES); the buffers are at least as large as our headers.
  alignas(8) char req_buf[512];
  alignas(8) char resp_buf[512];
  if (notif_sizes_.seccomp_notif > sizeof(req_buf) ||
      notif_sizes_.seccomp_notif_resp > sizeof(resp_buf)) {
    End(w, WorkerResult::Kind::kProtocolError, "seccomp notification too large");
    return;
  }
  memset(req_buf, 0, sizeof(req_buf));
  auto* req = reinterpret_cast<struct seccomp_notif*>(req_buf);
  const int listener = w.shared->listener.get();
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
    if (errno == EINTR || errno == ENOENT || errno == EAGAIN) return;  // interrupted/died
    // The listener is dead (worker gone): stop watching it.
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listener, nullptr);
    w.listener_registered = false;
    return;
  }
  {
    const Arch call_arch = req->data.arch == AUDIT_ARCH_AARCH64 ? Arch::kAarch64 : Arch::kX86_64;
    std::optional<PathCall> call =
        req->data.arch == AuditArch(NativeArch())
            ? DecodePathCall(call_arch, req->data.nr,
                             reinterpret_cast<const uint64_t*>(req->data.args))
            : std::nullopt;
    if (call.has_value()) {
      // Off the loop: the open may block (a FIFO, a hung mount). One call per worker at a
      // time: its listener is not watched until this one is answered.
      w.path_call_in_flight = true;
      w.path_call_started = absl::Now();
      ArmListener(*w.shared, w.id, false);
      ++calls_in_flight_;
      pool_->Submit([this, shared = w.shared, id = w.id, r = *req, c = *std::move(call)]() mutable {
        ServePathCall(std::move(shared), id, r, std::move(c));
      });
      return;
    }
  }
  Violation v;
  v.nr = req->data.nr;
  v.audit_arch = req->data.arch;
  Arch arch = req->data.arch == AUDIT_ARCH_AARCH64 ? Arch::kAarch64 : Arch::kX86_64;
  v.syscall = SyscallName(arch, req->data.nr);
  for (int i = 0; i < 6; ++i) v.args[i] = req->data.args[i];
  SyscallEvent event;
  event.nr = req->data.nr;
  event.audit_arch = req->data.arch;
  event.pid = static_cast<uint32_t>(w.pid);
  for (int i = 0; i < 6; ++i) event.args[i] = req->data.args[i];
  std::optional<Promise> allowing = PromiseAllowing(event);
  v.allowed_by = allowing.has_value() ? std::string(PromiseName(*allowing)) : "";
  v.from_kernel = true;

  memset(resp_buf, 0, sizeof(resp_buf));
  auto* resp = reinterpret_cast<struct seccomp_notif_resp*>(resp_buf);
  resp->id = req->id;
  Penalty penalty = w.policy->policy.penalty;
  // Only an unmodified exec'd program gets here under trap (its filter notifies): there
  // trap acts as errno.
  if (penalty == Penalty::kTrap) penalty = Penalty::kErrno;
  RecordViolation(w, v);
  if (penalty == Penalty::kLog && !v.allowed_by.empty()) {
    // Learning mode lets a call run only if some promise could allow it: what no promise
    // ever allows (ptrace, bpf, mount, CLONE_NEW*, TIOCSTI, ...) is refused even here.
    resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  } else {
    resp->error = -EPERM;
  }
  if (penalty == Penalty::kKill) {
    // Kill first, so the refused thread never runs again.
    w.result.violation = v;
    End(w, WorkerResult::Kind::kViolation, v.ToString());
    return;
  }
  // ENOENT: the thread was killed meanwhile; nothing to answer.
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
}

void Broker::Impl::ArmChannel(Worker& w, bool on) {
  if (!w.channel.valid()) return;
  struct epoll_event e = {};
  e.events = on ? EPOLLIN : 0;
  e.data.u64 = Key(w.id, kChannel);
  epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, w.channel.fd(), &e);
}

void Broker::Impl::ServeChannelCall(WorkerId id, pid_t pid, const PreparedPolicy& policy,
                                    int channel_fd, const DecodedRequest& request) {
  AuditEntry entry;
  entry.worker_id = id;
  entry.pid = pid;
  absl::StatusOr<UniqueFd> fd = absl::UnavailableError("");
  if (request.kind == DecodedRequest::Kind::kOpen) {
    entry.request = absl::StrCat("open path=\"", AuditLog::EscapeBytes(request.path),
                                 "\" flags=", AuditLog::DescribeOpenFlags(request.flags));
    OpenContext ctx;
    ctx.pid = pid;
    ctx.tid = pid;
    fd = policy.fs.has_value()
             ? policy.fs->Open(request.path, request.flags, request.mode, ctx)
             : absl::StatusOr<UniqueFd>(ErrnoStatus(EACCES, "the policy has no filesystem rules"));
  } else {
    const ConnectTarget& target = request.target;
    entry.request =
        target.transport == ConnectRule::Transport::kUnix
            ? absl::StrCat("connect unix path=\"", AuditLog::EscapeBytes(target.unix_path), "\"")
            : absl::StrCat("connect ",
                           target.transport == ConnectRule::Transport::kTcp ? "tcp" : "udp",
                           " address=", AuditLog::EscapeBytes(target.address, 16),
                           " port=", target.port);
    fd = policy.net.has_value()
             ? policy.net->Connect(target, absl::Now() + kConnectDeadline)
             : absl::StatusOr<UniqueFd>(ErrnoStatus(EACCES, "the policy has no connect rules"));
  }
  entry.allowed = fd.ok();
  entry.reason = fd.ok() ? "allowed by rule" : std::string(fd.status().message());
  audit_->Record(std::move(entry));
  capnp::MallocMessageBuilder builder(256);
  auto response = builder.initRoot<wire::Response>();
  response.setId(request.id);
  Channel channel{UniqueFd(channel_fd)};
  int rc;
  if (fd.ok()) {
    response.setFd();
    rc = channel.Send(builder, fd->get());
  } else {
    auto error = response.initError();
    error.setErrno(ErrnoOrDefault(fd.status(), EACCES));
    error.setReason(std::string(fd.status().message().substr(0, 1024)));
    rc = channel.Send(builder);
  }
  (void)channel.release();  // the task's dup is closed by its owner
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(id);
    if (it != workers_.end() && !it->second->reaped) {
      Worker& w = *it->second;
      w.channel_call_in_flight = false;
      if (rc != 0 && rc != -EPIPE && rc != -ECONNRESET && !w.ending) {
        End(w, WorkerResult::Kind::kProtocolError,
            absl::StrCat("could not send a response: ", strerror(-rc)));
      } else {
        ArmChannel(w, true);
      }
    }
  }
  --calls_in_flight_;
}

void Broker::Impl::ArmListener(WorkerShared& shared, WorkerId id, bool on) {
  struct epoll_event e = {};
  e.events = on ? EPOLLIN : 0;
  e.data.u64 = Key(id, kListener);
  // ENOENT: the worker was unregistered meanwhile (it ended).
  epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, shared.listener.get(), &e);
}

void Broker::Impl::ServePathCall(std::shared_ptr<WorkerShared> shared, WorkerId id,
                                 struct seccomp_notif req, PathCall call) {
  paths_->Handle(*shared, req, call);
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(id);
    if (it != workers_.end() && !it->second->reaped) {
      Worker& w = *it->second;
      w.path_call_in_flight = false;
      if (w.listener_registered) ArmListener(*shared, id, true);
    }
  }
  --calls_in_flight_;
}

bool Broker::Impl::SendError(Worker& w, uint64_t id, int err, absl::string_view reason) {
  capnp::MallocMessageBuilder builder(256);
  auto response = builder.initRoot<wire::Response>();
  response.setId(id);
  auto error = response.initError();
  error.setErrno(err);
  error.setReason(std::string(reason.substr(0, 1024)));
  int rc = w.channel.Send(builder);
  if (rc != 0) return SendFailed(w, rc, "a response");
  return true;
}

bool Broker::Impl::SendFd(Worker& w, uint64_t id, int fd) {
  capnp::MallocMessageBuilder builder(64);
  auto response = builder.initRoot<wire::Response>();
  response.setId(id);
  response.setFd();
  int rc = w.channel.Send(builder, fd);
  if (rc != 0) return SendFailed(w, rc, "a response");
  return true;
}

bool Broker::Impl::SendFailed(Worker& w, int rc, absl::string_view what) {
  if (rc == -EPIPE || rc == -ECONNRESET) {
    // The worker is gone (it exited or crashed right after asking): not its fault, and its
    // pidfd will report how it ended. Keep reading what it sent before it went (a trap
    // report, say) until the channel reports EOF.
    return true;
  }
  // EAGAIN: its socket buffer is full because it does not read its answers.
  End(w, WorkerResult::Kind::kProtocolError,
      absl::StrCat("could not send ", what, ": ", strerror(-rc)));
  return false;
}

bool Broker::Impl::HandleMessage(Worker& w, const capnp::word* data, size_t bytes, int* fds,
                                 int nfds) {
  // Every attached fd is ours to close unless a handler takes it.
  UniqueFd attached[kMaxFdsPerMessage];
  for (int i = 0; i < nfds; ++i) attached[i].reset(fds[i]);

  absl::StatusOr<DecodedRequest> decoded = DecodeRequest(data, bytes);
  if (!decoded.ok()) {
    End(w, WorkerResult::Kind::kProtocolError, std::string(decoded.status().message()));
    return false;
  }
  const DecodedRequest& request = *decoded;
  const uint64_t id = request.id;
  using RequestKind = DecodedRequest::Kind;
  auto protocol_error = [&](std::string reason) {
    End(w, WorkerResult::Kind::kProtocolError, std::move(reason));
    return false;
  };
  if (nfds != 0 && request.kind != RequestKind::kHello) {
    return protocol_error("a request carried file descriptors");
  }
  switch (w.phase) {
    case Phase::kAwaitHello: {
      if (request.kind != RequestKind::kHello) {
        return protocol_error("the first request must be hello");
      }
      // Every program has a listener: path calls are always the broker's.
      absl::Status hello_ok =
          CheckHello(request, nfds, nfds == 1 ? attached[0].get() : -1, /*listener_expected=*/true);
      if (!hello_ok.ok()) return protocol_error(std::string(hello_ok.message()));
      {
        int flags = fcntl(attached[0].get(), F_GETFL);
        fcntl(attached[0].get(), F_SETFL, flags | O_NONBLOCK);
        w.shared->listener = std::move(attached[0]);
        struct epoll_event e = {};
        e.events = EPOLLIN;
        e.data.u64 = Key(w.id, kListener);
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, w.shared->listener.get(), &e) != 0) {
          return protocol_error(absl::StrCat("epoll_ctl(listener): ", strerror(errno)));
        }
        w.listener_registered = true;
      }
      // The phase changes before the answer is sent: a worker that exits before reading
      // it (it does not wait for it) has still said hello.
      w.phase = Phase::kServing;
      Audit(w, "hello", true, "locked; seccomp listener received");
      capnp::MallocMessageBuilder builder(64);
      auto response = builder.initRoot<wire::Response>();
      response.setId(id);
      response.initHello().setVersion(wire::PROTOCOL_VERSION);
      int rc = w.channel.Send(builder);
      if (rc != 0) return SendFailed(w, rc, "the answer to hello");
      return true;
    }
    case Phase::kServing:
      break;
    case Phase::kEnded:
      return false;
  }
  // Rate limit.
  uint32_t rps = w.policy->policy.limits.requests_per_second;
  if (rps != 0 && request.kind != RequestKind::kViolation) {
    absl::Time now = absl::Now();
    w.tokens = std::min<double>(rps, w.tokens + absl::ToDoubleSeconds(now - w.last_refill) * rps);
    w.last_refill = now;
    if (w.tokens < 1) {
      End(w, WorkerResult::Kind::kLimitExceeded,
          absl::StrCat("more than ", rps, " requests per second"));
      return false;
    }
    w.tokens -= 1;
  }
  switch (request.kind) {
    case RequestKind::kOpen:
    case RequestKind::kConnect: {
      // Off the loop (an open may stall on a FIFO or a hung mount, a connect on a slow
      // peer), one at a time per worker: its channel is not read until this is answered.
      // The task answers on its own dup of the channel, so a worker that ends meanwhile
      // cannot make it write to a reused fd number.
      // A worker that has already exited is not served (its last reports still are).
      if (w.draining) return true;
      int dup_fd = fcntl(w.channel.fd(), F_DUPFD_CLOEXEC, 0);
      if (dup_fd < 0) return protocol_error(absl::StrCat("dup(channel): ", strerror(errno)));
      w.channel_call_in_flight = true;
      w.channel_call_started = absl::Now();
      ArmChannel(w, false);
      ++calls_in_flight_;
      pool_->Submit([this, id = w.id, pid = w.pid, policy = w.policy,
                     chan = std::make_shared<UniqueFd>(dup_fd), req = request]() {
        ServeChannelCall(id, pid, *policy, chan->get(), req);
      });
      return true;
    }
    case RequestKind::kClock: {
      absl::StatusOr<absl::Time> now = ClockNow(w.policy->policy.clock);
      if (!now.ok()) {
        Audit(w, "clock", false, std::string(now.status().message()));
        return SendError(w, id, ErrnoOrDefault(now.status(), EPERM), now.status().message());
      }
      timespec ts = absl::ToTimespec(*now);
      capnp::MallocMessageBuilder builder(64);
      auto response = builder.initRoot<wire::Response>();
      response.setId(id);
      auto time = response.initTime();
      time.setSeconds(ts.tv_sec);
      time.setNanos(static_cast<uint32_t>(ts.tv_nsec));
      int rc = w.channel.Send(builder);
      if (rc != 0) return SendFailed(w, rc, "a response");
      Audit(w, "clock", true, absl::FormatTime(absl::RFC3339_full, *now, absl::UTCTimeZone()));
      return true;
    }
    case RequestKind::kViolation: {
      if (w.policy->policy.penalty != Penalty::kTrap) {
        return protocol_error("a violation report outside penalty trap");
      }
      {
        absl::Time now = absl::Now();
        if (now - w.report_second >= absl::Seconds(1)) {
          w.report_second = now;
          w.reports_this_second = 0;
        }
        if (++w.reports_this_second > kMaxViolationReportsPerSecond) {
          End(w, WorkerResult::Kind::kLimitExceeded,
              absl::StrCat("more than ", kMaxViolationReportsPerSecond,
                           " violation reports per second"));
          return false;
        }
      }
      Violation v;
      v.nr = request.syscall;
      v.audit_arch = request.arch;
      Arch arch = request.arch == AUDIT_ARCH_AARCH64 ? Arch::kAarch64 : Arch::kX86_64;
      v.syscall = SyscallName(arch, v.nr);
      SyscallEvent event;
      event.nr = v.nr;
      event.audit_arch = request.arch;
      event.pid = static_cast<uint32_t>(w.pid);
      for (int i = 0; i < 6; ++i) event.args[i] = v.args[i] = request.args[i];
      std::optional<Promise> allowing = PromiseAllowing(event);
      v.allowed_by = allowing.has_value() ? std::string(PromiseName(*allowing)) : "";
      v.from_kernel = false;
      RecordViolation(w, std::move(v));
      return true;
    }
    case RequestKind::kHello:
    case RequestKind::kGetFilter:
      return protocol_error("request not allowed after hello");
  }
  return protocol_error("request not allowed after hello");
}

void Broker::Impl::HandleChannel(Worker& w, int max_messages) {
  for (int i = 0; i < max_messages && w.channel.valid() && !w.ending &&
                  (w.draining || !w.channel_call_in_flight);
       ++i) {
    int fds[kMaxFdsPerMessage];
    int nfds = 0;
    // The policy's `limit message_bytes` (0: the hard cap); a larger datagram ends it.
    const size_t limit = w.policy->policy.limits.max_message_bytes;
    const size_t max_bytes = limit == 0 || limit > kMaxMessageBytes ? kMaxMessageBytes : limit;
    int n = w.channel.Receive(buffer_.get(), max_bytes, fds, kMaxFdsPerMessage, &nfds);
    if (n == -EAGAIN) return;
    // The worker exited without reading everything we sent (typically the HelloReply,
    // which the lock-down does not wait for). The kernel reports that once, before the
    // datagrams still queued for us, so read on: its last messages are not lost.
    if (n == -ECONNRESET) continue;
    if (n == 0) {
      // SOCK_SEQPACKET reads 0 for an empty datagram as well as for the end of the
      // stream: only a hang-up is an end; an empty datagram breaks the protocol.
      struct pollfd p = {w.channel.fd(), POLLRDHUP, 0};
      const bool hangup = poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP)) != 0;
      if (!hangup && !w.draining) {
        End(w, WorkerResult::Kind::kProtocolError, "an empty datagram");
        return;
      }
      // The worker closed its end (normally: it is exiting). Its pidfd reports the end.
      epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.channel.fd(), nullptr);
      w.channel = Channel();
      return;
    }
    if (n < 0) {
      End(w, n == -EMSGSIZE && max_bytes < kMaxMessageBytes ? WorkerResult::Kind::kLimitExceeded
                                                             : WorkerResult::Kind::kProtocolError,
          n == -EMSGSIZE ? absl::StrCat("message larger than ", max_bytes, " bytes")
          : n == -EPROTO ? std::string("bad ancillary data (unexpected or too many fds)")
                         : absl::StrCat("recvmsg: ", strerror(-n)));
      return;
    }
    if (!HandleMessage(w, buffer_.get(), static_cast<size_t>(n), fds, nfds)) return;
  }
}

void Broker::Impl::Loop() {
  constexpr int kMaxEvents = 64;
  struct epoll_event events[kMaxEvents];
  while (!stop_) {
    int timeout_ms = 100;
    int n = epoll_wait(epoll_.get(), events, kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    absl::MutexLock lock(&mu_);
    for (int i = 0; i < n; ++i) {
      uint64_t key = events[i].data.u64;
      if (key == ~0ull) {
        uint64_t value;
        (void)!read(wake_.get(), &value, sizeof(value));
        continue;
      }
      auto it = workers_.find(key >> 2);
      if (it == workers_.end()) continue;
      Worker& w = *it->second;
      switch (static_cast<Source>(key & 3)) {
        case kChannel:
          if (w.channel.valid() && !w.channel_call_in_flight) {
            HandleChannel(w, kMessagesPerWakeup);
          }
          break;
        case kListener:
          if (w.listener_registered && !w.path_call_in_flight) HandleNotification(w);
          break;
        case kPidfd:
          Reap(w);
          break;
      }
    }
    // Wall-time limits and brokered-call deadlines: scanned only while some live worker
    // has one, so a broker without them pays nothing per wake-up.
    if (timed_workers_ == 0 && calls_in_flight_.load() == 0) continue;
    absl::Time now = absl::Now();
    for (auto& [id, w] : workers_) {
      if (w->reaped || w->ending) continue;
      if (now >= w->deadline) {
        End(*w, WorkerResult::Kind::kLimitExceeded, "wall time limit");
      } else if ((w->path_call_in_flight && now - w->path_call_started > kBrokeredCallDeadline) ||
                 (w->channel_call_in_flight &&
                  now - w->channel_call_started > kBrokeredCallDeadline)) {
        End(*w, WorkerResult::Kind::kLimitExceeded,
            absl::StrCat("a brokered call did not finish within ",
                         absl::FormatDuration(kBrokeredCallDeadline)));
      }
    }
  }
}

}  // namespace vow
