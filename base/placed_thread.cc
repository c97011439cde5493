#include "base/placed_thread.h"

#include <errno.h>

#include <system_error>
#include <utility>

namespace vow {

struct PlacedThread::Start {
  std::function<void()> fn;
  cpu_set_t all;
  bool widen = false;
  std::shared_ptr<std::atomic<int>> first_cpu;
};

bool PlacedThread::OtherCpus(cpu_set_t* others, cpu_set_t* all, int* here_out) {
  CPU_ZERO(all);
  if (sched_getaffinity(0, sizeof(*all), all) != 0) return false;
  const int here = sched_getcpu();
  if (here < 0 || here >= CPU_SETSIZE) return false;
  if (here_out != nullptr) *here_out = here;
  *others = *all;
  CPU_CLR(here, others);
  return CPU_COUNT(others) > 0;
}

void* PlacedThread::Run(void* arg) {
  std::unique_ptr<Start> start(static_cast<Start*>(arg));
  start->first_cpu->store(sched_getcpu());
  // Back to the creator's mask: the start elsewhere was only a start.
  if (start->widen) (void)sched_setaffinity(0, sizeof(start->all), &start->all);
  start->fn();
  return nullptr;
}

PlacedThread::PlacedThread(std::function<void()> fn) {
  auto start = std::make_unique<Start>();
  start->fn = std::move(fn);
  start->first_cpu = first_cpu_;
  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_attr_init");
  cpu_set_t others;
  int here = -1;
  if (OtherCpus(&others, &start->all, &here) &&
      pthread_attr_setaffinity_np(&attr, sizeof(others), &others) == 0) {
    start->widen = true;
  }
  rc = pthread_create(&thread_, &attr, &PlacedThread::Run, start.get());
  if (rc != 0 && start->widen) {
    // The placement refused (a cpuset changed meanwhile): start it as usual.
    start->widen = false;
    pthread_attr_destroy(&attr);
    pthread_attr_init(&attr);
    rc = pthread_create(&thread_, &attr, &PlacedThread::Run, start.get());
  }
  pthread_attr_destroy(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_create");
  placed_ = start->widen;
  avoided_cpu_ = placed_ ? here : -1;
  start.release();  // the thread owns it now
  joinable_ = true;
}

PlacedThread::~PlacedThread() { join(); }

void PlacedThread::join() {
  if (!joinable_) return;
  pthread_join(thread_, nullptr);
  joinable_ = false;
}

}  // namespace vow
