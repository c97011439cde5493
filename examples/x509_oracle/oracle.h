// The oracle's front end: owns a Broker and the sandboxed workers that do every
// verification. Runs in the BROKER (trusted) process; verdicts coming back from workers
// are hostile bytes (a worker may be compromised) and are bounded and checked.
//
// Two ways to run workers:
//  - kPool: a WorkerPool of persistent, pre-forked, locked workers; a worker that does
//    not answer properly (EOF = crash, a frame that is too big or not a verdict, a
//    timeout) is released as unhealthy, i.e. killed and replaced by the pool;
//  - kFresh: a new worker per request (spawned from the calling thread; it lives only for
//    that request).
// Every worker has the policy OraclePolicy(): promises `stdio`, penalty kill, read-only
// access to the trust bundle (its directory, by default /etc/ssl/certs, and its resolved
// target if that lies outside), and the clock rule of the options.
//
// Create() calls WarmUpOpenSsl() in this process before any worker is forked: workers
// inherit the warmed state (see verify.h).
//
// Thread-safe: VerifyPayload/Verify may be called from many threads at once.
#ifndef VOW_EXAMPLES_X509_ORACLE_ORACLE_H_
#define VOW_EXAMPLES_X509_ORACLE_ORACLE_H_

#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "broker/worker_pool.h"
#include "examples/x509_oracle/protocol.h"
#include "examples/x509_oracle/verify.h"
#include "policies/policy.h"

namespace vow::x509 {

inline constexpr char kSystemTrustBundle[] = "/etc/ssl/certs/ca-certificates.crt";

struct OracleOptions {
  enum class Workers { kPool, kFresh };
  Workers workers = Workers::kPool;
  size_t pool_size = 2;
  // The workers' clock rule: what "now" is for a request that names no time.
  ClockRule clock;  // default: real time
  // Per request: waiting for an idle worker, sending the job, and getting the verdict.
  absl::Duration timeout = absl::Seconds(30);
  // The bundle a job with TrustSource::kSystem is verified against (absolute path).
  std::string trust_bundle = kSystemTrustBundle;
  // Test only: workers abort() on kCrashMagic (EnableCrashHookForTesting() is called in
  // the worker, never in this process) and answer garbage on kGarbageMagic
  // (oracle_worker.h).
  bool crash_hook_for_testing = false;
  int stderr_fd = -1;  // the workers' fd 2; -1: /dev/null
  int audit_fd = -1;   // the broker's audit log; -1: kept in memory
  // Pool mode: a request that is the only one in flight runs its worker on the caller's
  // CPU: for the exchange, the calling thread and the leased worker are pinned to the CPU
  // the caller is on (the caller's own affinity is restored before VerifyPayload
  // returns); with two or more requests in flight, workers keep the affinity the oracle's
  // process had at Create and callers are not touched. A serial caller and its worker
  // then hand the CPU to each other instead of waking each other across CPUs (on the
  // project's 2-vCPU VM: two cross-CPU wake-ups cost ~100 us per request, and the
  // round trip's syscalls 2-4x more; see README "Pool 1x1: where the time goes").
  // Performance only: a pinning that fails is ignored.
  bool colocate_single_caller = true;
};

// The policy of every oracle worker (see the file comment). `bundle_path` is where the
// worker will open the bundle (set by the function: the resolved path of
// options.trust_bundle).
Policy OraclePolicy(const OracleOptions& options, std::string* bundle_path);

class Oracle {
 public:
  static absl::StatusOr<std::unique_ptr<Oracle>> Create(OracleOptions options);
  ~Oracle();
  Oracle(const Oracle&) = delete;
  Oracle& operator=(const Oracle&) = delete;

  // One job payload (EncodeJob's output, protocol.h) -> the verdict JSON. Never fails: a
  // malformed job, a crashed or silent worker, a timeout all become an error verdict's
  // JSON (input_error says what happened, e.g. "worker crashed: killed by signal 6
  // (Aborted)"). The payload is not parsed here; the worker decodes it.
  std::string VerifyPayload(absl::string_view payload);
  // The same, and *verdict gets the decoded verdict (the oracle decodes every worker's
  // answer anyway, to check it), so a caller that wants the struct need not parse the
  // JSON again.
  std::string VerifyPayload(absl::string_view payload, Verdict* verdict);

  // Convenience: encodes `request` (with its time_unix if has_time, else the worker takes
  // the clock's time; its trusted certificates, or the system bundle with kSystem),
  // verifies it in a worker, and decodes the verdict.
  Verdict Verify(const VerifyRequest& request, bool has_time = true,
                 TrustSource trust = TrustSource::kRequest);

  // Workers that ended while or after serving a request they did not answer properly
  // (pool mode: each was replaced).
  uint64_t failed_workers() const;
  // Pool mode: requests that found their worker dead before sending the job and were
  // sent to another worker instead (the dead one counts in failed_workers()).
  uint64_t retried_requests() const;
  // Pool mode: idle workers right now (0 in fresh mode).
  size_t idle_workers() const;
  Broker& broker() { return *broker_; }
  const std::string& bundle_path() const { return bundle_path_; }

 private:
  explicit Oracle(OracleOptions options);
  std::string VerifyInPool(absl::string_view payload, Verdict* verdict);
  std::string VerifyInFreshWorker(absl::string_view payload, Verdict* verdict);
  // Waits (briefly) for the pool's report of how worker `id` ended.
  std::string DescribeEnd(WorkerId id, absl::Duration wait);
  // colocate_single_caller: pins the leased worker `id` to `cpu` (-1: back to
  // default_cpus_) unless it is pinned so already.
  void PinWorker(WorkerId id, int cpu);

  OracleOptions options_;
  std::string bundle_path_;
  std::unique_ptr<Broker> broker_;
  std::shared_ptr<const PreparedPolicy> policy_;
  WorkerMain main_;
  std::unique_ptr<WorkerPool> pool_;

  mutable absl::Mutex mu_;
  std::map<WorkerId, std::string> ended_ ABSL_GUARDED_BY(mu_);  // pool on_exit reports
  uint64_t failed_workers_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t retried_ ABSL_GUARDED_BY(mu_) = 0;
  // colocate_single_caller: requests in the pool path right now, and each worker's
  // pinned CPU (-1 or absent: default_cpus_).
  std::atomic<int> in_flight_{0};
  std::map<WorkerId, int> pinned_cpu_ ABSL_GUARDED_BY(mu_);
  cpu_set_t default_cpus_;  // the affinity of the thread that called Create
  bool have_default_cpus_ = false;
};

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_ORACLE_H_
