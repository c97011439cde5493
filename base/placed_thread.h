// A thread that starts on another CPU than the thread that creates it.
//
// This VM's kernel (6.18 with a vCPU-packing scheduler patch, /proc/sys/kernel/sched_vcpu_pack)
// queues a new thread on its creator's CPU and leaves it there while the creator keeps
// that CPU busy, even with the other CPU idle: in a test loop (a creator busy for 1.5 ms
// after pthread_create, 200 creations) the new thread's first instruction came a median
// 1.5 ms later (after the creator's busy spell) in 82-88% of the creations; with its
// first CPU set to another one, 88-109 us (README "Start-up, round 11"). A thread made to
// work beside its busy creator (vow run's compile thread) is therefore started elsewhere.
//
// The placement is only where it starts: before it runs `fn` the thread widens its
// affinity back to its creator's mask (glibc applies the attribute's mask before the
// thread's first instruction, so the widening comes after it). A creator whose mask
// allows no other CPU starts it as usual.
#ifndef VOW_BASE_PLACED_THREAD_H_
#define VOW_BASE_PLACED_THREAD_H_

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <functional>
#include <memory>

namespace vow {

class PlacedThread {
 public:
  // Starts `fn`. Throws std::system_error, as std::thread does, when no thread can be made.
  explicit PlacedThread(std::function<void()> fn);
  ~PlacedThread();  // joins
  PlacedThread(const PlacedThread&) = delete;
  PlacedThread& operator=(const PlacedThread&) = delete;

  bool joinable() const { return joinable_; }
  void join();
  // Whether the thread was started on another CPU than its creator's (false: the
  // creator's mask allowed no other, or the CPU could not be read).
  bool placed() const { return placed_; }
  // The creator's CPU when it made the thread (-1: not known), and the CPU the thread
  // ran its first instruction on (-1 until it has); for tests.
  int avoided_cpu() const { return avoided_cpu_; }
  int first_cpu() const { return first_cpu_->load(); }

  // The mask a thread made now by the calling thread would start with: the caller's
  // mask without the CPU it runs on. False when that leaves nothing (or on error).
  static bool OtherCpus(cpu_set_t* others, cpu_set_t* all, int* here = nullptr);

 private:
  struct Start;
  static void* Run(void* arg);
  pthread_t thread_{};
  bool joinable_ = false;
  bool placed_ = false;
  int avoided_cpu_ = -1;
  std::shared_ptr<std::atomic<int>> first_cpu_ = std::make_shared<std::atomic<int>>(-1);
};

}  // namespace vow

#endif  // VOW_BASE_PLACED_THREAD_H_
