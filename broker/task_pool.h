// A small pool of threads for the broker's blocking work (opens and connects that may
// stall on a FIFO, a hung FUSE mount, a slow peer), so that the serving loop never
// blocks on a worker's behalf. Privileged side; runs trusted code only.
//
// Submit() never blocks: a task goes to an idle thread, or a new thread is started
// when none is idle (up to `max_threads`; beyond that tasks queue). A task stuck in the
// kernel therefore holds only its own thread. Threads beyond `min_threads` exit after
// being idle for a while. The destructor drops queued tasks and does NOT wait for
// running ones (a thread may be stuck in the kernel for good): each thread holds the
// pool's state, and a task must hold what it uses (the broker's tasks check BrokerLife
// before touching the broker).
#ifndef VOW_BROKER_TASK_POOL_H_
#define VOW_BROKER_TASK_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>

#include "absl/synchronization/mutex.h"

namespace vow {

class TaskPool {
 public:
  TaskPool(size_t min_threads, size_t max_threads);
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  void Submit(std::function<void()> task);

  // Starts threads until the pool has `n` (at most max_threads) and returns once each is
  // idle, waiting for a task: a caller that forks afterwards forks no thread in its own
  // start (which allocates under the allocator's locks). The first task then needs no
  // thread start of its own. Call before the first Submit (a thread busy with a task
  // would be waited for). Each of these threads also makes its malloc arena and touches
  // the first pages of its stack before it counts as idle (WarmThread in the .cc), so
  // the first task pays neither.
  void Prestart(size_t n);

  // For tests: the threads the pool has (started and not ended).
  size_t ThreadsForTesting();

 private:
  struct State;
  static void Run(std::shared_ptr<State> state, bool warm);
  void StartThread(bool warm);
  std::shared_ptr<State> state_;
};

}  // namespace vow

#endif  // VOW_BROKER_TASK_POOL_H_
