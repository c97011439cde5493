#include "broker/task_pool.h"

#include <signal.h>
#include <pthread.h>
#include <stdlib.h>

#include <thread>
#include <utility>

#include "absl/time/time.h"

namespace vow {

struct TaskPool::State {
  absl::Mutex mu;
  std::deque<std::function<void()>> queue ABSL_GUARDED_BY(mu);
  size_t threads ABSL_GUARDED_BY(mu) = 0;
  size_t idle ABSL_GUARDED_BY(mu) = 0;
  size_t running ABSL_GUARDED_BY(mu) = 0;
  bool stop ABSL_GUARDED_BY(mu) = false;
  size_t min_threads = 0;
  size_t max_threads = 0;
};

TaskPool::TaskPool(size_t min_threads, size_t max_threads) : state_(std::make_shared<State>()) {
  state_->min_threads = min_threads;
  state_->max_threads = max_threads < 1 ? 1 : max_threads;
}

TaskPool::~TaskPool() {
  absl::MutexLock lock(&state_->mu);
  state_->stop = true;
  // Running tasks finish on their own (each holds the state); queued ones are dropped.
  state_->queue.clear();
}

void TaskPool::Submit(std::function<void()> task) {
  bool start = false;
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->stop) return;
    state_->queue.push_back(std::move(task));
    if (state_->idle < state_->queue.size() &&
        state_->threads < state_->max_threads) {
      ++state_->threads;
      start = true;
    }
  }
  if (start) StartThread(/*warm=*/false);
}

namespace {

// The stack a task of the broker's touches (a path decision and the worker's string:
// ~11 KiB measured), rounded up to whole pages.
constexpr size_t kWarmStackBytes = 16 * 1024;

// A thread's first malloc makes its arena (glibc: an mmap, an munmap, an mprotect and
// the first page written), and each stack page is a page fault when first touched
// (~14 us each on the project's VM, README "Start-up, round 6"). A prestarted thread
// does both before it is idle, so that the first task (the loader's first call of an
// exec'd program) does not.
__attribute__((noinline)) void WarmThread() {
  void* volatile block = malloc(64);
  free(block);
  volatile char stack[kWarmStackBytes];
  for (size_t i = 0; i < kWarmStackBytes; i += 4096) stack[i] = 0;
}

}  // namespace

void TaskPool::StartThread(bool warm) {
  // Threads of the broker never take SIGPIPE (a worker that went away is an errno).
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  std::thread(Run, state_, warm).detach();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void TaskPool::Prestart(size_t n) {
  size_t start = 0;
  {
    absl::MutexLock lock(&state_->mu);
    if (n > state_->max_threads) n = state_->max_threads;
    if (state_->stop || state_->threads >= n) return;
    start = n - state_->threads;
    state_->threads = n;
  }
  for (size_t i = 0; i < start; ++i) StartThread(/*warm=*/true);
  absl::MutexLock lock(&state_->mu);
  auto idle = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    return state_->stop || state_->idle >= n;
  };
  state_->mu.Await(absl::Condition(&idle));
}

size_t TaskPool::ThreadsForTesting() {
  absl::MutexLock lock(&state_->mu);
  return state_->threads;
}

void TaskPool::Run(std::shared_ptr<State> state, bool warm) {
  if (warm) WarmThread();
  for (;;) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&state->mu);
      ++state->idle;
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
        return state->stop || !state->queue.empty();
      };
      bool woke = state->mu.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(10));
      --state->idle;
      if (state->stop || (!woke && state->queue.empty() &&
                          state->threads > state->min_threads)) {
        --state->threads;
        return;
      }
      if (state->queue.empty()) continue;
      task = std::move(state->queue.front());
      state->queue.pop_front();
    }
    task();
  }
}

}  // namespace vow
