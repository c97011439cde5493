#include "broker/namespace_stock.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace vow {

bool NamespaceStock::MakePair(int home_net, int home_ipc, Fresh* out, const char** what,
                              int* err, bool* stranded) {
  if (stranded != nullptr) *stranded = false;
  // Only this thread moves: namespaces are per thread (net and IPC may be unshared by
  // one thread of a multithreaded process).
  if (unshare(CLONE_NEWNET | CLONE_NEWIPC) != 0) {
    *what = "unshare";
    *err = errno;
    return false;
  }
  Fresh fresh;
  fresh.net.reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  const int net_errno = errno;
  fresh.ipc.reset(open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC));
  const int ipc_errno = errno;
  // Back home before anything else.
  if (setns(home_net, CLONE_NEWNET) != 0 || setns(home_ipc, CLONE_NEWIPC) != 0) {
    *what = "setns back into the broker's namespaces";
    *err = errno;
    if (stranded != nullptr) *stranded = true;
    return false;
  }
  if (!fresh.net.valid() || !fresh.ipc.valid()) {
    *what = !fresh.net.valid() ? "open the new network namespace" : "open the new IPC namespace";
    *err = !fresh.net.valid() ? net_errno : ipc_errno;
    return false;
  }
  *out = std::move(fresh);
  return true;
}

NamespaceStock::~NamespaceStock() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void NamespaceStock::StartLocked() {
  if (started_ || depth_ == 0) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  auto running = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return running_; };
  mu_.Await(absl::Condition(&running));
}

absl::Status NamespaceStock::Start() {
  absl::MutexLock lock(&mu_);
  if (!once_) {
    StartLocked();
    return absl::OkStatus();
  }
  if (started_ || depth_ == 0) return absl::OkStatus();
  started_ = true;
  UniqueFd home_net(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  UniqueFd home_ipc(open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC));
  if (!home_net.valid() || !home_ipc.valid()) {
    failure_ = absl::StrCat("namespace stock: open /proc/thread-self/ns: ", strerror(errno));
    return absl::OkStatus();  // nothing made: the workers make their own
  }
  while (count_ < depth_) {
    Fresh fresh;
    const char* what = nullptr;
    int err = 0;
    bool stranded = false;
    if (!MakePair(home_net.get(), home_ipc.get(), &fresh, &what, &err, &stranded)) {
      failure_ = absl::StrCat("namespace stock: ", what, ": ", strerror(err));
      // A caller left in a fresh namespace must not go on as the broker.
      if (stranded) return absl::InternalError(failure_);
      return absl::OkStatus();
    }
    ready_[count_++] = std::move(fresh);
  }
  return absl::OkStatus();
}

NamespaceStock::Fresh NamespaceStock::Take() {
  absl::MutexLock lock(&mu_);
  ++in_progress_;
  if (!once_) StartLocked();
  Fresh fresh;
  if (count_ > 0) {
    // Moved out: the stock keeps no copy, this pair is the caller's alone.
    fresh = std::move(ready_[--count_]);
  }
  return fresh;
}

void NamespaceStock::Done() {
  absl::MutexLock lock(&mu_);
  if (in_progress_ > 0) --in_progress_;  // the maker's Await condition sees it
}

size_t NamespaceStock::Ready(int timeout_ms) {
  absl::MutexLock lock(&mu_);
  if (timeout_ms > 0) {
    auto full = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return count_ >= depth_ || !failure_.empty();
    };
    mu_.AwaitWithTimeout(absl::Condition(&full), absl::Milliseconds(timeout_ms));
  }
  return count_;
}

std::string NamespaceStock::failure() {
  absl::MutexLock lock(&mu_);
  return failure_;
}

void NamespaceStock::Run() {
  {
    absl::MutexLock lock(&mu_);
    running_ = true;
  }
  auto fail = [this](const char* what, int err) {
    absl::MutexLock lock(&mu_);
    failure_ = absl::StrCat("namespace stock: ", what, ": ", strerror(err));
  };
  // The broker's own namespaces, to come back to after each unshare.
  UniqueFd home_net(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  UniqueFd home_ipc(open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC));
  if (!home_net.valid() || !home_ipc.valid()) {
    return fail("open /proc/thread-self/ns of the broker", errno);
  }
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto wanted = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stop_ || (count_ < depth_ && in_progress_ == 0);
      };
      mu_.Await(absl::Condition(&wanted));
      if (stop_) return;
    }
    Fresh fresh;
    const char* what = nullptr;
    int err = 0;
    // A thread that cannot go back home does nothing more.
    if (!MakePair(home_net.get(), home_ipc.get(), &fresh, &what, &err, nullptr)) {
      return fail(what, err);
    }
    absl::MutexLock lock(&mu_);
    ready_[count_++] = std::move(fresh);
  }
}

}  // namespace vow
