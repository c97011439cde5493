// The wire format of the broker's answers: each function encodes one wire::Response
// (ipc/protocol.capnp) and sends it. Requests are decoded by DecodeRequest (request.cc).
// Runs in the privileged process; nothing here reads worker bytes.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "broker/broker_internal.h"
#include "capnp/message.h"
#include "ipc/protocol.capnp.h"

namespace vow {

int SendHelloReply(const Channel& channel, uint64_t id) {
  capnp::MallocMessageBuilder builder(64);
  auto response = builder.initRoot<wire::Response>();
  response.setId(id);
  response.initHello().setVersion(wire::PROTOCOL_VERSION);
  return channel.Send(builder);
}

int SendTime(const Channel& channel, uint64_t id, absl::Time now) {
  timespec ts = absl::ToTimespec(now);
  capnp::MallocMessageBuilder builder(64);
  auto response = builder.initRoot<wire::Response>();
  response.setId(id);
  auto time = response.initTime();
  time.setSeconds(ts.tv_sec);
  time.setNanos(static_cast<uint32_t>(ts.tv_nsec));
  return channel.Send(builder);
}

int SendFdOrError(const Channel& channel, uint64_t id, const absl::StatusOr<UniqueFd>& fd,
                  absl::Status* undelivered) {
  if (fd.ok()) {
    // The bound on unread answers is the channel's send buffer (SetUnreadAnswerBound at
    // spawn): past it this sendmsg fails with EAGAIN and nothing is sent.
    // Four words (the root pointer; the id and the union's tag; one pointer slot), built
    // on the stack: no allocation per answered open. The first segment must be zeroed.
    capnp::word space[8] = {};
    capnp::MallocMessageBuilder builder(kj::arrayPtr(space, 8));
    auto response = builder.initRoot<wire::Response>();
    response.setId(id);
    response.setFd();
    const int rc = channel.Send(builder, fd->get());
    if (rc == -ETOOMANYREFS) {
      absl::Status refused =
          ErrnoStatus(ENFILE, "allowed by rule, but not sent: the broker has too many file "
                              "descriptors in flight to workers (sendmsg: ETOOMANYREFS)");
      if (undelivered != nullptr) *undelivered = refused;
      return SendFdOrError(channel, id, refused);
    }
    return rc == -EAGAIN ? kAnswersUnread : rc;
  }
  capnp::MallocMessageBuilder builder(256);
  auto response = builder.initRoot<wire::Response>();
  response.setId(id);
  auto error = response.initError();
  error.setErrno(ErrnoOrDefault(fd.status(), EACCES));
  error.setReason(std::string(fd.status().message().substr(0, 1024)));
  const int rc = channel.Send(builder);
  return rc == -EAGAIN ? kAnswersUnread : rc;
}

absl::Status SetUnreadAnswerBound(int channel_fd) {
  // The kernel doubles what it is given (for its own bookkeeping) and makes that the
  // socket's sk_sndbuf; read back to be sure the bound is the one documented.
  const int half = kMaxUnreadAnswerBytes / 2;
  RETURN_IF_ERROR(Syscall("setsockopt(SO_SNDBUF)", [&] {
                    return setsockopt(channel_fd, SOL_SOCKET, SO_SNDBUF, &half, sizeof(half));
                  }).status());
  int got = 0;
  socklen_t len = sizeof(got);
  RETURN_IF_ERROR(Syscall("getsockopt(SO_SNDBUF)", [&] {
                    return getsockopt(channel_fd, SOL_SOCKET, SO_SNDBUF, &got, &len);
                  }).status());
  if (got != kMaxUnreadAnswerBytes) {
    return absl::InternalError(absl::StrCat("the channel's send buffer is ", got,
                                            " bytes after asking for ", kMaxUnreadAnswerBytes,
                                            " (SO_SNDBUF ", half, "): the bound on unread "
                                            "answers would not hold"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<Channel, Channel>> WorkerChannelPair() {
  ASSIGN_OR_RETURN(auto pair, Channel::CreatePair());
  const int ours = pair.first.fd();
  RETURN_IF_ERROR(Syscall("fcntl(O_NONBLOCK)", [&] {
                    return fcntl(ours, F_SETFL, fcntl(ours, F_GETFL) | O_NONBLOCK);
                  }).status());
  RETURN_IF_ERROR(SetUnreadAnswerBound(ours));
  return pair;
}

std::string UnreadAnswersReason() {
  return absl::StrCat("does not read its answers: ", kMaxUnreadAnswerBytes,
                      " bytes of answers unread (the channel's bound), no more answers sent");
}

bool Broker::Impl::SendError(Worker& w, uint64_t id, int err, absl::string_view reason) {
  capnp::MallocMessageBuilder builder(256);
  auto response = builder.initRoot<wire::Response>();
  response.setId(id);
  auto error = response.initError();
  error.setErrno(err);
  error.setReason(std::string(reason.substr(0, 1024)));
  int rc = w.channel.Send(builder);
  if (rc != 0) return SendFailed(w, rc, "a response");
  return true;
}

bool Broker::Impl::SendFailed(Worker& w, int rc, absl::string_view what) {
  if (rc == -EPIPE || rc == -ECONNRESET) {
    // The worker is gone (it exited or crashed right after asking): not its fault, and its
    // pidfd will report how it ended. Keep reading what it sent before it went (a trap
    // report, say) until the channel reports EOF.
    return true;
  }
  if (rc == -EAGAIN) {
    // Its channel's send buffer (SetUnreadAnswerBound) is full: it does not read its answers.
    End(w, WorkerResult::Kind::kLimitExceeded, UnreadAnswersReason());
    return false;
  }
  End(w, WorkerResult::Kind::kProtocolError,
      absl::StrCat("could not send ", what, ": ", strerror(-rc)));
  return false;
}

}  // namespace vow
