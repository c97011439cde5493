// A pool of pre-forked, already-locked workers: no fork on the request path. Runs in the
// broker.
//
// Each worker gets a private SOCK_STREAM socketpair as its stdin and stdout (its "data
// socket"); the caller speaks whatever job protocol it likes on the other end. A caller
// Acquire()s an idle worker, uses the data socket, and Release()s it: healthy, the worker
// goes back to the idle set; not healthy (a crash, a bad answer, a timeout), it is killed,
// its result is passed to `on_exit`, and a replacement is spawned.
//
// Workers come from a fork server (Broker::StartForkServer; README "Spawn, round 3"): a
// single-threaded copy of the broker, forked once by the pool's thread, makes each worker,
// so the broker's threads and page tables are not copied per worker. The worker is still
// the broker's child, locked down exactly as a Spawn()ed one. If the server cannot start
// or fails (dies, does not answer in time, sends anything but a new child's pidfd), it is
// ended, the reason is audited and kept (fork_server_note()), and the pool goes on with
// Broker::Spawn.
//
// All spawning happens on the pool's own thread, because PR_SET_PDEATHSIG follows the
// thread that forked: workers must not die with the request thread that happened to
// need a replacement. Thread-safe.
#ifndef VOW_BROKER_WORKER_POOL_H_
#define VOW_BROKER_WORKER_POOL_H_

#include <cstdint>
#include <deque>
#include <set>
#include <functional>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "broker/broker.h"

namespace vow {

class WorkerPool {
 public:
  struct Options {
    size_t size = 2;
    // false: `size` workers exist at all times, idle or lent (a fixed pool). true: `size`
    // idle workers are kept warm and lent ones do not count, so that a caller may hold a
    // worker for long (a renderer per tab) while the pool refills; `max_live` caps the
    // workers alive in total, idle or lent.
    bool size_counts_idle = false;
    size_t max_live = SIZE_MAX;
    int stderr_fd = -1;  // given to every worker as fd 2; -1: /dev/null
    std::string name = "pool";
    // kUse: spawn through a fork server (see above); kNone: Broker::Spawn each worker.
    enum class ForkServerUse : uint8_t { kUse, kNone };
    ForkServerUse fork_server = ForkServerUse::kUse;
    // Called on the pool's thread with the result of every worker that ended.
    std::function<void(WorkerId, const WorkerResult&)> on_exit;
  };

  // A worker lent to one caller. Move-only; hand it back with Release().
  class Lease {
   public:
    Lease() = default;
    int fd() const { return data_.get(); }
    WorkerId id() const { return id_; }

   private:
    friend class WorkerPool;
    WorkerId id_ = 0;
    UniqueFd data_;
  };

  // `main` runs in each worker after lock-down; it reads jobs from fd 0 and answers on
  // fd 1 (the same socket) until EOF.
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(
      Broker* broker, std::shared_ptr<const PreparedPolicy> policy, WorkerMain main,
      Options options);
  ~WorkerPool();

  // Waits (up to `timeout`) for an idle worker. If spawning fails, the error is returned
  // to callers while no worker is idle, and the pool retries every second.
  absl::StatusOr<Lease> Acquire(absl::Duration timeout = absl::Seconds(30));
  // Every Release() must happen before the pool is destroyed; the destructor ends every
  // worker, idle or lent.
  void Release(Lease lease, bool healthy);

  size_t idle() const;
  // The fork server's pid, or -1 when the pool spawns without one (for tests).
  pid_t fork_server_pid() const;
  // Why the pool spawns without a fork server ("" while it has one, or by kNone).
  std::string fork_server_note() const;

 private:
  WorkerPool(Broker* broker, std::shared_ptr<const PreparedPolicy> policy, WorkerMain main,
             Options options);
  void Run();
  absl::StatusOr<WorkerId> SpawnOne(const SpawnOptions& spawn_options);

  Broker* broker_;
  std::shared_ptr<const PreparedPolicy> policy_;
  WorkerMain main_;
  Options options_;
  mutable absl::Mutex mu_;
  std::deque<Lease> idle_ ABSL_GUARDED_BY(mu_);
  std::deque<WorkerId> dead_ ABSL_GUARDED_BY(mu_);  // killed, to be reaped and replaced
  std::set<WorkerId> all_ ABSL_GUARDED_BY(mu_);     // every worker not yet reaped
  size_t live_ ABSL_GUARDED_BY(mu_) = 0;            // spawned and not yet reaped
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status spawn_error_ ABSL_GUARDED_BY(mu_);
  // Used on the pool's thread only (made and ended there: PR_SET_PDEATHSIG).
  std::unique_ptr<ForkServer> server_;
  pid_t server_pid_ ABSL_GUARDED_BY(mu_) = -1;
  std::string server_note_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace vow

#endif  // VOW_BROKER_WORKER_POOL_H_
