// Files: explicit opens (the Open request of a vow worker) and the glue that hands a path
// call (a trapped open, stat, access, readlink ... of any code in the worker, by seccomp
// user notification) to PathHandler. Both are decided by the policy's filesystem rules
// (FsPolicy) and run on the task pool, never on the serving thread. Runs in the privileged
// process; the path is the worker's bytes.
#include <errno.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/syscall.h"
#include "broker/audit_log.h"
#include "broker/broker_internal.h"
#include "broker/fs_policy.h"
#include "broker/path_handler.h"

namespace vow {

bool Broker::Impl::HandleOpen(Worker& w, const DecodedRequest& request, UniqueFd* attached,
                              int nfds) {
  return SubmitChannelCall(w, request, &OpenForWorker);
}

absl::StatusOr<UniqueFd> OpenForWorker(pid_t pid, const PreparedPolicy& policy,
                                       const DecodedRequest& request, std::string* audit_request) {
  *audit_request = absl::StrCat("open path=\"", AuditLog::EscapeBytes(request.path),
                                "\" flags=", AuditLog::DescribeOpenFlags(request.flags));
  OpenContext ctx;
  ctx.pid = pid;
  ctx.tid = pid;
  return policy.fs.has_value()
             ? policy.fs->Open(request.path, request.flags, request.mode, ctx)
             : absl::StatusOr<UniqueFd>(ErrnoStatus(EACCES, "the policy has no filesystem rules"));
}

void Broker::Impl::ServePathCall(std::shared_ptr<WorkerShared> shared, WorkerId id,
                                 struct seccomp_notif req, PathCall call) {
  // A refused path call is one PathHandler recorded (the refusals it keeps plus those it
  // dropped past its cap); it counts against the worker's refusal throttle.
  auto refusals = [&shared] {
    absl::MutexLock lock(&shared->mu);
    return shared->refusals.size() + shared->refusals_dropped;
  };
  const size_t refused_before = refusals();
  paths_->Handle(*shared, req, call);
  const bool refused = refusals() != refused_before;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(id);
    if (it != workers_.end() && !it->second->reaped) {
      Worker& w = *it->second;
      w.path_call_in_flight = false;
      if (!(refused && NoteRefusal(w)) && !w.throttled && w.listener_registered) {
        ArmListener(*shared, id, true);
      }
    }
  }
  --calls_in_flight_;
}

}  // namespace vow
