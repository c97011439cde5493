#include "broker/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <linux/audit.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <elf.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <new>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "base/unique_fd.h"
#include "broker/clock_policy.h"
#include "broker/fs_policy.h"
#include "broker/net_policy.h"
#include "broker/path_call.h"
#include "broker/path_handler.h"
#include "broker/task_pool.h"
#include "worker/layers.h"
#include "broker/policy_check.h"
#include "broker/request.h"
#include "broker/script.h"
#include "capnp/serialize.h"
#include "ipc/channel.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"
#include "policies/promise_compiler.h"
#include "worker/client.h"
#include "worker/lockdown.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

extern char** environ;

namespace vow {

// What a policy becomes once checked: the compiled program and the opened rules.
class PreparedPolicy {
 public:
  Policy policy;
  std::shared_ptr<const BpfProgram> program;       // for forked workers
  std::shared_ptr<const BpfProgram> exec_program;  // for exec'd vow workers
  // For unmodified programs: no SIGSYS reporter can run in them, so penalty trap acts
  // as errno there.
  std::shared_ptr<const BpfProgram> exec_program_unmodified;
  std::optional<FsPolicy> fs;
  LayerSpec layers;          // resolved against this kernel at Prepare
  std::string layers_text;   // DescribeLayers()
  std::optional<NetPolicy> net;
};

namespace {

constexpr size_t kMaxViolationsKept = 1000;
// Messages handled per worker per wake-up, so one flooding worker cannot starve others.
// One: epoll is level-triggered, so a worker with more queued comes round again after
// every other ready worker had its turn; and a synchronous worker (the normal case)
// never has a second message queued, so trying to read one would cost a wasted recvmsg
// per request.
constexpr int kMessagesPerWakeup = 1;
// What a worker sent before it exited is read up to this many messages.
constexpr int kMaxDrainMessages = 4096;
// A brokered call (open, stat, connect...) that has not finished after this long ends
// its worker: the pool thread may be stuck in the kernel (a hung FUSE mount), but no
// other worker waits for it.
constexpr absl::Duration kBrokeredCallDeadline = absl::Seconds(10);
// How long a brokered TCP connect may take to be established.
constexpr absl::Duration kConnectDeadline = absl::Seconds(5);
// Violation reports (penalty trap) a worker may send per second before it is ended.
constexpr int kMaxViolationReportsPerSecond = 100;

enum class Phase { kAwaitHello, kServing, kEnded };
enum Source : uint64_t { kChannel = 0, kListener = 1, kPidfd = 2 };

uint64_t Key(WorkerId id, Source source) { return (id << 2) | source; }

std::string AllowedByText(const std::string& promise) {
  return promise.empty() ? "no promise allows this" : absl::StrCat("promise ", promise,
                                                                   " would allow it");
}

}  // namespace

// The dynamic loader an ELF program names (PT_INTERP), or "" for a static program or
// something that is not a 64-bit ELF file of this machine. Reads the trusted program
// file (the caller chose it), never worker bytes.
std::string ElfInterpreter(int fd) {
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof(eh), 0) != static_cast<ssize_t>(sizeof(eh))) return "";
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256) {
    return "";
  }
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    if (pread(fd, &ph, sizeof(ph), static_cast<off_t>(eh.e_phoff + i * sizeof(ph))) !=
        static_cast<ssize_t>(sizeof(ph))) {
      return "";
    }
    if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz > PATH_MAX) continue;
    std::string path(ph.p_filesz, '\0');
    if (pread(fd, path.data(), ph.p_filesz, static_cast<off_t>(ph.p_offset)) !=
        static_cast<ssize_t>(ph.p_filesz)) {
      return "";
    }
    path.resize(strnlen(path.c_str(), path.size()));
    return path.empty() || path[0] != '/' ? "" : path;
  }
  return "";
}

std::string Violation::ToString() const {
  return absl::StrCat(syscall, "(", args[0], ", ", args[1], ", ", args[2], ", ", args[3], ", ",
                      args[4], ", ", args[5], ") refused; ", AllowedByText(allowed_by),
                      from_kernel ? "" : " (reported by the worker)");
}

std::string WorkerResult::ToString() const {
  switch (kind) {
    case Kind::kExited:
      return absl::StrCat("exited with code ", exit_code);
    case Kind::kSignaled:
      return absl::StrCat("killed by signal ", signal, " (", strsignal(signal), ")",
                          reason.empty() ? "" : ": ", reason);
    case Kind::kViolation:
      return absl::StrCat("killed for a forbidden syscall: ",
                          violation.has_value() ? violation->ToString() : reason);
    case Kind::kProtocolError:
      return absl::StrCat("ended for breaking the protocol: ", reason);
    case Kind::kLimitExceeded:
      return absl::StrCat("ended for exceeding a limit: ", reason);
    case Kind::kLockdownFailed:
      return absl::StrCat("lock-down failed: ", reason);
  }
  return "?";
}

struct Worker {
  WorkerId id = 0;
  pid_t pid = -1;
  std::shared_ptr<const PreparedPolicy> policy;
  Channel channel;
  UniqueFd pidfd;
  // What the path-call handler needs (listener, cwd, refusals); shared with the task
  // pool thread serving this worker's current call.
  std::shared_ptr<WorkerShared> shared;
  bool listener_registered = false;
  // A brokered call of this worker is running on the pool (one at a time; the listener
  // is not watched meanwhile). Guarded by Impl::mu_.
  // Two kinds, independent: a path call of the worker's threads (its listener is not
  // watched meanwhile) and an explicit open/connect request (its channel is not read).
  // A worker's last messages (a trap report) are read even while a path call runs.
  bool path_call_in_flight = false;
  bool channel_call_in_flight = false;
  absl::Time path_call_started;
  absl::Time channel_call_started;
  // Violation reports in the current second (penalty trap).
  int reports_this_second = 0;
  absl::Time report_second;
  Phase phase = Phase::kAwaitHello;
  // Set when the broker decided to end the worker; the result kind/reason win over the
  // signal that follows.
  bool ending = false;
  // Reading what a worker sent before it exited: failures to answer are not its fault.
  bool draining = false;
  WorkerResult result;
  bool reaped = false;
  // Token bucket for requests_per_second.
  double tokens = 0;
  absl::Time last_refill;
  absl::Time deadline = absl::InfiniteFuture();
};

class Broker::Impl {
 public:
  Impl(AuditLog* audit) : audit_(audit) {}
  ~Impl();

  absl::Status Start();
  absl::StatusOr<WorkerId> SpawnCommon(std::shared_ptr<const PreparedPolicy> policy,
                                       const WorkerMain* main,
                                       const std::vector<std::string>* argv,
                                       const SpawnOptions& options);
  absl::StatusOr<WorkerResult> Wait(WorkerId id, absl::Duration timeout);
  void Kill(WorkerId id);
  pid_t pid(WorkerId id) const;
  size_t live() const;

  FilterCache filters_;

 private:
  // Runs on a pool thread: answers one path call, then re-arms the worker's listener.
  void ServePathCall(std::shared_ptr<WorkerShared> shared, WorkerId id,
                     struct seccomp_notif req, PathCall call);
  void ArmListener(WorkerShared& shared, WorkerId id, bool on);
  // Runs on a pool thread: an explicit open or connect request, answered on `channel_fd`.
  void ServeChannelCall(WorkerId id, pid_t pid, const PreparedPolicy& policy, int channel_fd,
                        const DecodedRequest& request);
  void ArmChannel(Worker& w, bool on) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();
  void HandleChannel(Worker& w, int max_messages) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns false when the worker was ended.
  bool HandleMessage(Worker& w, const capnp::word* data, size_t bytes, int* fds, int nfds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleNotification(Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reap(Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void End(Worker& w, WorkerResult::Kind kind, std::string reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordViolation(Worker& w, Violation v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Audit(const Worker& w, std::string request, bool allowed, std::string reason);
  bool SendError(Worker& w, uint64_t id, int err, absl::string_view reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool SendFd(Worker& w, uint64_t id, int fd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a failed send: a vanished worker is left to its pidfd; any other failure ends it.
  bool SendFailed(Worker& w, int rc, absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unregister(Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  AuditLog* audit_;
  std::unique_ptr<PathHandler> paths_;
  std::unique_ptr<TaskPool> pool_;
  std::atomic<int> calls_in_flight_{0};
  UniqueFd epoll_;
  UniqueFd wake_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  std::map<WorkerId, std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
  WorkerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Live workers with a wall-time limit.
  size_t timed_workers_ ABSL_GUARDED_BY(mu_) = 0;
  // Receive buffer of the serving thread.
  std::unique_ptr<capnp::word[]> buffer_{new capnp::word[kMaxMessageWords + 1]};
  struct seccomp_notif_sizes notif_sizes_ = {};
};

absl::Status Broker::Impl::Start() {
  ASSIGN_OR_RETURN(long ep, Syscall("epoll_create1", [] { return epoll_create1(EPOLL_CLOEXEC); }));
  epoll_.reset(static_cast<int>(ep));
  ASSIGN_OR_RETURN(long ev, Syscall("eventfd", [] { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }));
  wake_.reset(static_cast<int>(ev));
  struct epoll_event e = {};
  e.events = EPOLLIN;
  e.data.u64 = ~0ull;
  RETURN_IF_ERROR(
      Syscall("epoll_ctl", [&] { return epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &e); })
          .status());
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &notif_sizes_) != 0) {
    return ErrnoStatus(errno, "seccomp(SECCOMP_GET_NOTIF_SIZES): user notifications unavailable");
  }
  ASSIGN_OR_RETURN(paths_, PathHandler::Create(audit_));
  pool_ = std::make_unique<TaskPool>(2, 64);
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

Broker::Impl::~Impl() {
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, w] : workers_) {
      if (!w->reaped && w->pidfd.valid()) {
        syscall(SYS_pidfd_send_signal, w->pidfd.get(), SIGKILL, nullptr, 0);
      }
    }
  }
  stop_ = true;
  // Tasks still running hold their worker's state; the handler they use lives as long as
  // the pool's threads can (it is leaked if a task is stuck in the kernel).
  pool_.reset();
  if (calls_in_flight_.load() != 0) (void)paths_.release();
  uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  for (auto& [id, w] : workers_) {
    if (!w->reaped && w->pid > 0) {
      siginfo_t info;
      waitid(P_PIDFD, w->pidfd.get(), &info, WEXITED);
    }
  }
}

void Broker::Impl::Audit(const Worker& w, std::string request, bool allowed, std::string reason) {
  AuditEntry entry;
  entry.worker_id = w.id;
  entry.pid = w.pid;
  entry.request = std::move(request);
  entry.allowed = allowed;
  entry.reason = std::move(reason);
  audit_->Record(std::move(entry));
}

void Broker::Impl::Unregister(Worker& w) {
  if (w.channel.valid()) {
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.channel.fd(), nullptr);
    w.channel = Channel();
  }
  if (w.listener_registered) {
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.shared->listener.get(), nullptr);
    w.listener_registered = false;
  }
}

void Broker::Impl::End(Worker& w, WorkerResult::Kind kind, std::string reason) {
  if (w.ending || w.reaped || w.draining) return;
  w.ending = true;
  w.result.kind = kind;
  w.result.reason = reason;
  Audit(w, "end", false, reason);
  syscall(SYS_pidfd_send_signal, w.pidfd.get(), SIGKILL, nullptr, 0);
  // Stop reading from it: whatever else it sent is not served.
  Unregister(w);
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

void Broker::Impl::Reap(Worker& w) {
  siginfo_t info;
  memset(&info, 0, sizeof(info));
  if (waitid(P_PIDFD, w.pidfd.get(), &info, WEXITED | WNOHANG) != 0 || info.si_pid == 0) return;
  // What the worker sent just before it ended (a trap report, say) is still read; answers
  // to a dead worker are dropped.
  if (!w.ending && w.channel.valid()) {
    w.draining = true;
    HandleChannel(w, kMaxDrainMessages);
    w.draining = false;
  }
  // After the drain: a hello still queued counts (a worker may exit right after it).
  const bool was_serving = w.phase == Phase::kServing;
  Unregister(w);
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.pidfd.get(), nullptr);
  w.reaped = true;
  {
    absl::MutexLock lock(&w.shared->mu);
    w.result.refusals = std::move(w.shared->refusals);
  }
  w.phase = Phase::kEnded;
  if (w.deadline != absl::InfiniteFuture()) --timed_workers_;
  if (info.si_code == CLD_EXITED) {
    w.result.exit_code = info.si_status;
    if (!w.ending) {
      w.result.kind = WorkerResult::Kind::kExited;
      if (info.si_status == kLockdownFailedExit && !was_serving) {
        w.result.kind = WorkerResult::Kind::kLockdownFailed;
        w.result.reason = "the worker exited during lock-down (see its stderr)";
      }
    }
  } else {
    w.result.signal = info.si_status;
    if (!w.ending) {
      w.result.kind = WorkerResult::Kind::kSignaled;
      if (info.si_status == SIGSYS) {
        w.result.reason = "SIGSYS: the kernel killed it for a foreign-ABI syscall or a "
                          "seccomp kill rule";
      } else if (info.si_status == SIGXCPU) {
        w.result.kind = WorkerResult::Kind::kLimitExceeded;
        w.result.reason = "CPU time limit";
      }
    }
  }
  Audit(w, "exit", true, w.result.ToString());
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

absl::StatusOr<WorkerId> Broker::Impl::SpawnCommon(std::shared_ptr<const PreparedPolicy> policy,
                                                   const WorkerMain* main,
                                                   const std::vector<std::string>* argv,
                                                   const SpawnOptions& options) {
  if (policy == nullptr) return absl::InvalidArgumentError("no policy");
  ASSIGN_OR_RETURN(auto pair, Channel::CreatePair());
  Channel& ours = pair.first;
  Channel& theirs = pair.second;
  RETURN_IF_ERROR(Syscall("fcntl(O_NONBLOCK)", [&] {
                    return fcntl(ours.fd(), F_SETFL, fcntl(ours.fd(), F_GETFL) | O_NONBLOCK);
                  }).status());

  // Everything the child needs is prepared here: after fork it may only make raw syscalls.
  const bool exec = main == nullptr;
  const bool keep_channel = !exec || options.exec_channel == SpawnOptions::ExecChannel::kKeep;
  const BpfProgram& compiled = !exec           ? *policy->program
                               : keep_channel ? *policy->exec_program
                                              : *policy->exec_program_unmodified;
  std::vector<sock_filter> program = compiled.code;  // the child patches its copy
  std::vector<std::string> env_storage;
  std::vector<char*> exec_argv, exec_env;
  if (argv != nullptr) {
    if (argv->empty()) return absl::InvalidArgumentError("SpawnExec: empty argv");
    for (const std::string& a : *argv) exec_argv.push_back(const_cast<char*>(a.c_str()));
    exec_argv.push_back(nullptr);
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      if (strncmp(*e, "VOW_", 4) != 0) env_storage.emplace_back(*e);
    }
    if (keep_channel) {
      env_storage.push_back(absl::StrCat(kChannelFdEnv, "=", kWorkerChannelFd));
      env_storage.push_back(absl::StrCat("VOW_BROKER_PID=", getpid()));
      if (policy->policy.penalty == Penalty::kTrap) {
        env_storage.push_back(absl::StrCat(kTrapEnv, "=1"));
      }
    }
    for (std::string& e : env_storage) exec_env.push_back(e.data());
    exec_env.push_back(nullptr);
  }
  // The program (exec): opened here, run by fd in the child (with an empty root it has
  // no path there), its loader bind-mounted at its own path.
  UniqueFd program_fd;
  std::string interpreter;
  UniqueFd script_fd;  // the program, when it is a #! script
  std::string script_path;
  std::vector<std::string> script_argv;
  LayerSpec layers = policy->layers;
  if (exec) {
    program_fd.reset(open(exec_argv[0], O_RDONLY | O_CLOEXEC));
    if (!program_fd.valid()) {
      return ErrnoStatus(errno, absl::StrCat("SpawnExec: cannot open ", exec_argv[0]));
    }
    // A #! script: the broker runs its interpreter by fd as it would any program (the
    // same loader set, bind and Landlock EXECUTE), with the script's path as the
    // argument, and answers the interpreter's read-only open of exactly that path from
    // the file opened here (WorkerShared::script_fd; README "Scripts").
    ASSIGN_OR_RETURN(std::optional<Shebang> shebang, ReadShebang(program_fd.get()));
    if (shebang.has_value()) {
      script_path = exec_argv[0];
      if (script_path[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == nullptr) return ErrnoStatus(errno, "getcwd");
        script_path = absl::StrCat(strcmp(cwd, "/") == 0 ? "" : cwd, "/", script_path);
      }
      script_argv.push_back(shebang->interpreter);
      if (shebang->arg.has_value()) script_argv.push_back(*shebang->arg);
      script_argv.push_back(script_path);
      for (size_t i = 1; i < argv->size(); ++i) script_argv.push_back((*argv)[i]);
      exec_argv.clear();
      for (const std::string& a : script_argv) exec_argv.push_back(const_cast<char*>(a.c_str()));
      exec_argv.push_back(nullptr);
      script_fd = std::move(program_fd);
      program_fd = std::move(shebang->interpreter_fd);
    }
    interpreter = ElfInterpreter(program_fd.get());
    if (!interpreter.empty()) layers.files[layers.file_count++] = interpreter.c_str();
  }
  // `x` rules: what a program may execute by path (a shell running `cat`). They are bound
  // read-only into the empty root and get Landlock's EXECUTE, so the kernel itself
  // resolves an allowed execve there and nothing else.
  if (exec && policy->policy.promises.contains(Promise::kExec)) {
    for (const PathRule& rule : policy->policy.paths) {
      if (!rule.exec) continue;
      if (layers.file_count >= kMaxLayerFiles) {
        return absl::InvalidArgumentError(absl::StrCat(
            "SpawnExec: more than ", kMaxLayerFiles - 1, " `x` rules"));
      }
      layers.files[layers.file_count++] = rule.path.c_str();
    }
  }
  LockdownSpec spec;
  spec.channel_fd = kWorkerChannelFd;
  spec.layers = &layers;
  spec.broker_pid = getpid();
  spec.program = program.data();
  spec.program_len = program.size();
  spec.needs_listener = compiled.needs_listener();
  // exec resets signal handlers: an exec'd image's violations go to the broker instead.
  spec.trap_reporter = !exec && policy->policy.penalty == Penalty::kTrap;
  spec.max_open_fds = policy->policy.limits.max_open_fds;
  spec.cpu_seconds = policy->policy.limits.cpu_seconds;
  spec.memory_bytes = policy->policy.limits.memory_bytes;
  spec.file_bytes = policy->policy.limits.file_bytes;
  const int stdio_in[3] = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
  for (int i = 0; i < 3; ++i) spec.keep_stdio[i] = stdio_in[i] >= 0;

  fflush(nullptr);  // or the child would flush the parent's buffered output a second time
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    // The child. Async-signal-safe calls only until LockDown() has returned.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    // Move the fds we keep above the range we are about to fill, then into place.
    int moved[5];
    const int sources[5] = {stdio_in[0], stdio_in[1], stdio_in[2], theirs.fd(),
                            program_fd.get()};
    for (int i = 0; i < 5; ++i) {
      moved[i] = sources[i] >= 0 ? fcntl(sources[i], F_DUPFD_CLOEXEC, 10) : -1;
      if (sources[i] >= 0 && moved[i] < 0) _exit(kLockdownFailedExit);
    }
    if (exec) {
      spec.keep_fd = moved[4];
      layers.exec_fds[0] = moved[4];
      layers.exec_fd_count = 1;
    }
    for (int i = 0; i < 4; ++i) {
      if (moved[i] >= 0 && dup2(moved[i], i) < 0) _exit(kLockdownFailedExit);
    }
    const char* step = nullptr;
    int rc = LockDown(spec, &step);
    if (rc != 0) {
      // Best effort: stderr may be /dev/null.
      char line[160];
      int len = snprintf(line, sizeof(line), "vow: worker lock-down failed at %s: %s\n",
                         step != nullptr ? step : "?", strerrordesc_np(-rc));
      // snprintf returns the untruncated length: write only what is in `line`.
      if (len > 0) (void)!write(2, line, std::min(static_cast<size_t>(len), sizeof(line) - 1));
      _exit(kLockdownFailedExit);
    }
    if (exec) {
      // Locked: this execve is the one the broker lets through (the filter sends it to
      // the broker, which allows exactly the first one of this process).
      if (!keep_channel) close(kWorkerChannelFd);
      // By fd: with an empty root the program has no path in this mount namespace.
      syscall(SYS_execveat, spec.keep_fd, "", exec_argv.data(), exec_env.data(),
              AT_EMPTY_PATH);
      // execve is answered before the image is replaced: report why it failed.
      const int err = errno;
      char line[160];
      int len = snprintf(line, sizeof(line), "vow: execve %s: %s\n", exec_argv[0],
                         strerrordesc_np(err));
      // snprintf returns the untruncated length: write only what is in `line`.
      if (len > 0) (void)!write(2, line, std::min(static_cast<size_t>(len), sizeof(line) - 1));
      _exit(err == ENOENT ? 127 : 126);
    }
    alignas(Client) static unsigned char storage[sizeof(Client)];
    Client* client = new (storage) Client(kWorkerChannelFd);
    int code = (*main)(*client);
    fflush(stdout);
    fflush(stderr);
    _exit(code & 0xff);
  }

  theirs = Channel();  // close the child's end here
  long pidfd = syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) {
    int err = errno;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return ErrnoStatus(err, "pidfd_open");
  }
  auto w = std::make_unique<Worker>();
  w->pid = pid;
  w->policy = policy;
  w->channel = std::move(ours);
  w->pidfd.reset(static_cast<int>(pidfd));
  w->phase = Phase::kAwaitHello;
  w->shared = std::make_shared<WorkerShared>();
  {
    WorkerShared& sh = *w->shared;
    sh.pid = pid;
    sh.promises = policy->policy.promises;
    sh.penalty = policy->policy.penalty;
    sh.exec_image = exec;
    sh.script_path = script_path;
    sh.script_fd = std::move(script_fd);
    sh.libc_set = true;
    sh.fs = policy->fs.has_value() ? &*policy->fs : nullptr;
    sh.net = policy->net.has_value() ? &*policy->net : nullptr;
    sh.keep = policy;
    char cwd[PATH_MAX];
    absl::MutexLock lock(&sh.mu);
    sh.cwd = getcwd(cwd, sizeof(cwd)) != nullptr ? cwd : "/";
  }
  w->last_refill = absl::Now();
  w->tokens = policy->policy.limits.requests_per_second;
  if (policy->policy.limits.wall_time > absl::ZeroDuration()) {
    w->deadline = absl::Now() + policy->policy.limits.wall_time;
  }
  absl::MutexLock lock(&mu_);
  WorkerId id = next_id_++;
  w->id = id;
  w->shared->id = id;
  Worker& ref = *w;
  workers_[id] = std::move(w);
  struct epoll_event e = {};
  e.events = EPOLLIN;
  e.data.u64 = Key(id, kChannel);
  bool ok = epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, ref.channel.fd(), &e) == 0;
  e.data.u64 = Key(id, kPidfd);
  ok = ok && epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, ref.pidfd.get(), &e) == 0;
  if (!ok) {
    int err = errno;
    syscall(SYS_pidfd_send_signal, ref.pidfd.get(), SIGKILL, nullptr, 0);
    siginfo_t info;
    waitid(P_PIDFD, ref.pidfd.get(), &info, WEXITED);
    Unregister(ref);
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, ref.pidfd.get(), nullptr);
    workers_.erase(id);
    return ErrnoStatus(err, "epoll_ctl(worker)");
  }
  if (ref.deadline != absl::InfiniteFuture()) ++timed_workers_;
  ref.result.layers = policy->layers_text;
  Audit(ref, absl::StrCat("spawn", options.name.empty() ? "" : " ", options.name,
                          argv != nullptr ? absl::StrCat(" exec ", (*argv)[0]) : ""),
        true, absl::StrCat("promises: ", policy->policy.promises.ToString(), "; ",
                           policy->layers_text));
  return id;
}

absl::StatusOr<WorkerResult> Broker::Impl::Wait(WorkerId id, absl::Duration timeout) {
  absl::Time deadline = timeout == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                            : absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  for (;;) {
    auto it = workers_.find(id);
    if (it == workers_.end()) return absl::NotFoundError(absl::StrCat("no worker ", id));
    Worker& w = *it->second;
    if (w.reaped) {
      WorkerResult result = std::move(w.result);
      workers_.erase(it);
      return result;
    }
    // Wait on the pidfd directly (the kernel wakes this thread when the worker exits)
    // instead of for the serving thread to notice and pass the news on: one wake-up
    // less per worker. Whoever sees the exit first reaps it, under mu_. The pidfd stays
    // open while we poll: only Wait() erases a worker, and one thread waits per worker.
    struct pollfd p = {w.pidfd.get(), POLLIN, 0};
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("worker ", id, " still running"));
    }
    int ms = left == absl::InfiniteDuration()
                 ? 1000
                 : static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
    mu_.Unlock();
    poll(&p, 1, ms);
    mu_.Lock();
    auto again = workers_.find(id);
    if (again != workers_.end() && !again->second->reaped) Reap(*again->second);
  }
}

void Broker::Impl::Kill(WorkerId id) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(id);
  if (it == workers_.end() || it->second->reaped) return;
  Worker& w = *it->second;
  // A worker that has already ended (and is only waiting to be reaped) keeps the result
  // it earned: reap it now instead of calling its death our kill.
  siginfo_t info = {};
  if (waitid(P_PIDFD, w.pidfd.get(), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
      info.si_pid != 0) {
    Reap(w);
    return;
  }
  End(w, WorkerResult::Kind::kSignaled, "killed by the broker");
}

pid_t Broker::Impl::pid(WorkerId id) const {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(id);
  if (it == workers_.end() || it->second->reaped) return -1;
  return it->second->pid;
}

size_t Broker::Impl::live() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [id, w] : workers_) n += w->reaped ? 0 : 1;
  return n;
}

Broker::Broker(BrokerOptions options) : audit_(options.audit_fd), impl_(new Impl(&audit_)) {}

Broker::~Broker() = default;

absl::StatusOr<std::unique_ptr<Broker>> Broker::Create(BrokerOptions options) {
  std::unique_ptr<Broker> broker(new Broker(options));
  RETURN_IF_ERROR(broker->impl_->Start());
  return broker;
}

absl::StatusOr<std::shared_ptr<const PreparedPolicy>> Broker::Prepare(const Policy& policy) {
  RETURN_IF_ERROR(ValidatePolicy(policy));
  // Fail closed: what the broker cannot enforce is refused, not ignored.
  if (policy.exec_promises.has_value() && *policy.exec_promises != policy.promises) {
    return absl::UnimplementedError(
        "execpromises: not enforced yet (an image the worker execs keeps the worker's own "
        "filter); remove the line or make it equal to `promises`");
  }
  auto prepared = std::make_shared<PreparedPolicy>();
  prepared->policy = policy;
  ASSIGN_OR_RETURN(prepared->layers, ResolveLayers(policy, ProbeLayers()));
  prepared->layers_text = DescribeLayers(prepared->layers, ProbeLayers());
  ASSIGN_OR_RETURN(prepared->program, impl_->filters_.Get(policy.promises, policy.penalty));
  ASSIGN_OR_RETURN(prepared->exec_program,
                   impl_->filters_.Get(policy.promises, policy.penalty, NativeArch(),
                                       ProgramVariant::kExecImage));
  ASSIGN_OR_RETURN(prepared->exec_program_unmodified,
                   impl_->filters_.Get(policy.promises,
                                       policy.penalty == Penalty::kTrap ? Penalty::kErrno
                                                                        : policy.penalty,
                                       NativeArch(), ProgramVariant::kExecImage));
  if (!policy.paths.empty()) {
    ASSIGN_OR_RETURN(FsPolicy fs, FsPolicy::Create(policy.paths));
    prepared->fs.emplace(std::move(fs));
  }
  if (!policy.connects.empty()) {
    ASSIGN_OR_RETURN(NetPolicy net, NetPolicy::Create(policy.connects));
    prepared->net.emplace(std::move(net));
  }
  return std::shared_ptr<const PreparedPolicy>(std::move(prepared));
}

absl::StatusOr<WorkerId> Broker::Spawn(std::shared_ptr<const PreparedPolicy> policy,
                                       WorkerMain main, const SpawnOptions& options) {
  return impl_->SpawnCommon(std::move(policy), &main, nullptr, options);
}

absl::StatusOr<WorkerId> Broker::Spawn(const Policy& policy, WorkerMain main,
                                       const SpawnOptions& options) {
  ASSIGN_OR_RETURN(auto prepared, Prepare(policy));
  return Spawn(std::move(prepared), std::move(main), options);
}

absl::StatusOr<WorkerId> Broker::SpawnExec(std::shared_ptr<const PreparedPolicy> policy,
                                           const std::vector<std::string>& argv,
                                           const SpawnOptions& options) {
  return impl_->SpawnCommon(std::move(policy), nullptr, &argv, options);
}

absl::StatusOr<WorkerResult> Broker::Wait(WorkerId id, absl::Duration timeout) {
  return impl_->Wait(id, timeout);
}

void Broker::Kill(WorkerId id) { impl_->Kill(id); }

pid_t Broker::pid(WorkerId id) const { return impl_->pid(id); }

size_t Broker::live_workers() const { return impl_->live(); }

}  // namespace vow
