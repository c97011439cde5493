#include "broker/request.h"

#include <fcntl.h>

#include <random>
#include <vector>

#include "capnp/message.h"
#include "capnp/serialize.h"
#include "gtest/gtest.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"

namespace vow {
namespace {

std::vector<capnp::word> Encode(capnp::MessageBuilder& builder) {
  auto flat = capnp::messageToFlatArray(builder);
  return std::vector<capnp::word>(flat.begin(), flat.end());
}

std::vector<std::vector<capnp::word>> ValidMessages() {
  std::vector<std::vector<capnp::word>> out;
  {
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<wire::Request>();
    r.setId(1);
    auto h = r.initHello();
    h.setVersion(wire::PROTOCOL_VERSION);
    h.setListenerAttached(true);
    out.push_back(Encode(b));
  }
  {
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<wire::Request>();
    r.setId(2);
    auto o = r.initOpen();
    o.setPath(kj::arrayPtr(reinterpret_cast<const kj::byte*>("/etc/a\0b"), 8));
    o.setFlags(O_RDWR | O_CREAT);
    o.setMode(0644);
    out.push_back(Encode(b));
  }
  {
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<wire::Request>();
    r.setId(3);
    auto c = r.initConnect();
    c.setTransport(wire::Connect::Transport::TCP);
    c.setAddress(kj::arrayPtr(reinterpret_cast<const kj::byte*>("\x7f\0\0\1"), 4));
    c.setPort(443);
    out.push_back(Encode(b));
  }
  {
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<wire::Request>();
    r.setId(4);
    auto v = r.initViolation();
    v.setSyscall(257);
    v.setArch(0xc000003e);
    auto args = v.initArgs(6);
    for (unsigned i = 0; i < 6; ++i) args.set(i, i * 1000);
    out.push_back(Encode(b));
  }
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::Request>().setGetFilter();
    out.push_back(Encode(b));
  }
  return out;
}

TEST(DecodeRequestTest, DecodesEveryKind) {
  auto messages = ValidMessages();
  auto hello = DecodeRequest(messages[0].data(), messages[0].size() * 8);
  ASSERT_TRUE(hello.ok()) << hello.status();
  EXPECT_EQ(hello->kind, DecodedRequest::Kind::kHello);
  EXPECT_TRUE(hello->listener_attached);
  auto open = DecodeRequest(messages[1].data(), messages[1].size() * 8);
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->kind, DecodedRequest::Kind::kOpen);
  EXPECT_EQ(open->path, std::string("/etc/a\0b", 8));
  EXPECT_EQ(open->flags, static_cast<uint32_t>(O_RDWR | O_CREAT));
  auto connect = DecodeRequest(messages[2].data(), messages[2].size() * 8);
  ASSERT_TRUE(connect.ok());
  EXPECT_EQ(connect->target.port, 443);
  EXPECT_EQ(connect->target.address.size(), 4u);
  auto violation = DecodeRequest(messages[3].data(), messages[3].size() * 8);
  ASSERT_TRUE(violation.ok());
  EXPECT_EQ(violation->syscall, 257);
  EXPECT_EQ(violation->args[5], 5000u);
  auto filter = DecodeRequest(messages[4].data(), messages[4].size() * 8);
  ASSERT_TRUE(filter.ok());
  EXPECT_EQ(filter->kind, DecodedRequest::Kind::kGetFilter);
}

TEST(DecodeRequestTest, RefusesWrongArgumentCount) {
  capnp::MallocMessageBuilder b;
  auto v = b.initRoot<wire::Request>().initViolation();
  v.initArgs(1000);
  auto m = Encode(b);
  auto decoded = DecodeRequest(m.data(), m.size() * 8);
  EXPECT_FALSE(decoded.ok());
}

TEST(DecodeRequestTest, PointerLoopDecodesOnlyWhatTheSchemaReads) {
  // Root points at itself: a struct with no data and one pointer (to itself). The
  // decoder reads only fixed schema fields, so it never follows the loop: the empty data
  // section reads as defaults (id 0, union member 0 = hello) and the hello is the root
  // again, whose data reads as version 0. The broker then refuses that version.
  uint64_t loop[2] = {static_cast<uint64_t>(1) << 32, 0};
  // struct pointer, offset -1 (points at itself), 0 data words, 1 pointer.
  loop[1] = (static_cast<uint64_t>(static_cast<uint32_t>(-1) << 2)) | (1ull << 48);
  alignas(8) uint64_t buf[2];
  memcpy(buf, loop, sizeof(loop));
  auto decoded = DecodeRequest(reinterpret_cast<capnp::word*>(buf), sizeof(buf));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->kind, DecodedRequest::Kind::kHello);
  EXPECT_EQ(decoded->version, 0u);
}

TEST(DecodeRequestTest, ListLongerThanTheMessageRefused) {
  // open.path claims 2^29 - 1 bytes in a message of a few words.
  capnp::MallocMessageBuilder b;
  auto o = b.initRoot<wire::Request>().initOpen();
  o.setPath(kj::arrayPtr(reinterpret_cast<const kj::byte*>("/x"), 2));
  auto m = Encode(b);
  // Find the list pointer (element size 2 = byte) and inflate its count.
  bool patched = false;
  for (auto& word : m) {
    uint64_t v;
    memcpy(&v, &word, 8);
    if ((v & 3) == 1 && ((v >> 32) & 7) == 2 && (v >> 35) == 2) {
      v = (v & ((1ull << 35) - 1)) | (static_cast<uint64_t>((1u << 29) - 1) << 35);
      memcpy(&word, &v, 8);
      patched = true;
    }
  }
  ASSERT_TRUE(patched);
  auto decoded = DecodeRequest(m.data(), m.size() * 8);
  EXPECT_FALSE(decoded.ok());
}

// A deterministic mutation sweep over valid messages, so the decoder's robustness is
// checked in every `bazel test` run (the libFuzzer target goes much further).
TEST(DecodeRequestTest, MutationSweepNeverCrashes) {
  std::mt19937_64 rng(20261128);
  auto messages = ValidMessages();
  size_t decoded_ok = 0, refused = 0;
  for (int round = 0; round < 200000; ++round) {
    std::vector<capnp::word> m = messages[round % messages.size()];
    auto* bytes = reinterpret_cast<uint8_t*>(m.data());
    size_t len = m.size() * 8;
    int flips = 1 + rng() % 4;
    for (int i = 0; i < flips; ++i) bytes[rng() % len] ^= static_cast<uint8_t>(1u << (rng() % 8));
    if (rng() % 8 == 0) len -= 8 * (1 + rng() % (len / 8));  // truncation
    auto decoded = DecodeRequest(m.data(), len);
    (decoded.ok() ? decoded_ok : refused)++;
  }
  // Both outcomes occur: the sweep really reaches the decoder's error paths and its
  // success paths.
  EXPECT_GT(decoded_ok, 1000u);
  EXPECT_GT(refused, 1000u);
}

}  // namespace
}  // namespace vow
