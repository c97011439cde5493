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

#include <algorithm>
#include <atomic>
#include <limits>
#include <thread>

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

std::atomic<void (*)()> g_loop_pidfd_event_hook{nullptr};

void SetLoopPidfdEventHookForTesting(void (*hook)()) { g_loop_pidfd_event_hook.store(hook); }

std::atomic<int> g_in_place_poll_error{0};  // SetInPlacePollErrorForTesting

void SetInPlacePollErrorForTesting(int err) { g_in_place_poll_error.store(err); }

namespace {

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

}  // namespace

void Broker::Impl::HandleNotification(Worker& w) {
  struct seccomp_notif req;
  std::optional<PathCall> call;
  switch (ReceiveNotification(w, &req, &call)) {
    case Received::kNothing:
      return;
    case Received::kListenerDead:
      // The listener is dead (worker gone): stop watching it.
      epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.shared->listener.get(), nullptr);
      w.listener_registered = false;
      return;
    case Received::kPathCall:
      break;
  }
  // Off the loop: the open may block (a FIFO, a hung mount). One call per worker at a
  // time: its listener is not watched until this one is answered.
  ArmListener(*w.shared, w.id, false);
  pool_->Submit([this, shared = w.shared, id = w.id, r = req, c = *std::move(call),
                 paths = paths_.get(), life = life_]() mutable {
    ServePathCall(std::move(shared), id, r, std::move(c), paths, std::move(life));
  });
}

void Broker::Impl::ServeListenerInPlace(std::shared_ptr<WorkerShared> shared, WorkerId id,
                                        std::shared_ptr<BrokerLife> life) {
  const int listener = shared->listener.get();
  // Set when this thread stops serving a worker that is still there for a reason other
  // than its end: the worker is then ended (its calls would wait in the kernel forever,
  // with no deadline: review h67, L3).
  const char* failed = nullptr;
  for (;;) {
    // The worker's next call, or its end (the filter has no task left: POLLHUP). The
    // timeout only bounds how long a broker that is gone keeps this thread.
    struct pollfd p = {listener, POLLIN, 0};
    int ready = poll(&p, 1, 100);
    const int forced = ready > 0 ? g_in_place_poll_error.load(std::memory_order_relaxed) : 0;
    if (forced != 0) {
      ready = -1;
      errno = forced;
    }
    if (ready < 0 && errno != EINTR) {
      failed = "poll of its listener failed";
      break;
    }
    if (ready > 0 && (p.revents & POLLIN) == 0) {  // POLLHUP, POLLERR, POLLNVAL
      if ((p.revents & POLLHUP) == 0) failed = "its listener reported an error";
      break;
    }
    struct seccomp_notif req;
    std::optional<PathCall> call;
    PathHandler* paths = nullptr;
    bool throttled = false;
    {
      absl::ReaderMutexLock alive(&life->mu);
      if (life->gone) return;  // `this` may be gone
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      auto it = workers_.find(id);
      // Reaped, or ended by the broker: the loop no longer serves such a worker either
      // (Unregister; review h67, L2).
      if (it == workers_.end() || it->second->reaped || it->second->ending) break;
      Worker& w = *it->second;
      if (w.throttled) {
        // Its calls wait in the kernel until the loop unthrottles it (NoteRefusal).
        throttled = true;
      } else if (ready > 0) {
        const Received got = ReceiveNotification(w, &req, &call);
        if (got == Received::kListenerDead) {
          failed = "its listener could not be read";
          break;
        }
        if (got == Received::kPathCall) paths = paths_.get();
      }
    }
    if (throttled) {
      absl::SleepFor(absl::Milliseconds(5));
      continue;
    }
    // Counted in calls_in_flight_ (under life->mu, before `gone`): Shutdown leaks the
    // handler rather than free it under this call.
    if (paths != nullptr) ServePathCall(shared, id, req, *std::move(call), paths, life);
  }
  // The worker's thread is given back (the cap counts only live workers).
  absl::ReaderMutexLock alive(&life->mu);
  if (life->gone) return;
  absl::MutexLock lock(&mu_);
  --in_place_listeners_;
  if (failed != nullptr) {
    auto it = workers_.find(id);
    // Not one that has exited meanwhile (its own end, not this thread's failure): its
    // pidfd is readable, or its listener has hung up (no task of it is left). The kernel
    // hangs the listener up before it makes the pidfd readable: a failure that came as
    // the worker exited found the pidfd not yet readable in 27 of 30 runs (h68).
    struct pollfd exited[2] = {
        {it != workers_.end() ? it->second->pidfd.get() : -1, POLLIN, 0}, {listener, 0, 0}};
    const bool gone = poll(exited, 2, 0) > 0 && ((exited[0].revents & POLLIN) != 0 ||
                                                 (exited[1].revents & POLLHUP) != 0);
    if (it != workers_.end() && !it->second->reaped && !it->second->ending && !gone) {
      End(*it->second, WorkerResult::Kind::kProtocolError,
          absl::StrCat("the broker stopped serving its path calls: ", failed));
    }
  }
}

Broker::Impl::Received Broker::Impl::ReceiveNotification(Worker& w, struct seccomp_notif* out,
                                                         std::optional<PathCall>* call_out) {
  // The kernel tells us which syscall a worker thread is blocked in. Sizes come from the
  // kernel (SECCOMP_GET_NOTIF_SIZES); the buffers are at least as large as our headers.
  alignas(8) char req_buf[512];
  alignas(8) char resp_buf[512];
  if (notif_sizes_.seccomp_notif > sizeof(req_buf) ||
      notif_sizes_.seccomp_notif_resp > sizeof(resp_buf)) {
    End(w, WorkerResult::Kind::kProtocolError, "seccomp notification too large");
    return Received::kNothing;
  }
  memset(req_buf, 0, sizeof(req_buf));
  auto* req = reinterpret_cast<struct seccomp_notif*>(req_buf);
  const int listener = w.shared->listener.get();
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
    if (errno == EINTR || errno == ENOENT || errno == EAGAIN) return Received::kNothing;
    return Received::kListenerDead;
  }
  {
    const Arch call_arch = req->data.arch == AUDIT_ARCH_AARCH64 ? Arch::kAarch64 : Arch::kX86_64;
    std::optional<PathCall> call =
        req->data.arch == AuditArch(NativeArch())
            ? DecodePathCall(call_arch, req->data.nr,
                             reinterpret_cast<const uint64_t*>(req->data.args))
            : std::nullopt;
    if (call.has_value()) {
      w.path_call_in_flight = true;
      w.path_call_started = MonotonicNow();
      ++calls_in_flight_;
      *out = *req;
      *call_out = std::move(call);
      return Received::kPathCall;
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
    return Received::kNothing;
  }
  // ENOENT: the thread was killed meanwhile; nothing to answer.
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
  return Received::kNothing;
}

void Broker::Impl::ArmChannel(Worker& w, bool on) {
  if (!w.channel.valid()) return;
  struct epoll_event e = {};
  e.events = on ? EPOLLIN : 0;
  e.data.u64 = Key(w.id, kChannel);
  epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, w.channel.fd(), &e);
}

bool Broker::Impl::SubmitChannelCall(Worker& w, const DecodedRequest& request,
                                     ChannelCall call) {
  // Off the loop (an open may stall on a FIFO or a hung mount, a connect on a slow
  // peer), one at a time per worker: its channel is not read until this is answered.
  // The task answers on its own dup of the channel, so a worker that ends meanwhile
  // cannot make it write to a reused fd number.
  // A worker that has already exited is not served (its last reports still are).
  if (w.draining) return true;
  int dup_fd = fcntl(w.channel.fd(), F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ProtocolError(w, absl::StrCat("dup(channel): ", strerror(errno)));
  w.channel_call_in_flight = true;
  w.channel_call_started = MonotonicNow();
  ArmChannel(w, false);
  ++calls_in_flight_;
  pool_->Submit([this, id = w.id, pid = w.pid, policy = w.policy,
                 chan = std::make_shared<UniqueFd>(dup_fd), req = request, call, life = life_]() {
    // ServeChannelCall owns the fd from here on; the shared copy closes it only for a
    // task dropped unrun (the pool shutting down). Closing it twice would close whatever
    // took the number meanwhile: another call's channel (answers to the wrong worker).
    ServeChannelCall(id, pid, *policy, chan->release(), req, call, life);
  });
  return true;
}

void Broker::Impl::ServeChannelCall(WorkerId id, pid_t pid, const PreparedPolicy& policy,
                                    int channel_fd, const DecodedRequest& request,
                                    ChannelCall call, std::shared_ptr<BrokerLife> life) {
  Channel channel{UniqueFd(channel_fd)};
  std::string audit_request;
  // May block in the kernel; touches nothing of the broker (the policy is the task's).
  absl::StatusOr<UniqueFd> fd = call(pid, policy, request, &audit_request);
  absl::ReaderMutexLock alive(&life->mu);
  if (life->gone) return;  // the broker is gone: the fd and the channel dup close here
  // A refusal is the broker's decision (EACCES/EPERM), not the file system's answer.
  // Audited before the answer (this thread does not hold mu_: after it, the worker could
  // be reaped and its exit logged first); an fd the kernel then refuses to send gets a
  // second line, `deny` with the reason (the worker got ENFILE).
  std::string audit_text = fd.ok() ? audit_request : std::string();
  const int err = AuditChannelCall(*audit_, id, pid, std::move(audit_request), fd);
  // The broker's copy of the fd is closed once sent.
  absl::Status undelivered;
  int rc = SendFdOrError(channel, request.id, fd, &undelivered);
  if (!undelivered.ok()) {
    (void)AuditChannelCall(*audit_, id, pid, std::move(audit_text), undelivered);
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(id);
    if (it != workers_.end() && !it->second->reaped) {
      Worker& w = *it->second;
      w.channel_call_in_flight = false;
      if (rc == kAnswersUnread && !w.ending) {
        End(w, WorkerResult::Kind::kLimitExceeded, UnreadAnswersReason());
      } else if (rc != 0 && rc != -EPIPE && rc != -ECONNRESET && !w.ending) {
        End(w, WorkerResult::Kind::kProtocolError,
            absl::StrCat("could not send a response: ", strerror(-rc)));
      } else if (!((err == EACCES || err == EPERM) && NoteRefusal(w)) && !w.throttled) {
        ArmChannel(w, true);
      }
    }
  }
  --calls_in_flight_;
}

int AuditChannelCall(AuditLog& audit, WorkerId id, pid_t pid, std::string request,
                     const absl::StatusOr<UniqueFd>& fd) {
  AuditEntry entry;
  entry.worker_id = id;
  entry.pid = pid;
  entry.request = std::move(request);
  entry.allowed = fd.ok();
  entry.reason = fd.ok() ? "allowed by rule" : std::string(fd.status().message());
  audit.Record(std::move(entry));
  return fd.ok() ? 0 : ErrnoOrDefault(fd.status(), EACCES);
}

bool Broker::Impl::NoteRefusal(Worker& w) {
  if (w.policy->policy.penalty == Penalty::kLog) return false;  // learning mode
  if (w.ending || w.reaped || w.draining) return w.throttled;
  const absl::Time now = MonotonicNow();
  if (w.refusal_refill != absl::InfinitePast()) {
    w.refusal_tokens =
        std::min(kRefusalBurst, w.refusal_tokens +
                                    absl::ToDoubleSeconds(now - w.refusal_refill) *
                                        kRefusalsPerSecond);
  }
  w.refusal_refill = now;
  if (w.refusal_tokens >= kRefusalBurst) w.throttle_episode = false;  // it calmed down
  w.refusal_tokens -= 1;
  if (global_refusal_refill_ != absl::InfinitePast()) {
    global_refusal_tokens_ = std::min(
        kGlobalRefusalBurst,
        global_refusal_tokens_ +
            absl::ToDoubleSeconds(now - global_refusal_refill_) * kGlobalRefusalsPerSecond);
  }
  global_refusal_refill_ = now;
  const bool pressure = global_refusal_tokens_ < 1 &&
                        w.refusal_tokens < kRefusalBurst - kRefusalBurstUnderPressure;
  if (global_refusal_tokens_ >= 1) global_refusal_tokens_ -= 1;
  if (w.refusal_tokens >= 1 && !pressure) return w.throttled;
  if (!w.throttled) {
    // Out of epoll rather than disarmed: a hang-up on a disarmed fd would still wake the
    // loop. Its next request (or path call) waits in the kernel meanwhile.
    if (w.channel.valid()) epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.channel.fd(), nullptr);
    if (w.listener_registered) {
      epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.shared->listener.get(), nullptr);
    }
    w.throttled = true;
    ++throttled_workers_;
  }
  w.throttled_until =
      now + absl::Seconds(std::max(1.0, 1 - w.refusal_tokens) / kRefusalsPerSecond);
  const int64_t due = absl::ToUnixNanos(w.throttled_until);
  // A pool thread wakes the loop, or it would sleep through the due time (its epoll
  // timeout was chosen before this throttle).
  if (due < next_unthrottle_ns_.load()) {  // written under mu_ only
    next_unthrottle_ns_ = due;
    if (std::this_thread::get_id() != thread_.get_id()) {
      uint64_t one = 1;
      (void)!write(wake_.get(), &one, sizeof(one));
    }
  }
  if (!w.throttle_episode) {
    w.throttle_episode = true;
    Audit(w, "throttle", false,
          absl::StrCat(pressure ? absl::StrCat("more than ", kRefusalBurstUnderPressure,
                                               " refused calls while the broker refuses more "
                                               "than ", kGlobalRefusalsPerSecond, " a second")
                                : absl::StrCat("more than ", kRefusalBurst,
                                               " refused calls in a burst"),
                       ": its calls are served at ", kRefusalsPerSecond,
                       " refusals per second until it calms down (audited once per episode)"));
  }
  return true;
}

void Broker::Impl::Unthrottle(Worker& w) {
  if (!w.throttled) return;
  w.throttled = false;
  --throttled_workers_;
  if (w.ending || w.reaped) return;
  struct epoll_event e = {};
  if (w.channel.valid()) {
    e.events = w.channel_call_in_flight ? 0 : EPOLLIN;
    e.data.u64 = Key(w.id, kChannel);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, w.channel.fd(), &e) != 0) {
      End(w, WorkerResult::Kind::kProtocolError,
          absl::StrCat("epoll_ctl(channel) after a throttle: ", strerror(errno)));
      return;
    }
  }
  if (w.listener_registered) {
    e.events = w.path_call_in_flight ? 0 : EPOLLIN;
    e.data.u64 = Key(w.id, kListener);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, w.shared->listener.get(), &e) != 0) {
      End(w, WorkerResult::Kind::kProtocolError,
          absl::StrCat("epoll_ctl(listener) after a throttle: ", strerror(errno)));
    }
  }
}

void Broker::Impl::ArmListener(WorkerShared& shared, WorkerId id, bool on) {
  struct epoll_event e = {};
  e.events = on ? EPOLLIN : 0;
  e.data.u64 = Key(id, kListener);
  // ENOENT: the worker was unregistered meanwhile (it ended).
  epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, shared.listener.get(), &e);
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
    const int64_t due = next_unthrottle_ns_.load();
    if (due != std::numeric_limits<int64_t>::max()) {
      const int64_t left_ns = due - absl::ToUnixNanos(MonotonicNow());
      timeout_ms = left_ns <= 0 ? 0
                                : static_cast<int>(
                                      std::min<int64_t>(100, (left_ns + 999999) / 1000000));
    }
    if (reap_pendings_.load() != 0) timeout_ms = std::min(timeout_ms, kReapRetryMs);
    int n = epoll_wait(epoll_.get(), events, kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (void (*hook)() = g_loop_pidfd_event_hook.load(); hook != nullptr) {
      for (int i = 0; i < n; ++i) {
        const uint64_t key = events[i].data.u64;
        if (key != ~0ull && static_cast<Source>(key & 3) == kPidfd) {
          hook();
          break;
        }
      }
    }
    absl::MutexLock lock(&mu_);
    // Shutdown: nothing more is served once it has set stop_ and held mu_.
    if (stop_) break;
    // Fair, and the calm first: one message per ready worker per turn, and in a turn the
    // workers that have used less than half their refusal burst are served before those
    // that have used more (a flooder still in its burst waits behind an innocent worker,
    // never the other way round). Decided before serving anything, so each event is
    // served once. A lone event has no order to decide (the synchronous round trip: one
    // worker's request), so it skips the lookup and the clock.
    const absl::Time turn = n > 1 ? MonotonicNow() : absl::InfinitePast();
    bool late[kMaxEvents];
    if (n == 1) late[0] = false;
    for (int i = 0; n > 1 && i < n; ++i) {
      late[i] = false;
      const uint64_t key = events[i].data.u64;
      if (key == ~0ull || static_cast<Source>(key & 3) == kPidfd) continue;
      auto it = workers_.find(key >> 2);
      if (it == workers_.end()) continue;
      const Worker& w = *it->second;
      const double tokens =
          w.refusal_refill == absl::InfinitePast()
              ? kRefusalBurst
              : w.refusal_tokens +
                    absl::ToDoubleSeconds(turn - w.refusal_refill) * kRefusalsPerSecond;
      late[i] = tokens < kRefusalBurst / 2;
    }
    for (int pass = 0; pass < 2; ++pass) {
      for (int i = 0; i < n; ++i) {
        if (late[i] != (pass == 1)) continue;
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
            if (w.channel.valid() && !w.channel_call_in_flight && !w.throttled) {
              HandleChannel(w, kMessagesPerWakeup);
            }
            break;
          case kListener:
            if ((events[i].events & (EPOLLHUP | EPOLLERR)) != 0) {
              // The filter has no task left (the kernel says so with EPOLLHUP, armed or
              // not): no notification can come any more. Its pidfd says when it is
              // reaped, which can be long after (a big address space is still being
              // torn down); watched until then, the level-triggered hang-up would spin
              // this loop (seen: ~15,000 turns while a 1 GiB worker exited).
              if (w.listener_registered) {
                epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.shared->listener.get(), nullptr);
                w.listener_registered = false;
              }
              break;
            }
            if (w.listener_registered && !w.path_call_in_flight && !w.throttled) {
              HandleNotification(w);
            }
            break;
          case kPidfd:
            Reap(w);
            break;
        }
      }
    }
    // Workers that have exited but were not reapable yet (a traced zombie): tried again.
    if (reap_pendings_.load() != 0) {
      for (auto& [id, w] : workers_) {
        if (w->reap_pending && !w->reaped) Reap(*w);
      }
    }
    // Throttled workers whose bucket has a token again go back into epoll.
    if (throttled_workers_ != 0 &&
        absl::ToUnixNanos(MonotonicNow()) >= next_unthrottle_ns_.load()) {
      const absl::Time now = MonotonicNow();
      int64_t next = std::numeric_limits<int64_t>::max();
      for (auto& [id, w] : workers_) {
        if (!w->throttled) continue;
        if (now >= w->throttled_until || w->ending || w->reaped) {
          Unthrottle(*w);
        } else {
          next = std::min(next, absl::ToUnixNanos(w->throttled_until));
        }
      }
      next_unthrottle_ns_ = next;
    } else if (throttled_workers_ == 0) {
      next_unthrottle_ns_ = std::numeric_limits<int64_t>::max();
    }
    // Wall-time limits and brokered-call deadlines: scanned only while some live worker
    // has one, so a broker without them pays nothing per wake-up.
    if (timed_workers_ == 0 && hello_waits_ == 0 && calls_in_flight_.load() == 0) continue;
    absl::Time now = MonotonicNow();
    for (auto& [id, w] : workers_) {
      if (w->reaped || w->ending) continue;
      if (now >= w->deadline) {
        End(*w, WorkerResult::Kind::kLimitExceeded, "wall time limit");
      } else if (now >= w->hello_deadline) {
        End(*w, WorkerResult::Kind::kLockdownFailed,
            "no hello by its deadline (a fork server's worker stopped or stuck before its "
            "lock-down finished)");
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
