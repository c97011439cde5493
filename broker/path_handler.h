// The broker's handler for path calls: the syscalls the filter sends to the broker
// (BrokeredSyscalls(): opens, the stat family, access, readlink, create/delete, chdir,
// execve, the loader's mmap) made by ANY code in a worker. Runs in the broker, on a
// task-pool thread (never on the serving loop); everything the worker supplies is
// hostile.
//
// For each notification: decode the registers (path_call.h), copy the path string(s)
// out of the worker (worker_memory.h), check the notification is still live, resolve a
// relative path against the worker's directory as the BROKER knows it, choose the rules
// that decide (the worker's own rules if one covers the path, else the libc set, else
// the loader set for an exec'd image), check the promise the call needs (rules only;
// the sets need none), do the call itself and answer: an fd injected with
// SECCOMP_IOCTL_NOTIF_ADDFD + SECCOMP_ADDFD_FLAG_SEND, a struct stat / link text
// written into the worker, or an errno. SECCOMP_USER_NOTIF_FLAG_CONTINUE is used for
// exactly two things, never for a path the kernel would resolve: the broker's own first
// execve of an exec'd image (its child, before any worker code ran), and an mmap of an
// fd whose file the broker checked is a library of the loader set.
// A refusal is EACCES (a rule or promise says no) or ENOENT (no rule covers the path:
// the worker may not know it exists), audited with the path and recorded in the
// worker's result; it never ends the worker by itself.
#ifndef VOW_BROKER_PATH_HANDLER_H_
#define VOW_BROKER_PATH_HANDLER_H_

#include <linux/seccomp.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "broker/audit_log.h"
#include "broker/exec_tracer.h"
#include "broker/fs_policy.h"
#include "broker/net_policy.h"
#include "broker/path_call.h"
#include "broker/refusal.h"
#include "policies/policy.h"

namespace vow {


// What a path-call handler needs of one worker. Shared between the serving loop and the
// task-pool thread handling its call; fields under `mu` change after spawn.
struct WorkerShared {
  uint64_t id = 0;
  pid_t pid = -1;
  PromiseSet promises;
  Penalty penalty = Penalty::kKill;
  bool exec_image = false;
  // The program is a #! script run by its interpreter: the interpreter's read-only opens
  // of exactly `script_path` are answered from `script_fd` (broker.cc, SpawnCommon).
  std::string script_path;
  UniqueFd script_fd;
  bool libc_set = true;
  const FsPolicy* fs = nullptr;  // the worker's rules, or null; owned by `keep`
  const NetPolicy* net = nullptr;  // the worker's connect rules, or null
  std::shared_ptr<const void> keep;
  UniqueFd listener;  // the seccomp listener (the loop holds the epoll registration)
  // With execpromises narrower than `promises` (exec'd programs only): the tracer that
  // narrows every image the worker execs, and what those images (and their forks) hold.
  // Path calls are decided with CallerPromises(), never `promises` alone.
  std::shared_ptr<const ExecTracer> tracer;
  PromiseSet exec_promises;

  absl::Mutex mu;
  std::string cwd ABSL_GUARDED_BY(mu);  // relative paths resolve against this
  bool exec_done ABSL_GUARDED_BY(mu) = false;
  std::vector<Refusal> refusals ABSL_GUARDED_BY(mu);
  uint64_t refusals_dropped ABSL_GUARDED_BY(mu) = 0;
};

// The promises of the thread that made a call: the worker's own, or, for an image the
// worker exec'd (and its forks), the execpromises, as the exec tracer knows them (a
// thread it does not know gets the execpromises).
PromiseSet CallerPromises(const WorkerShared& w, pid_t tid);

class PathHandler {
 public:
  // Opens the libc and loader sets (what exists of them on this machine).
  static absl::StatusOr<std::unique_ptr<PathHandler>> Create(AuditLog* audit);

  // Answers one notification (already received) for `w`. Blocking; call off the loop.
  void Handle(WorkerShared& w, const struct seccomp_notif& req, const PathCall& call);

  // From now on nothing is audited (the broker and its audit log are going away while a
  // call may still be stuck in the kernel). Thread-safe.
  void DetachAudit();

 private:
  struct Answer;
  explicit PathHandler(AuditLog* audit) : audit_(audit) {}
  Answer Decide(WorkerShared& w, const struct seccomp_notif& req, const PathCall& call,
                std::string* described);
  Answer DecideInner(WorkerShared& w, const struct seccomp_notif& req, const PathCall& call,
                     std::string* described, std::string* learned, std::string* abs);
  Answer Connect(WorkerShared& w, const struct seccomp_notif& req, const PathCall& call,
                 std::string* described);
  void Audit(const WorkerShared& w, const std::string& what, bool allowed,
             const std::string& reason);

  absl::Mutex audit_mu_;
  AuditLog* audit_ ABSL_GUARDED_BY(audit_mu_);
  std::optional<FsPolicy> libc_;
  std::optional<FsPolicy> loader_;
  std::optional<FsPolicy> learning_;  // "/" rwc: what learning mode performs calls under
  std::vector<std::string> loader_real_dirs_;
  // Entries of the libc and loader sets that do not exist here: probing them is
  // answered ENOENT, as the kernel would, and is not a refusal.
  std::vector<std::string> absent_;
};

}  // namespace vow

#endif  // VOW_BROKER_PATH_HANDLER_H_
