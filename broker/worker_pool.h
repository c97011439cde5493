// A pool of pre-forked, already-locked workers: no fork on the request path. Runs in the
// broker.
//
// Each worker gets a private SOCK_STREAM socketpair as its stdin and stdout (its "data
// socket"); the caller speaks whatever job protocol it likes on the other end. A caller
// Acquire()s an idle worker, uses the data socket, and Release()s it: healthy, the worker
// goes back to the idle set; not healthy (a crash, a bad answer, a timeout), it is killed,
// its result is passed to `on_exit`, and a replacement is spawned.
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

 private:
  WorkerPool(Broker* broker, std::shared_ptr<const PreparedPolicy> policy, WorkerMain main,
             Options options);
  void Run();

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
  std::thread thread_;
};

}  // namespace vow

#endif  // VOW_BROKER_WORKER_POOL_H_
