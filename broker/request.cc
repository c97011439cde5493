#include "broker/request.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "capnp/serialize.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"

namespace vow {

absl::StatusOr<DecodedRequest> DecodeRequest(const capnp::word* data, size_t bytes) {
  if (CheckFraming(data, bytes) != 0) {
    return absl::InvalidArgumentError("malformed message framing");
  }
  DecodedRequest out;
  std::string error;
  KJ_IF_MAYBE(exception, kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(data, bytes / sizeof(capnp::word)),
                                         ReaderLimits());
    auto request = reader.getRoot<wire::Request>();
    out.id = request.getId();
    switch (request.which()) {
      case wire::Request::HELLO: {
        out.kind = DecodedRequest::Kind::kHello;
        auto hello = request.getHello();
        out.version = hello.getVersion();
        out.listener_attached = hello.getListenerAttached();
        return;
      }
      case wire::Request::GET_FILTER:
        out.kind = DecodedRequest::Kind::kGetFilter;
        return;
      case wire::Request::OPEN: {
        out.kind = DecodedRequest::Kind::kOpen;
        auto open = request.getOpen();
        auto path = open.getPath();
        out.path.assign(reinterpret_cast<const char*>(path.begin()), path.size());
        out.flags = open.getFlags();
        out.mode = open.getMode();
        return;
      }
      case wire::Request::CONNECT: {
        out.kind = DecodedRequest::Kind::kConnect;
        auto connect = request.getConnect();
        switch (connect.getTransport()) {
          case wire::Connect::Transport::TCP:
            out.target.transport = ConnectRule::Transport::kTcp;
            break;
          case wire::Connect::Transport::UDP:
            out.target.transport = ConnectRule::Transport::kUdp;
            break;
          case wire::Connect::Transport::UNIX:
            out.target.transport = ConnectRule::Transport::kUnix;
            break;
          default:
            error = absl::StrCat("connect: unknown transport ",
                                 static_cast<int>(connect.getTransport()));
            return;
        }
        auto address = connect.getAddress();
        out.target.address.assign(reinterpret_cast<const char*>(address.begin()),
                                  address.size());
        out.target.port = connect.getPort();
        auto path = connect.getPath();
        out.target.unix_path.assign(reinterpret_cast<const char*>(path.begin()), path.size());
        return;
      }
      case wire::Request::CLOCK:
        out.kind = DecodedRequest::Kind::kClock;
        return;
      case wire::Request::VIOLATION: {
        out.kind = DecodedRequest::Kind::kViolation;
        auto violation = request.getViolation();
        out.syscall = violation.getSyscall();
        out.arch = violation.getArch();
        auto args = violation.getArgs();
        if (args.size() != 6) {
          error = absl::StrCat("violation: ", args.size(), " arguments, expected 6");
          return;
        }
        for (unsigned i = 0; i < 6; ++i) out.args[i] = args[i];
        return;
      }
      default:
        error = absl::StrCat("unknown request type ", static_cast<int>(request.which()));
        return;
    }
  })) {
    return absl::InvalidArgumentError(
        absl::StrCat("undecodable message: ", exception->getDescription().cStr()));
  }
  if (!error.empty()) return absl::InvalidArgumentError(error);
  return out;
}

absl::Status CheckHello(const DecodedRequest& hello, int nfds, int attached_fd,
                        bool listener_expected) {
  if (hello.version != wire::PROTOCOL_VERSION) {
    return absl::InvalidArgumentError(absl::StrCat("protocol version ", hello.version,
                                                   ", expected ", wire::PROTOCOL_VERSION));
  }
  if (hello.listener_attached != listener_expected || (nfds == 1) != listener_expected) {
    return absl::InvalidArgumentError("hello: the seccomp listener does not match the policy");
  }
  if (listener_expected) {
    char link[64];
    std::string proc = absl::StrCat("/proc/self/fd/", attached_fd);
    ssize_t n = readlink(proc.c_str(), link, sizeof(link) - 1);
    if (n <= 0 || absl::string_view(link, n) != "anon_inode:seccomp notify") {
      return absl::InvalidArgumentError("hello: the attached fd is not a seccomp listener");
    }
  }
  return absl::OkStatus();
}

}  // namespace vow
