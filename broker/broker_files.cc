// Files: explicit opens (the Open request of a vow worker) and the glue that hands a path
// call (a trapped open, stat, access, readlink ... of any code in the worker, by seccomp
// user notification) to PathHandler. Both are decided by the policy's filesystem rules
// (FsPolicy) and run on the task pool, never on the serving thread. Runs in the privileged
// process; the path is the worker's bytes.
#include <errno.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/syscall.h"
#include "base/unique_fd.h"
#include "broker/audit_log.h"
#include "broker/broker_internal.h"
#include "broker/fs_policy.h"
#include "broker/path_handler.h"

namespace vow {

bool Broker::Impl::HandleOpen(Worker& w, const DecodedRequest& request, UniqueFd* attached,
                              int nfds) {
  // What can be decided without waiting (a refusal by the rules' strings, or a read or
  // write open of a file whose path is in the dentry cache on a local file system: kInline
  // in fs_policy.h) is answered here, without the hand-off to a pool thread and back; the
  // rest goes to the pool. A worker that has exited is not served (as SubmitChannelCall).
  if (!w.draining && w.policy->fs.has_value()) {
    OpenContext ctx;
    ctx.pid = w.pid;
    ctx.tid = w.pid;
    UniqueFd walk;
    std::optional<absl::StatusOr<UniqueFd>> decided =
        w.policy->fs->OpenWithoutBlocking(request.path, request.flags, ctx, &walk);
    if (decided.has_value()) {
      return AnswerOnLoop(w, request, *std::move(decided), std::move(walk));
    }
  }
  return SubmitChannelCall(w, request, &OpenForWorker);
}

bool Broker::Impl::AnswerOnLoop(Worker& w, const DecodedRequest& request,
                                absl::StatusOr<UniqueFd> fd, UniqueFd walk) {
  // The channel is non-blocking: a worker that does not read its answers fills the 16 KiB
  // its channel holds (SetUnreadAnswerBound) and is ended here (kAnswersUnread), never
  // waited for.
  absl::Status undelivered;
  const int rc = SendFdOrError(w.channel, request.id, fd, &undelivered);
  // Audited after the answer, as it went: an fd the kernel refused to send is a `deny`
  // with the reason (the worker got ENFILE). This thread holds mu_, so the line is in the
  // log before the worker can be reaped. The text (the path escaped, the flags named) is
  // built here, after the sendmsg: the worker is already running on its answer.
  std::string audit_request = OpenAuditText(request);
  const int err =
      undelivered.ok()
          ? AuditChannelCall(*audit_, w.id, w.pid, std::move(audit_request), fd)
          : AuditChannelCall(*audit_, w.id, w.pid, std::move(audit_request), undelivered);
  // Both closes after the answer: off the worker's wait when it runs on the other CPU;
  // one close_range when the two numbers are adjacent (they are in the steady state: the
  // walk takes the lowest free fd, the open the next).
  UniqueFd none;
  CloseBoth(fd.ok() ? *fd : none, walk);
  if (rc == kAnswersUnread) {
    End(w, WorkerResult::Kind::kLimitExceeded, UnreadAnswersReason());
    return false;
  }
  if (rc != 0 && rc != -EPIPE && rc != -ECONNRESET) {
    return ProtocolError(w, absl::StrCat("could not send a response: ", strerror(-rc)));
  }
  if ((err == EACCES || err == EPERM) && NoteRefusal(w)) return false;
  return !w.throttled;
}

std::string OpenAuditText(const DecodedRequest& request) {
  return absl::StrCat("open path=\"", AuditLog::EscapeBytes(request.path),
                      "\" flags=", AuditLog::DescribeOpenFlags(request.flags));
}

absl::StatusOr<UniqueFd> OpenForWorker(pid_t pid, const PreparedPolicy& policy,
                                       const DecodedRequest& request, std::string* audit_request) {
  *audit_request = OpenAuditText(request);
  OpenContext ctx;
  ctx.pid = pid;
  ctx.tid = pid;
  return policy.fs.has_value()
             ? policy.fs->Open(request.path, request.flags, request.mode, ctx)
             : absl::StatusOr<UniqueFd>(ErrnoStatus(EACCES, "the policy has no filesystem rules"));
}

void Broker::Impl::ServePathCall(std::shared_ptr<WorkerShared> shared, WorkerId id,
                                 struct seccomp_notif req, PathCall call,
                                 PathHandler* paths, std::shared_ptr<BrokerLife> life) {
  // A refused path call is one PathHandler recorded (the refusals it keeps plus those it
  // dropped past its cap); it counts against the worker's refusal throttle.
  auto refusals = [&shared] {
    absl::MutexLock lock(&shared->mu);
    return shared->refusals.size() + shared->refusals_dropped;
  };
  const size_t refused_before = refusals();
  // May block in the kernel. The handler outlives the broker while calls are in flight
  // (the destructor leaks it then), and its audit log is detached when the broker goes.
  paths->Handle(*shared, req, call);
  const bool refused = refusals() != refused_before;
  absl::ReaderMutexLock alive(&life->mu);
  if (life->gone) return;
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
