// Network: connect requests, decided by the policy's connect rules (NetPolicy) and run on
// the task pool (a connect may wait for a slow peer). Runs in the privileged process; the
// address, port and unix path are the worker's bytes.
#include <errno.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/syscall.h"
#include "broker/audit_log.h"
#include "broker/broker_internal.h"
#include "broker/net_policy.h"

namespace vow {
namespace {

// How long a brokered TCP connect may take to be established.
constexpr absl::Duration kConnectDeadline = absl::Seconds(5);

}  // namespace

bool Broker::Impl::HandleConnect(Worker& w, const DecodedRequest& request, UniqueFd* attached,
                                 int nfds) {
  return SubmitChannelCall(w, request, &ConnectForWorker);
}

absl::StatusOr<UniqueFd> ConnectForWorker(pid_t pid, const PreparedPolicy& policy,
                                          const DecodedRequest& request,
                                          std::string* audit_request) {
  const ConnectTarget& target = request.target;
  *audit_request =
      target.transport == ConnectRule::Transport::kUnix
          ? absl::StrCat("connect unix path=\"", AuditLog::EscapeBytes(target.unix_path), "\"")
          : absl::StrCat("connect ",
                         target.transport == ConnectRule::Transport::kTcp ? "tcp" : "udp",
                         " address=", AuditLog::EscapeBytes(target.address, 16),
                         " port=", target.port);
  return policy.net.has_value()
             ? policy.net->Connect(target, MonotonicNow() + kConnectDeadline)
             : absl::StatusOr<UniqueFd>(ErrnoStatus(EACCES, "the policy has no connect rules"));
}

}  // namespace vow
