// A small stock of fresh, unused network and IPC namespaces, made ahead of time by one
// background thread of the broker, so that a forked worker enters one with setns() (a
// few microseconds) instead of making it with unshare() on the spawn path (~0.4 ms for a
// network namespace on the project's VM; README "Spawn"). Runs in the broker.
//
// What it promises (and what spawn_test checks):
//  - every namespace is made by unshare() in the stock's own thread, for one worker: it is
//    handed out once by Take() and the stock keeps no copy of its fd; the spawn closes its
//    fd once forked. Nothing is shared between workers or reused, with one exception the
//    broker makes (not the stock): a policy whose promises reach nothing in a network or
//    IPC namespace keeps one pair taken here for all its forked workers
//    (PreparedPolicy::share_net_ipc, README "Spawn, round 7");
//  - a namespace made here is owned by the broker's user namespace, exactly like one a
//    forked child makes with unshare() as root before it drops its identity: a worker
//    that dropped its identity and entered its own user namespace has no capability over
//    it (no interface, no route, no SysV object of another worker: there is none);
//  - the maker thread does nothing else: it unshares, opens the two namespaces' fds from
//    /proc/thread-self/ns and goes back into the broker's own namespaces with setns();
//    no broker work (a connect, an open) ever runs in a thread that is in a worker's
//    namespace. If any of its steps fails it stops making (and, if it could not go back,
//    stays where it is, idle, until the broker ends);
//  - fail closed: when the stock is empty (a burst of spawns, the maker failed, the first
//    spawn), Take() returns nothing and the worker unshares its own, as before.
// The thread starts at the first Take() (or Start()), so a broker that never spawns a
// worker with a network or IPC namespace has neither the thread nor the namespaces. With
// depth 0 there is no thread and Take() always returns nothing.
#ifndef VOW_BROKER_NAMESPACE_STOCK_H_
#define VOW_BROKER_NAMESPACE_STOCK_H_

#include <array>
#include <cstddef>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"

namespace vow {

class NamespaceStock {
 public:
  // One fresh pair: both made by the same unshare(CLONE_NEWNET | CLONE_NEWIPC).
  struct Fresh {
    UniqueFd net;
    UniqueFd ipc;
  };

  static constexpr size_t kMaxDepth = 8;
  // Keeps up to `depth` pairs ready (at most kMaxDepth). `once`: Start() makes `depth`
  // pairs on the calling thread and none is ever replaced (no thread).
  explicit NamespaceStock(size_t depth = 4, bool once = false)
      : depth_(depth < kMaxDepth ? depth : kMaxDepth), once_(once) {}
  // Stops the thread (waits for a namespace being made) and closes what is in stock.
  ~NamespaceStock();
  NamespaceStock(const NamespaceStock&) = delete;
  NamespaceStock& operator=(const NamespaceStock&) = delete;

  // One pair from the stock (the caller owns it and must give it to one worker only),
  // or two invalid fds when the stock is empty: then the worker makes its own. Tells the
  // thread to make none until Done(); starts the thread on the first call. Never blocks
  // on the making of a namespace, except in `once` mode, where the pairs are made for the
  // spawns that take them: a pair being made is waited for (the maker is this stock's
  // own thread, started at Start(); it ends, and the wait with it, when it fails).
  Fresh Take();
  // Starts the thread now (if it has not started), so that the first Take() finds pairs
  // ready; returns once it runs (as Take() does). In `once` mode there is no thread: the
  // calling thread makes the `depth` pairs itself, with the same steps (unshare, open the
  // two fds, setns back home), and an error means it could not go back into its own
  // namespaces (the caller must not go on as the broker). Failing to make a pair is not
  // an error: the workers then make their own. With depth 0, does nothing.
  [[nodiscard]] absl::Status Start();
  // Ends what Take() began: the thread may make the replacement now. Each Take() is
  // followed by one Done(), after the caller's fork: making a namespace while the caller
  // forks would put a running thread of the caller's address space on the other CPU, and
  // every page the fork write-protects (and every copy-on-write fault after it) would
  // then need a TLB shoot-down IPI to it (README "Spawn").
  void Done();

  // For tests and benchmarks: how many pairs are ready now; waits up to `timeout_ms` for
  // the stock to be full first (0: no wait).
  size_t Ready(int timeout_ms = 0);
  // Why the maker stopped ("" while it works).
  std::string failure();

 private:
  void Run();
  void StartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One fresh pair made by the calling thread, which is back in home_net/home_ipc after:
  // false with *what and *err on a failure; *stranded (if given): it could not go back.
  static bool MakePair(int home_net, int home_ipc, Fresh* out, const char** what, int* err,
                       bool* stranded);

  const size_t depth_;
  const bool once_;
  absl::Mutex mu_;
  // A fixed array, not a container that allocates: the maker thread never calls malloc,
  // so glibc gives it no arena of its own (64 MiB of address space every forked worker
  // would inherit).
  std::array<Fresh, kMaxDepth> ready_ ABSL_GUARDED_BY(mu_);
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;  // ready_[0, count_) hold pairs
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // Set by the maker thread once it runs: Take() waits for it, so that the new thread's
  // own start (its stack, TLS, absl's per-thread identity, a sanitizer's thread state:
  // allocations under locks) is over before the caller forks. A fork while that start
  // held an allocator lock left the child with the lock held forever (seen under ASan:
  // a worker's first pthread_create hung in the allocator).
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  int in_progress_ ABSL_GUARDED_BY(mu_) = 0;  // Take()s not yet Done()
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::string failure_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace vow

#endif  // VOW_BROKER_NAMESPACE_STOCK_H_
