#include "broker/worker_pool.h"

#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/syscall.h"

namespace vow {

WorkerPool::WorkerPool(Broker* broker, std::shared_ptr<const PreparedPolicy> policy,
                       WorkerMain main, Options options)
    : broker_(broker), policy_(std::move(policy)), main_(std::move(main)),
      options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(
    Broker* broker, std::shared_ptr<const PreparedPolicy> policy, WorkerMain main,
    Options options) {
  if (options.size == 0) return absl::InvalidArgumentError("a worker pool needs size >= 1");
  std::unique_ptr<WorkerPool> pool(
      new WorkerPool(broker, std::move(policy), std::move(main), std::move(options)));
  pool->thread_ = std::thread([p = pool.get()] { p->Run(); });
  // Wait for the first worker, so that a policy that cannot spawn fails here.
  absl::MutexLock lock(&pool->mu_);
  auto ready = [p = pool.get()]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
    return !p->idle_.empty() || !p->spawn_error_.ok();
  };
  pool->mu_.Await(absl::Condition(&ready));
  if (!pool->spawn_error_.ok()) return pool->spawn_error_;
  return pool;
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

absl::StatusOr<WorkerId> WorkerPool::SpawnOne(const SpawnOptions& spawn_options) {
  if (server_ != nullptr) {
    absl::StatusOr<WorkerId> id = broker_->SpawnFrom(*server_, spawn_options);
    if (id.ok()) return id;
    // Ended (its failure is audited by the broker), or an honest failure of its clone3:
    // either way this worker is spawned the ordinary way.
    const std::string failure = server_->failure();
    if (!failure.empty()) {
      server_.reset();
      absl::MutexLock lock(&mu_);
      server_pid_ = -1;
      server_note_ = absl::StrCat("fork server ended: ", failure);
    }
  }
  return broker_->Spawn(policy_, main_, spawn_options);
}

void WorkerPool::Run() {
  if (options_.fork_server == Options::ForkServerUse::kUse) {
    SpawnOptions shape;  // which of fds 0-2 each worker is given
    shape.stdin_fd = 0;
    shape.stdout_fd = 1;
    shape.stderr_fd = options_.stderr_fd;
    absl::StatusOr<std::unique_ptr<ForkServer>> server =
        broker_->StartForkServer(policy_, main_, shape);
    absl::MutexLock lock(&mu_);
    if (server.ok()) {
      server_ = *std::move(server);
      server_pid_ = server_->pid();
    } else {
      server_note_ = std::string(server.status().message());
      AuditEntry entry;
      entry.request = "fork server";
      entry.allowed = false;
      entry.reason = absl::StrCat("not used by pool ", options_.name, ": ", server_note_);
      broker_->audit().Record(std::move(entry));
    }
  }
  for (;;) {
    std::deque<WorkerId> dead;
    bool spawn = false;
    {
      absl::MutexLock lock(&mu_);
      auto want = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        size_t have = options_.size_counts_idle ? idle_.size() : live_;
        return have < options_.size && live_ < options_.max_live && spawn_error_.ok();
      };
      auto work = [this, &want]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !dead_.empty() || want();
      };
      if (!mu_.AwaitWithTimeout(absl::Condition(&work), absl::Seconds(1))) {
        spawn_error_ = absl::OkStatus();  // retry spawning after a failure
        continue;
      }
      if (stop_) break;
      dead.swap(dead_);
      spawn = want();
      if (spawn) ++live_;
    }
    for (WorkerId id : dead) {
      auto result = broker_->Wait(id);
      if (result.ok() && options_.on_exit) options_.on_exit(id, *result);
      absl::MutexLock lock(&mu_);
      all_.erase(id);
      --live_;
    }
    if (!spawn) continue;
    int sv[2];
    absl::StatusOr<WorkerId> id;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      id = ErrnoStatus(errno, "socketpair");
    } else {
      SpawnOptions spawn_options;
      spawn_options.stdin_fd = sv[1];
      spawn_options.stdout_fd = sv[1];
      spawn_options.stderr_fd = options_.stderr_fd;
      spawn_options.name = options_.name;
      id = SpawnOne(spawn_options);
      close(sv[1]);
    }
    absl::MutexLock lock(&mu_);
    if (!id.ok()) {
      --live_;
      spawn_error_ = id.status();
      close(sv[0]);
      continue;
    }
    Lease lease;
    lease.id_ = *id;
    lease.data_.reset(sv[0]);
    all_.insert(*id);
    idle_.push_back(std::move(lease));
  }
  // Stopping: end the server, then every worker, idle or lent, and reap them.
  server_.reset();
  {
    absl::MutexLock lock(&mu_);
    server_pid_ = -1;
  }
  std::set<WorkerId> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(all_);
    idle_.clear();
    dead_.clear();
  }
  for (WorkerId id : all) {
    broker_->Kill(id);
    (void)broker_->Wait(id);
  }
}

absl::StatusOr<WorkerPool::Lease> WorkerPool::Acquire(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || !spawn_error_.ok() || stop_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return absl::DeadlineExceededError("no idle worker in the pool");
  }
  if (!spawn_error_.ok() && idle_.empty()) return spawn_error_;
  if (stop_) return absl::CancelledError("the pool is stopping");
  Lease lease = std::move(idle_.front());
  idle_.pop_front();
  return lease;
}

void WorkerPool::Release(Lease lease, bool healthy) {
  if (lease.id_ == 0) return;
  if (healthy && broker_->pid(lease.id_) > 0) {
    absl::MutexLock lock(&mu_);
    idle_.push_back(std::move(lease));
    return;
  }
  broker_->Kill(lease.id_);
  lease.data_.reset();
  absl::MutexLock lock(&mu_);
  dead_.push_back(lease.id_);
}

size_t WorkerPool::idle() const {
  absl::MutexLock lock(&mu_);
  return idle_.size();
}

}  // namespace vow

namespace vow {

pid_t WorkerPool::fork_server_pid() const {
  absl::MutexLock lock(&mu_);
  return server_pid_;
}

std::string WorkerPool::fork_server_note() const {
  absl::MutexLock lock(&mu_);
  return server_note_;
}

}  // namespace vow
