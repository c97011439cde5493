// Decoding one worker request. Runs in the broker; the bytes are hostile.
//
// DecodeRequest() is the only place the broker turns worker bytes into values: it checks
// the framing (ipc/message.h), reads the Cap'n Proto message with ReaderLimits(), copies
// out every field the broker will use, and catches every decoding exception. What it
// returns owns its data (nothing points into the receive buffer). It never crashes and
// never throws; an error message says why the message was refused. The fuzzer
// broker/request_fuzzer.cc drives it.
#ifndef VOW_BROKER_REQUEST_H_
#define VOW_BROKER_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "broker/net_policy.h"
#include "capnp/common.h"

namespace vow {

struct DecodedRequest {
  enum class Kind { kHello, kGetFilter, kOpen, kConnect, kClock, kViolation };
  uint64_t id = 0;
  Kind kind = Kind::kClock;
  // kHello
  uint32_t version = 0;
  bool listener_attached = false;
  // kOpen: `path` is the worker's bytes, NULs included.
  std::string path;
  uint32_t flags = 0;
  uint32_t mode = 0;
  // kConnect
  ConnectTarget target;
  // kViolation
  int32_t syscall = -1;
  uint32_t arch = 0;
  uint64_t args[6] = {0, 0, 0, 0, 0, 0};
};

// The hello checks (protocol version; the listener flag and the attachment agree with
// `listener_expected`; an attached fd really is a seccomp listener, by its anon-inode
// name). `attached_fd` is the fd that came with the message or -1. OK, or the reason the
// worker is ended. Since the broker's own child sends hello, these guard the broker
// against its own lock-down code going wrong, and against a worker that manages a hello
// before the child's (which the phase table refuses anyway).
absl::Status CheckHello(const DecodedRequest& hello, int nfds, int attached_fd,
                        bool listener_expected);

// `data` must be 8-byte aligned; `bytes` is the datagram's length.
absl::StatusOr<DecodedRequest> DecodeRequest(const capnp::word* data, size_t bytes);

}  // namespace vow

#endif  // VOW_BROKER_REQUEST_H_
