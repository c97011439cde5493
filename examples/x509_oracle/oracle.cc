#include "examples/x509_oracle/oracle.h"

#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "base/unique_fd.h"
#include "examples/x509_oracle/oracle_worker.h"
#include "examples/x509_oracle/protocol.h"

namespace vow::x509 {
namespace {

// At most this many reports of ended pool workers are kept for DescribeEnd().
constexpr size_t kMaxEndedReports = 256;

// An error verdict's JSON; *out (if not null) gets the verdict itself.
std::string ErrorJson(absl::string_view what, Verdict* out) {
  Verdict v = ErrorVerdict(what);
  std::string json = VerdictToJson(v);
  if (out != nullptr) *out = std::move(v);
  return json;
}
std::string InternalErrorJson(absl::string_view what, Verdict* out) {
  Verdict v = InternalErrorVerdict(what);
  std::string json = VerdictToJson(v);
  if (out != nullptr) *out = std::move(v);
  return json;
}

// Sends one job (one frame, one sendmsg), reads one binary verdict frame (RecvSoleFrame:
// one poll and, usually, one recv; bytes beyond the frame fail the exchange, as a worker
// writes nothing but its answer), decodes it (the check of the worker's hostile answer)
// and makes its JSON here, as the in-process path does (VerdictToJson of the same
// Verdict, so the bytes are the same). The decoded
// verdict goes to *out (if not null), so that no caller has to parse the JSON.
absl::StatusOr<std::string> Exchange(int fd, absl::string_view payload, absl::Time deadline,
                                     Verdict* out) {
  absl::Status s = SendFrame(fd, payload, deadline);
  if (!s.ok()) return s;
  std::string bytes;
  s = RecvSoleFrame(fd, kMaxVerdictBytes, deadline, &bytes);
  if (!s.ok()) return s;
  absl::StatusOr<Verdict> verdict = DecodeVerdict(bytes);
  if (!verdict.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the worker's answer is not a verdict: ", verdict.status().message()));
  }
  // At most kMaxVerdictBytes, as clients read it (what the worker used to send in place
  // of an oversized JSON verdict).
  std::string json = BoundedVerdictJson(&*verdict);
  if (out != nullptr) *out = *std::move(verdict);
  return json;
}

// True when `s` means the worker hung up (it crashed or exited) rather than timed out or
// answered garbage.
bool IsHangUp(const absl::Status& s) {
  if (absl::IsOutOfRange(s) || absl::IsDataLoss(s)) return true;
  int err = ErrnoOf(s);
  return err == EPIPE || err == ECONNRESET;
}

// True if the idle worker on `fd` has hung up or written something unasked.
bool IdleWorkerGone(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  int rc;
  do {
    rc = poll(&p, 1, 0);
  } while (rc < 0 && errno == EINTR);
  return rc > 0;
}

// colocate_single_caller: pins the calling thread to the CPU it is on and gives it back
// its own affinity at Restore() (or destruction). A thread already pinned to one CPU is
// left alone.
class CallerPin {
 public:
  CallerPin() = default;
  CallerPin(const CallerPin&) = delete;
  CallerPin& operator=(const CallerPin&) = delete;
  ~CallerPin() { Restore(); }

  // The CPU the caller is now pinned to, or -1 (nothing changed).
  int PinToCurrentCpu() {
    int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -1;
    if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0 || !CPU_ISSET(cpu, &saved_)) {
      return -1;
    }
    if (CPU_COUNT(&saved_) == 1) return cpu;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) return -1;
    restore_ = true;
    return cpu;
  }

  void Restore() {
    if (!restore_) return;
    restore_ = false;
    (void)sched_setaffinity(0, sizeof(saved_), &saved_);
  }

 private:
  cpu_set_t saved_;
  bool restore_ = false;
};

// Counts a request in the pool path for as long as it lives.
class InFlight {
 public:
  explicit InFlight(std::atomic<int>& n) : n_(n), alone_(n.fetch_add(1) == 0) {}
  ~InFlight() { n_.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  // True if no other request was in flight when this one started.
  bool alone() const { return alone_; }

 private:
  std::atomic<int>& n_;
  const bool alone_;
};

}  // namespace

Policy OraclePolicy(const OracleOptions& options, std::string* bundle_path) {
  namespace fs = std::filesystem;
  Policy policy;  // promises: stdio; penalty: kill
  policy.clock = options.clock;
  std::error_code ec;
  fs::path dir = fs::canonical(fs::path(options.trust_bundle).parent_path(), ec);
  bool have_dir = !ec && fs::is_directory(dir, ec);
  if (have_dir) policy.paths.push_back(PathRule{dir.string(), /*read=*/true});
  fs::path resolved = fs::canonical(options.trust_bundle, ec);
  if (ec) {
    *bundle_path = options.trust_bundle;  // the worker's Open will report it missing
    return policy;
  }
  *bundle_path = resolved.string();
  // A bundle that is a symlink out of its directory (e.g. into /usr/share/ca-certificates)
  // is unveiled as that one file.
  std::string prefix = dir.string() + "/";
  if (!have_dir || resolved.string().compare(0, prefix.size(), prefix) != 0) {
    policy.paths.push_back(PathRule{resolved.string(), /*read=*/true});
  }
  return policy;
}

Oracle::Oracle(OracleOptions options) : options_(std::move(options)) {}

Oracle::~Oracle() {
  pool_.reset();  // kills and reaps the pool's workers before the broker goes
  broker_.reset();
}

absl::StatusOr<std::unique_ptr<Oracle>> Oracle::Create(OracleOptions options) {
  if (!WarmUpOpenSsl()) return absl::InternalError("OpenSSL could not be initialised");
  std::unique_ptr<Oracle> oracle(new Oracle(std::move(options)));
  oracle->have_default_cpus_ =
      sched_getaffinity(0, sizeof(oracle->default_cpus_), &oracle->default_cpus_) == 0;
  Policy policy = OraclePolicy(oracle->options_, &oracle->bundle_path_);
  BrokerOptions broker_options;
  broker_options.audit_fd = oracle->options_.audit_fd;
  ASSIGN_OR_RETURN(oracle->broker_, Broker::Create(broker_options));
  ASSIGN_OR_RETURN(oracle->policy_, oracle->broker_->Prepare(policy));
  WorkerConfig config;
  config.bundle_path = oracle->bundle_path_;
  bool crash_hook = oracle->options_.crash_hook_for_testing;
  config.garbage_hook_for_testing = crash_hook;
  oracle->main_ = [config, crash_hook](Client& client) {
    if (crash_hook) EnableCrashHookForTesting();
    return OracleWorkerMain(client, config);
  };
  if (oracle->options_.workers == OracleOptions::Workers::kPool) {
    WorkerPool::Options pool_options;
    pool_options.size = oracle->options_.pool_size;
    pool_options.stderr_fd = oracle->options_.stderr_fd;
    pool_options.name = "x509-pool";
    Oracle* self = oracle.get();
    pool_options.on_exit = [self](WorkerId id, const WorkerResult& result) {
      absl::MutexLock lock(&self->mu_);
      self->ended_[id] = result.ToString();
      self->pinned_cpu_.erase(id);
      while (self->ended_.size() > kMaxEndedReports) self->ended_.erase(self->ended_.begin());
    };
    ASSIGN_OR_RETURN(oracle->pool_, WorkerPool::Create(oracle->broker_.get(), oracle->policy_,
                                                       oracle->main_, pool_options));
  }
  return oracle;
}

std::string Oracle::VerifyPayload(absl::string_view payload) {
  return VerifyPayload(payload, nullptr);
}

std::string Oracle::VerifyPayload(absl::string_view payload, Verdict* verdict) {
  if (payload.size() > kMaxJobBytes) {
    return ErrorJson(absl::StrCat("request of ", payload.size(), " bytes exceeds the limit of ",
                                  kMaxJobBytes),
                     verdict);
  }
  return pool_ != nullptr ? VerifyInPool(payload, verdict)
                          : VerifyInFreshWorker(payload, verdict);
}

Verdict Oracle::Verify(const VerifyRequest& request, bool has_time, TrustSource trust) {
  Verdict verdict;
  (void)VerifyPayload(EncodeJob(request, has_time, trust), &verdict);
  return verdict;
}

std::string Oracle::DescribeEnd(WorkerId id, absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  auto reported = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ended_.count(id) != 0;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&reported), wait)) return "ended (no report yet)";
  std::string what = std::move(ended_[id]);
  ended_.erase(id);
  return what;
}

void Oracle::PinWorker(WorkerId id, int cpu) {
  {
    absl::MutexLock lock(&mu_);
    auto it = pinned_cpu_.find(id);
    if ((it == pinned_cpu_.end() ? -1 : it->second) == cpu) return;
  }
  cpu_set_t set;
  if (cpu >= 0) {
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
  } else if (have_default_cpus_) {
    set = default_cpus_;
  } else {
    return;
  }
  // The worker is leased to this thread: it is not reaped (and its pid not reused) unless
  // it dies meanwhile, which the exchange will see.
  pid_t pid = broker_->pid(id);
  if (pid <= 0 || sched_setaffinity(pid, sizeof(set), &set) != 0) return;
  absl::MutexLock lock(&mu_);
  if (cpu >= 0) {
    pinned_cpu_[id] = cpu;
  } else {
    pinned_cpu_.erase(id);
  }
}

std::string Oracle::VerifyInPool(absl::string_view payload, Verdict* verdict) {
  absl::Time deadline = absl::Now() + options_.timeout;
  InFlight in_flight(in_flight_);
  absl::StatusOr<WorkerPool::Lease> lease = pool_->Acquire(options_.timeout);
  if (!lease.ok()) return InternalErrorJson(absl::StrCat("no worker available: ", lease.status().message()), verdict);
  // A pooled worker that died while idle (killed, OOM) has not read this job: one retry
  // on the next worker. An idle worker never writes unprompted, so a readable or hung-up
  // channel before the job is sent means it is gone (or misbehaving): replace it.
  if (IdleWorkerGone(lease->fd())) {
    pool_->Release(*std::move(lease), /*healthy=*/false);
    {
      absl::MutexLock lock(&mu_);
      ++failed_workers_;
      ++retried_;
    }
    lease = pool_->Acquire(std::max(deadline - absl::Now(), absl::ZeroDuration()));
    if (!lease.ok()) {
      return InternalErrorJson(
          absl::StrCat("no worker available: ", lease.status().message()), verdict);
    }
  }
  // A serial caller and its worker share the caller's CPU (see colocate_single_caller);
  // otherwise the worker may run anywhere the oracle's process may.
  CallerPin caller_pin;
  int cpu = -1;
  if (options_.colocate_single_caller && in_flight.alone()) cpu = caller_pin.PinToCurrentCpu();
  PinWorker(lease->id(), cpu);
  absl::StatusOr<std::string> json = Exchange(lease->fd(), payload, deadline, verdict);
  caller_pin.Restore();
  if (json.ok()) {
    pool_->Release(*std::move(lease), /*healthy=*/true);
    return *std::move(json);
  }
  WorkerId id = lease->id();
  bool hang_up = IsHangUp(json.status());
  if (hang_up) {
    // Let the broker reap it first, so that its report says how it died (a signal, a
    // forbidden syscall) rather than "killed by the broker".
    absl::Time until = absl::Now() + absl::Milliseconds(500);
    while (broker_->pid(id) > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(1));
  }
  pool_->Release(*std::move(lease), /*healthy=*/false);
  {
    absl::MutexLock lock(&mu_);
    ++failed_workers_;
  }
  std::string end = DescribeEnd(id, absl::Seconds(2));
  if (hang_up) return InternalErrorJson(absl::StrCat("worker crashed: ", end), verdict);
  if (absl::IsDeadlineExceeded(json.status())) {
    return InternalErrorJson(absl::StrCat("worker timed out after ",
                                  absl::FormatDuration(options_.timeout), "; ", end), verdict);
  }
  return InternalErrorJson(absl::StrCat("worker failed: ", json.status().message(), "; ", end), verdict);
}

std::string Oracle::VerifyInFreshWorker(absl::string_view payload, Verdict* verdict) {
  absl::Time deadline = absl::Now() + options_.timeout;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return InternalErrorJson(absl::StrCat("socketpair: errno ", errno), verdict);
  }
  UniqueFd ours(sv[0]);
  SpawnOptions spawn;
  spawn.stdin_fd = sv[1];
  spawn.stdout_fd = sv[1];
  spawn.stderr_fd = options_.stderr_fd;
  spawn.name = "x509-fresh";
  absl::StatusOr<WorkerId> id = broker_->Spawn(policy_, main_, spawn);
  close(sv[1]);
  if (!id.ok()) return InternalErrorJson(absl::StrCat("spawning a worker: ", id.status().message()), verdict);
  absl::StatusOr<std::string> json = Exchange(ours.get(), payload, deadline, verdict);
  // EOF tells the worker to exit.
  ours.reset();
  if (!json.ok() && !IsHangUp(json.status())) broker_->Kill(*id);
  absl::Duration left = std::max(deadline - absl::Now(), absl::Seconds(1));
  absl::StatusOr<WorkerResult> result = broker_->Wait(*id, left);
  if (!result.ok()) {
    broker_->Kill(*id);
    result = broker_->Wait(*id);
  }
  std::string end = result.ok() ? result->ToString() : std::string(result.status().message());
  bool clean = result.ok() && result->kind == WorkerResult::Kind::kExited &&
               result->exit_code == 0;
  if (json.ok() && clean) return *std::move(json);
  absl::MutexLock lock(&mu_);
  ++failed_workers_;
  if (json.ok()) return InternalErrorJson(absl::StrCat("worker failed after answering: ", end), verdict);
  if (IsHangUp(json.status())) return InternalErrorJson(absl::StrCat("worker crashed: ", end), verdict);
  if (absl::IsDeadlineExceeded(json.status())) {
    return InternalErrorJson(absl::StrCat("worker timed out after ",
                                  absl::FormatDuration(options_.timeout), "; ", end), verdict);
  }
  return InternalErrorJson(absl::StrCat("worker failed: ", json.status().message(), "; ", end), verdict);
}

uint64_t Oracle::retried_requests() const {
  absl::MutexLock lock(&mu_);
  return retried_;
}

uint64_t Oracle::failed_workers() const {
  absl::MutexLock lock(&mu_);
  return failed_workers_;
}

size_t Oracle::idle_workers() const { return pool_ != nullptr ? pool_->idle() : 0; }

}  // namespace vow::x509
