// libFuzzer target for DecodeRequest(): every datagram a worker can send reaches it.
// Runs in the broker's role; the input is hostile. Besides "no crash, no leak, no
// sanitizer report", it checks:
//  - bounds: a decoded request owns at most as many bytes as the datagram had (path,
//    address and unix path together), and a datagram that breaks the framing
//    (CheckFraming) is never decoded;
//  - round trip: the decoded request, encoded again by a legitimate sender, decodes to
//    exactly the same values (kind, id, every field of that kind).
// Seeds: broker/testdata/request_fuzzer_corpus (one valid message of each kind), replayed
// by //broker:request_fuzzer_replay_test. Build and run: see README.md (Fuzzing).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "broker/request.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"

namespace {

[[noreturn]] void Die(const char* what) {
  fprintf(stderr, "request_fuzzer: %s\n", what);
  abort();
}

kj::ArrayPtr<const kj::byte> Bytes(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// Encodes `r` the way a legitimate worker would.
kj::Array<capnp::word> Encode(const vow::DecodedRequest& r) {
  capnp::MallocMessageBuilder builder;
  auto request = builder.initRoot<vow::wire::Request>();
  request.setId(r.id);
  using Kind = vow::DecodedRequest::Kind;
  switch (r.kind) {
    case Kind::kHello: {
      auto hello = request.initHello();
      hello.setVersion(r.version);
      hello.setListenerAttached(r.listener_attached);
      break;
    }
    case Kind::kGetFilter:
      request.setGetFilter();
      break;
    case Kind::kOpen: {
      auto open = request.initOpen();
      open.setPath(Bytes(r.path));
      open.setFlags(r.flags);
      open.setMode(r.mode);
      break;
    }
    case Kind::kConnect: {
      auto connect = request.initConnect();
      using T = vow::ConnectRule::Transport;
      connect.setTransport(r.target.transport == T::kTcp   ? vow::wire::Connect::Transport::TCP
                           : r.target.transport == T::kUdp ? vow::wire::Connect::Transport::UDP
                                                           : vow::wire::Connect::Transport::UNIX);
      connect.setAddress(Bytes(r.target.address));
      connect.setPort(r.target.port);
      connect.setPath(Bytes(r.target.unix_path));
      break;
    }
    case Kind::kClock:
      request.initClock();
      break;
    case Kind::kViolation: {
      auto v = request.initViolation();
      v.setSyscall(r.syscall);
      v.setArch(r.arch);
      auto args = v.initArgs(6);
      for (unsigned i = 0; i < 6; ++i) args.set(i, r.args[i]);
      break;
    }
  }
  return capnp::messageToFlatArray(builder);
}

bool Same(const vow::DecodedRequest& a, const vow::DecodedRequest& b) {
  if (a.kind != b.kind || a.id != b.id) return false;
  using Kind = vow::DecodedRequest::Kind;
  switch (a.kind) {
    case Kind::kHello:
      return a.version == b.version && a.listener_attached == b.listener_attached;
    case Kind::kGetFilter:
    case Kind::kClock:
      return true;
    case Kind::kOpen:
      return a.path == b.path && a.flags == b.flags && a.mode == b.mode;
    case Kind::kConnect:
      return a.target.transport == b.target.transport && a.target.address == b.target.address &&
             a.target.port == b.target.port && a.target.unix_path == b.target.unix_path;
    case Kind::kViolation:
      return a.syscall == b.syscall && a.arch == b.arch &&
             memcmp(a.args, b.args, sizeof(a.args)) == 0;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > vow::kMaxMessageBytes) return 0;  // Receive() refuses these before decoding
  // The broker decodes from an 8-byte aligned buffer; copy so the fuzzer's own buffer
  // alignment does not matter.
  std::unique_ptr<capnp::word[]> buffer(new capnp::word[size / 8 + 1]);
  memcpy(static_cast<void*>(buffer.get()), data, size);
  auto decoded = vow::DecodeRequest(buffer.get(), size);
  if (!decoded.ok()) {
    if (decoded.status().message().empty()) Die("a refusal without a reason");
    return 0;
  }
  if (vow::CheckFraming(buffer.get(), size) != 0) Die("decoded a badly framed datagram");
  const size_t owned =
      decoded->path.size() + decoded->target.address.size() + decoded->target.unix_path.size();
  if (owned > size) Die("decoded more bytes than the datagram holds");

  kj::Array<capnp::word> again = Encode(*decoded);
  const size_t bytes = again.size() * sizeof(capnp::word);
  // Fields that share bytes in the input (two pointers to one blob) are copied apart by a
  // legitimate encoder, which may then exceed the cap: nothing to compare then.
  if (bytes > vow::kMaxMessageBytes) return 0;
  auto redecoded = vow::DecodeRequest(again.begin(), bytes);
  if (!redecoded.ok()) {
    fprintf(stderr, "%s\n", std::string(redecoded.status().message()).c_str());
    Die("a legitimate encoding of a decoded request is refused");
  }
  if (!Same(*decoded, *redecoded)) Die("decode(encode(decode(x))) != decode(x)");
  return 0;
}
