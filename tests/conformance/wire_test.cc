// Cross-checks the hand-written C codec of the musl lock-down (musl/vow_wire.h) against
// the C++ Cap'n Proto code generated from ipc/protocol.capnp: what C encodes, C++ reads;
// what C++ encodes (one segment or many, near and far pointers), C reads; and hostile
// bytes never make the C decoder read out of bounds. Test-only, in-process.
#include "tests/conformance/musl/vow_wire.h"

#include <linux/audit.h>
#include <linux/filter.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "capnp/message.h"
#include "capnp/serialize.h"
#include "gtest/gtest.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"

namespace vow {
namespace {

// An 8-byte aligned buffer of `bytes` bytes.
struct Buffer {
  explicit Buffer(size_t bytes) : words((bytes + 7) / 8 + 1, 0) {}
  void* data() { return words.data(); }
  size_t capacity() const { return (words.size()) * 8; }
  std::vector<uint64_t> words;
};

wire::Request::Reader ReadRequest(const Buffer& buf, long len,
                                  std::unique_ptr<capnp::FlatArrayMessageReader>* keep) {
  EXPECT_EQ(CheckFraming(buf.words.data(), static_cast<size_t>(len)), 0);
  *keep = std::make_unique<capnp::FlatArrayMessageReader>(
      kj::arrayPtr(reinterpret_cast<const capnp::word*>(buf.words.data()),
                   static_cast<size_t>(len) / 8),
      ReaderLimits());
  return (*keep)->getRoot<wire::Request>();
}

TEST(WireTest, CEncodesGetFilter) {
  Buffer buf(64);
  long len = vow_wire_encode_get_filter(buf.data(), buf.capacity(), 0x1122334455667788ull);
  ASSERT_GT(len, 0);
  std::unique_ptr<capnp::FlatArrayMessageReader> keep;
  auto request = ReadRequest(buf, len, &keep);
  EXPECT_TRUE(request.isGetFilter());
  EXPECT_EQ(request.getId(), 0x1122334455667788ull);
}

TEST(WireTest, CEncodesHello) {
  for (int attached : {0, 1}) {
    Buffer buf(64);
    long len = vow_wire_encode_hello(buf.data(), buf.capacity(), 5, wire::PROTOCOL_VERSION,
                                     attached);
    ASSERT_GT(len, 0);
    std::unique_ptr<capnp::FlatArrayMessageReader> keep;
    auto request = ReadRequest(buf, len, &keep);
    ASSERT_TRUE(request.isHello());
    EXPECT_EQ(request.getId(), 5u);
    EXPECT_EQ(request.getHello().getVersion(), wire::PROTOCOL_VERSION);
    EXPECT_EQ(request.getHello().getListenerAttached(), attached == 1);
  }
}

TEST(WireTest, CEncodesViolation) {
  Buffer buf(256);
  const uint64_t args[6] = {1, ~0ull, 0x5412, 1ull << 32, 0, 42};
  long len = vow_wire_encode_violation(buf.data(), buf.capacity(), 0, -7, AUDIT_ARCH_X86_64,
                                       args);
  ASSERT_GT(len, 0);
  std::unique_ptr<capnp::FlatArrayMessageReader> keep;
  auto request = ReadRequest(buf, len, &keep);
  ASSERT_TRUE(request.isViolation());
  auto v = request.getViolation();
  EXPECT_EQ(v.getSyscall(), -7);
  EXPECT_EQ(v.getArch(), AUDIT_ARCH_X86_64);
  ASSERT_EQ(v.getArgs().size(), 6u);
  for (unsigned i = 0; i < 6; ++i) EXPECT_EQ(v.getArgs()[i], args[i]);
}

TEST(WireTest, EncodersRefuseSmallBuffers) {
  Buffer buf(256);
  const uint64_t args[6] = {};
  EXPECT_EQ(vow_wire_encode_get_filter(buf.data(), 39, 0), -1);
  EXPECT_EQ(vow_wire_encode_hello(buf.data(), 47, 0, 1, 0), -1);
  EXPECT_EQ(vow_wire_encode_violation(buf.data(), 103, 0, 1, 2, args), -1);
}

// Flattens a C++ message into an aligned buffer.
Buffer Flatten(capnp::MessageBuilder& builder, size_t* len) {
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(builder);
  *len = flat.size() * sizeof(capnp::word);
  Buffer buf(*len);
  memcpy(buf.data(), flat.begin(), *len);
  return buf;
}

std::vector<sock_filter> Program(size_t n) {
  std::vector<sock_filter> p(n);
  for (size_t i = 0; i < n; ++i) {
    p[i] = sock_filter{static_cast<uint16_t>(i), static_cast<uint8_t>(i * 3),
                       static_cast<uint8_t>(i * 7), static_cast<uint32_t>(i * 2654435761u)};
  }
  return p;
}

void CheckFilterRoundTrip(capnp::MessageBuilder& builder, size_t insns) {
  std::vector<sock_filter> program = Program(insns);
  auto response = builder.initRoot<wire::Response>();
  response.setId(77);
  auto filter = response.initFilter();
  filter.setProgram(kj::arrayPtr(reinterpret_cast<const kj::byte*>(program.data()),
                                 program.size() * sizeof(sock_filter)));
  filter.setNeedsListener(true);
  filter.setTrapReporter(false);
  filter.setMaxOpenFds(256);
  filter.setCpuSeconds(9);
  filter.setMemoryBytes(3ull << 33);
  size_t len;
  Buffer buf = Flatten(builder, &len);
  vow_wire_response out;
  ASSERT_EQ(vow_wire_decode_response(buf.data(), len, &out), 0);
  EXPECT_EQ(out.id, 77u);
  ASSERT_EQ(out.kind, VOW_RESPONSE_FILTER);
  EXPECT_EQ(out.needs_listener, 1);
  EXPECT_EQ(out.trap_reporter, 0);
  EXPECT_EQ(out.max_open_fds, 256u);
  EXPECT_EQ(out.cpu_seconds, 9u);
  EXPECT_EQ(out.memory_bytes, 3ull << 33);
  ASSERT_EQ(out.program_len, program.size() * sizeof(sock_filter));
  EXPECT_EQ(memcmp(out.program, program.data(), out.program_len), 0);
}

TEST(WireTest, CDecodesFilterInOneSegment) {
  capnp::MallocMessageBuilder builder(4096 + 64);  // as the broker does
  CheckFilterRoundTrip(builder, 4096);
}

TEST(WireTest, CDecodesFilterAcrossSegments) {
  // Tiny fixed-size segments: the root, the Filter and the program land in different
  // segments, reached through far (and double-far) pointers.
  for (size_t first : {1u, 2u, 3u, 4u, 8u}) {
    capnp::MallocMessageBuilder builder(first, capnp::AllocationStrategy::FIXED_SIZE);
    CheckFilterRoundTrip(builder, 100);
    EXPECT_GT(builder.getSegmentsForOutput().size(), 1u) << first;
  }
}

TEST(WireTest, CDecodesHelloErrorTimeFd) {
  {
    capnp::MallocMessageBuilder builder;
    auto r = builder.initRoot<wire::Response>();
    r.setId(3);
    r.initHello().setVersion(wire::PROTOCOL_VERSION);
    size_t len;
    Buffer buf = Flatten(builder, &len);
    vow_wire_response out;
    ASSERT_EQ(vow_wire_decode_response(buf.data(), len, &out), 0);
    EXPECT_EQ(out.kind, VOW_RESPONSE_HELLO);
    EXPECT_EQ(out.id, 3u);
    EXPECT_EQ(out.hello_version, wire::PROTOCOL_VERSION);
  }
  {
    capnp::MallocMessageBuilder builder;
    auto r = builder.initRoot<wire::Response>();
    r.setId(4);
    auto e = r.initError();
    e.setErrno(13);
    e.setReason("denied by rule /etc");
    size_t len;
    Buffer buf = Flatten(builder, &len);
    vow_wire_response out;
    ASSERT_EQ(vow_wire_decode_response(buf.data(), len, &out), 0);
    EXPECT_EQ(out.kind, VOW_RESPONSE_ERROR);
    EXPECT_EQ(out.error_errno, 13);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(out.error_reason), out.error_reason_len),
              "denied by rule /etc");
  }
  {
    capnp::MallocMessageBuilder builder;
    auto r = builder.initRoot<wire::Response>();
    r.setId(5);
    auto t = r.initTime();
    t.setSeconds(-12345678901ll);
    t.setNanos(999999999);
    size_t len;
    Buffer buf = Flatten(builder, &len);
    vow_wire_response out;
    ASSERT_EQ(vow_wire_decode_response(buf.data(), len, &out), 0);
    EXPECT_EQ(out.kind, VOW_RESPONSE_TIME);
    EXPECT_EQ(out.seconds, -12345678901ll);
    EXPECT_EQ(out.nanos, 999999999u);
  }
  {
    capnp::MallocMessageBuilder builder;
    auto r = builder.initRoot<wire::Response>();
    r.setId(6);
    r.setFd();
    size_t len;
    Buffer buf = Flatten(builder, &len);
    vow_wire_response out;
    ASSERT_EQ(vow_wire_decode_response(buf.data(), len, &out), 0);
    EXPECT_EQ(out.kind, VOW_RESPONSE_FD);
    EXPECT_EQ(out.id, 6u);
  }
}

// A C-encoded request decodes in C++ and a C++ request's bytes are what C produces:
// the two encoders agree word for word on the canonical one-segment form.
TEST(WireTest, SameBytesAsCapnpForHello) {
  capnp::MallocMessageBuilder builder;
  auto r = builder.initRoot<wire::Request>();
  r.setId(0);
  auto h = r.initHello();
  h.setVersion(1);
  h.setListenerAttached(true);
  size_t len;
  Buffer cpp = Flatten(builder, &len);
  Buffer c(64);
  ASSERT_EQ(vow_wire_encode_hello(c.data(), c.capacity(), 0, 1, 1), static_cast<long>(len));
  EXPECT_EQ(memcmp(c.data(), cpp.data(), len), 0);
}

TEST(WireTest, RefusesBadFraming) {
  capnp::MallocMessageBuilder builder;
  builder.initRoot<wire::Response>().initHello().setVersion(1);
  size_t len;
  Buffer buf = Flatten(builder, &len);
  vow_wire_response out;
  ASSERT_EQ(vow_wire_decode_response(buf.data(), len, &out), 0);
  for (size_t cut = 0; cut < len; ++cut) {
    EXPECT_EQ(vow_wire_decode_response(buf.data(), cut, &out), -1) << cut;
  }
  // Trailing bytes.
  Buffer longer(len + 8);
  memcpy(longer.data(), buf.data(), len);
  EXPECT_EQ(vow_wire_decode_response(longer.data(), len + 8, &out), -1);
  // A segment table that claims nine segments.
  Buffer many(len);
  memcpy(many.data(), buf.data(), len);
  uint32_t nine = 8;
  memcpy(many.data(), &nine, 4);
  EXPECT_EQ(vow_wire_decode_response(many.data(), len, &out), -1);
  // Misaligned.
  Buffer shifted(len + 8);
  memcpy(static_cast<char*>(shifted.data()) + 4, buf.data(), len);
  EXPECT_EQ(vow_wire_decode_response(static_cast<char*>(shifted.data()) + 4, len, &out), -1);
}

TEST(WireTest, RefusesPointersOutOfTheSegment) {
  capnp::MallocMessageBuilder builder(64);
  auto r = builder.initRoot<wire::Response>();
  r.initFilter().setProgram(kj::heapArray<kj::byte>(16).asPtr());
  size_t len;
  Buffer buf = Flatten(builder, &len);
  vow_wire_response out;
  ASSERT_EQ(vow_wire_decode_response(buf.data(), len, &out), 0);
  // Root pointer to a struct far past the end.
  Buffer bad = buf;
  bad.words[1] = (uint64_t{1000} << 2) | (uint64_t{2} << 32) | (uint64_t{1} << 48);
  EXPECT_EQ(vow_wire_decode_response(bad.data(), len, &out), -1);
  // Root pointer backwards, before the segment.
  bad = buf;
  bad.words[1] = (static_cast<uint64_t>(static_cast<uint32_t>(-5) << 2)) |
                 (uint64_t{2} << 32) | (uint64_t{1} << 48);
  EXPECT_EQ(vow_wire_decode_response(bad.data(), len, &out), -1);
  // The program pointer (Filter's ptr[0]) claiming a huge byte list.
  // Layout: seg[0] root, seg[1..2] Response data, seg[3] ptr -> Filter at seg[4..6],
  // Filter ptr[0] at seg[7].
  bad = buf;
  uint64_t* bseg = bad.words.data() + 1;
  ASSERT_EQ(bseg[7] & 3, 1u) << "layout changed";
  bseg[7] = (bseg[7] & 0x7ffffffffull) | (uint64_t{0xfffffff} << 35);
  EXPECT_EQ(vow_wire_decode_response(bad.data(), len, &out), -1);
  // A capability pointer where a struct is expected.
  bad = buf;
  bad.words[1 + 3] = 3;
  EXPECT_EQ(vow_wire_decode_response(bad.data(), len, &out), -1);
}

TEST(WireTest, HostileBytesNeverCrash) {
  capnp::MallocMessageBuilder builder(8, capnp::AllocationStrategy::FIXED_SIZE);
  auto r = builder.initRoot<wire::Response>();
  r.setId(1);
  auto f = r.initFilter();
  std::vector<sock_filter> program = Program(20);
  f.setProgram(kj::arrayPtr(reinterpret_cast<const kj::byte*>(program.data()),
                            program.size() * sizeof(sock_filter)));
  size_t len;
  Buffer buf = Flatten(builder, &len);
  std::mt19937_64 rng(1234);
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    Buffer m = buf;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      size_t byte = rng() % len;
      reinterpret_cast<uint8_t*>(m.data())[byte] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    vow_wire_response out;
    if (vow_wire_decode_response(m.data(), len, &out) == 0) {
      ++accepted;
      if (out.kind == VOW_RESPONSE_FILTER && out.program != nullptr) {
        // Whatever it decoded lies inside the message.
        const uint8_t* begin = reinterpret_cast<const uint8_t*>(m.data());
        EXPECT_GE(out.program, begin);
        EXPECT_LE(out.program + out.program_len, begin + len);
      }
    }
  }
  EXPECT_GT(accepted, 0);  // flips of data bytes leave a valid message
}

}  // namespace
}  // namespace vow
