#include "worker/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "base/syscall.h"
#include "capnp/serialize.h"
#include "ipc/protocol.capnp.h"

namespace vow {
namespace {

// Response{id, fd} as the broker builds it (SendFdOrError, broker/broker_wire.cc) and
// frames it (Channel::Send: one segment, a one-word table), into `out`. Returns its words,
// or 0 if it does not fit or capnp refuses.
size_t FrameFdAnswer(uint64_t id, capnp::word* out, size_t max_words) {
  size_t words = 0;
  KJ_IF_MAYBE(exception, kj::runCatchingExceptions([&] {
    capnp::word space[8] = {};  // a first segment must be zeroed
    capnp::MallocMessageBuilder builder(kj::arrayPtr(space, 8));
    auto response = builder.initRoot<wire::Response>();
    response.setId(id);
    response.setFd();
    auto segments = builder.getSegmentsForOutput();
    if (segments.size() != 1 || segments[0].size() + 1 > max_words) return;
    const uint32_t table[2] = {0, static_cast<uint32_t>(segments[0].size())};
    memcpy(out, table, sizeof(table));
    memcpy(out + 1, segments[0].begin(), segments[0].size() * sizeof(capnp::word));
    words = segments[0].size() + 1;
  })) {
    (void)exception;
    return 0;
  }
  return words;
}

// The broker's answer to a granted open or connect, Response{id, fd}, framed as
// Channel::Send frames it: every word but `id_word` is the same in every such answer.
// `words == 0`: not learnt (the encoding is not one fixed message whose id is one whole
// word), and every answer takes the reader.
struct FdAnswer {
  static constexpr size_t kMaxWords = 8;
  capnp::word fixed[kMaxWords] = {};
  size_t words = 0;
  size_t id_word = 0;
};

// Learnt from Cap'n Proto itself: two answers that differ only in their id. (Filled in
// place: capnp::word cannot be copied.)
void LearnFdAnswer(FdAnswer& a) {
  capnp::word low[FdAnswer::kMaxWords], high[FdAnswer::kMaxWords];
  const size_t words = FrameFdAnswer(0, low, FdAnswer::kMaxWords);
  if (words == 0 || FrameFdAnswer(~uint64_t{0}, high, FdAnswer::kMaxWords) != words) return;
  size_t differing = 0, at = 0;
  for (size_t i = 0; i < words; ++i) {
    if (memcmp(&low[i], &high[i], sizeof(capnp::word)) != 0) ++differing, at = i;
  }
  uint64_t all_ones;
  memcpy(&all_ones, &high[at], sizeof(all_ones));
  if (differing != 1 || all_ones != ~uint64_t{0}) return;
  memcpy(a.fixed, low, words * sizeof(capnp::word));
  a.id_word = at;
  a.words = words;
}

// Once per process, on first use: the broker learns it before it forks a worker
// (PrepareClientForFork), so a forked worker inherits it and builds no message of its own
// (each Client used to learn it again, in every new worker, before its first call).
const FdAnswer& TheFdAnswer() {
  static const FdAnswer* const answer = [] {
    auto* a = new FdAnswer();  // kept for the process's life
    LearnFdAnswer(*a);
    return a;
  }();
  return *answer;
}

}  // namespace

void PrepareClientForFork() { (void)TheFdAnswer(); }

Client::Client(int channel_fd) : channel_fd_(channel_fd), channel_(UniqueFd(channel_fd)) {
  reason_[0] = '\0';
}

Client::Client(int channel_fd, MessageArena::OnZeroMemory zero)
    : channel_fd_(channel_fd), channel_(UniqueFd(channel_fd)), arena_(zero) {
  reason_[0] = '\0';
}

bool Client::IsFdAnswerTo(uint64_t id) const {
  // The first word is the framing, which gives the length; CheckFraming has matched it to
  // the bytes received, so equal words mean an equal message.
  const FdAnswer& answer = TheFdAnswer();
  if (answer.words == 0) return false;
  for (size_t i = 0; i < answer.words; ++i) {
    if (i != answer.id_word &&
        memcmp(&receive_buffer_[i], &answer.fixed[i], sizeof(capnp::word)) != 0) {
      return false;
    }
  }
  uint64_t got;
  memcpy(&got, &receive_buffer_[answer.id_word], sizeof(got));
  return got == id;  // else a stale answer, which the reader path skips
}

Client::~Client() { (void)channel_.release(); }

int Client::Exchange(capnp::MessageBuilder& request, uint64_t id, int64_t* seconds,
                     uint32_t* nanos) {
  reason_len_ = 0;
  int rc = channel_.Send(request);
  arena_.MarkUsed(request);
  if (rc < 0) return rc;
  for (;;) {
    int fds[kMaxFdsPerMessage];
    int nfds = 0;
    int n = channel_.Receive(receive_buffer_, sizeof(receive_buffer_), fds,
                             kMaxFdsPerMessage, &nfds);
    if (n == 0) return -ECONNRESET;  // the broker is gone
    if (n < 0) return n;
    int attached = nfds == 1 ? fds[0] : -1;
    if (CheckFraming(receive_buffer_, n) != 0) {
      if (attached >= 0) ::close(attached);
      return -EBADMSG;
    }
    if (IsFdAnswerTo(id)) {
      // What the reader below would conclude for this message.
      ++fd_answers_without_reader_;
      return attached >= 0 ? attached : -EPROTO;
    }
    int result = -EBADMSG;
    bool matched = false;
    // The broker is trusted, but a broken message must not become an exception escaping
    // into worker code (or a signal handler): any decoding failure is -EBADMSG.
    KJ_IF_MAYBE(exception, kj::runCatchingExceptions([&] {
      capnp::FlatArrayMessageReader reader(
          kj::arrayPtr(receive_buffer_, static_cast<size_t>(n) / sizeof(capnp::word)),
          ReaderLimits());
      auto response = reader.getRoot<wire::Response>();
      if (response.getId() != id) return;  // a stale answer; keep waiting
      matched = true;
      switch (response.which()) {
        case wire::Response::FD:
          if (attached >= 0) {
            result = attached;
            attached = -1;
          } else {
            result = -EPROTO;
          }
          break;
        case wire::Response::ERROR: {
          auto error = response.getError();
          int err = error.getErrno();
          result = (err > 0 && err < 4096) ? -err : -EPROTO;
          auto reason = error.getReason();
          reason_len_ = reason.size() < sizeof(reason_) - 1 ? reason.size() : sizeof(reason_) - 1;
          memcpy(reason_, reason.begin(), reason_len_);
          reason_[reason_len_] = '\0';
          break;
        }
        case wire::Response::TIME:
          if (seconds != nullptr && nanos != nullptr) {
            *seconds = response.getTime().getSeconds();
            *nanos = response.getTime().getNanos();
            result = 0;
          } else {
            result = -EPROTO;
          }
          break;
        default:
          result = -EPROTO;
      }
    })) {
      (void)exception;
      result = -EBADMSG;
      matched = true;
    }
    if (attached >= 0) ::close(attached);
    if (matched) return result;
  }
}

wire::Request::Builder Client::NewRequest(capnp::MessageBuilder& builder, uint64_t* id) {
  auto request = builder.initRoot<wire::Request>();
  *id = next_id_++;
  request.setId(*id);
  return request;
}

absl::Status Client::ErrorStatus(int err, absl::string_view call) const {
  absl::Status status = ErrnoStatus(err, call);
  if (reason_len_ == 0) return status;
  absl::Status with_reason(status.code(), absl::StrCat(status.message(), ": ", last_reason()));
  with_reason.SetPayload("vow/errno", *status.GetPayload("vow/errno"));
  return with_reason;
}

int Client::OpenRaw(const char* path, size_t path_len, int flags, mode_t mode) {
  arena_.Reset();
  capnp::MallocMessageBuilder builder(arena_.segment());
  uint64_t id;
  auto request = NewRequest(builder, &id);
  auto open = request.initOpen();
  open.setPath(kj::arrayPtr(reinterpret_cast<const kj::byte*>(path), path_len));
  open.setFlags(static_cast<uint32_t>(flags));
  open.setMode(static_cast<uint32_t>(mode));
  return Exchange(builder, id, nullptr, nullptr);
}

absl::StatusOr<UniqueFd> Client::Open(absl::string_view path, int flags, mode_t mode) {
  int fd = OpenRaw(path.data(), path.size(), flags, mode);
  if (fd < 0) return ErrorStatus(-fd, absl::StrCat("open ", path));
  return UniqueFd(fd);
}

int Client::ConnectInetRaw(bool udp, const void* address, size_t address_len, uint16_t port) {
  arena_.Reset();
  capnp::MallocMessageBuilder builder(arena_.segment());
  uint64_t id;
  auto request = NewRequest(builder, &id);
  auto connect = request.initConnect();
  connect.setTransport(udp ? wire::Connect::Transport::UDP : wire::Connect::Transport::TCP);
  connect.setAddress(kj::arrayPtr(static_cast<const kj::byte*>(address), address_len));
  connect.setPort(port);
  return Exchange(builder, id, nullptr, nullptr);
}

namespace {
// Parses an IPv4 or IPv6 literal into network-order bytes; returns the length or 0.
size_t ParseAddress(absl::string_view text, unsigned char out[16]) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.size() >= sizeof(buf)) return 0;
  memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  if (inet_pton(AF_INET, buf, out) == 1) return 4;
  if (inet_pton(AF_INET6, buf, out) == 1) return 16;
  return 0;
}
}  // namespace

absl::StatusOr<UniqueFd> Client::ConnectInet(bool udp, absl::string_view address,
                                              uint16_t port) {
  unsigned char bytes[16];
  size_t len = ParseAddress(address, bytes);
  if (len == 0) {
    return absl::InvalidArgumentError(absl::StrCat("not an IP address: ", address));
  }
  int fd = ConnectInetRaw(udp, bytes, len, port);
  if (fd < 0) {
    return ErrorStatus(-fd, absl::StrCat("connect ", udp ? "udp " : "tcp ", address, ":", port));
  }
  return UniqueFd(fd);
}

absl::StatusOr<UniqueFd> Client::ConnectTcp(absl::string_view address, uint16_t port) {
  return ConnectInet(/*udp=*/false, address, port);
}

absl::StatusOr<UniqueFd> Client::ConnectUdp(absl::string_view address, uint16_t port) {
  return ConnectInet(/*udp=*/true, address, port);
}

absl::StatusOr<UniqueFd> Client::ConnectUnix(absl::string_view path) {
  arena_.Reset();
  capnp::MallocMessageBuilder builder(arena_.segment());
  uint64_t id;
  auto request = NewRequest(builder, &id);
  auto connect = request.initConnect();
  connect.setTransport(wire::Connect::Transport::UNIX);
  connect.setPath(kj::arrayPtr(reinterpret_cast<const kj::byte*>(path.data()), path.size()));
  int fd = Exchange(builder, id, nullptr, nullptr);
  if (fd < 0) return ErrorStatus(-fd, absl::StrCat("connect unix ", path));
  return UniqueFd(fd);
}

int Client::NowRaw(int64_t* seconds, uint32_t* nanos) {
  arena_.Reset();
  capnp::MallocMessageBuilder builder(arena_.segment());
  uint64_t id;
  auto request = NewRequest(builder, &id);
  request.initClock();
  return Exchange(builder, id, seconds, nanos);
}

absl::StatusOr<absl::Time> Client::Now() {
  int64_t seconds = 0;
  uint32_t nanos = 0;
  int rc = NowRaw(&seconds, &nanos);
  if (rc < 0) return ErrorStatus(-rc, "clock");
  return absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
}

}  // namespace vow
