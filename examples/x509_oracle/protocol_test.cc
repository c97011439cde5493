// The binary verdict (protocol.h), worker -> front end: round trips (every corpus case
// gives the same JSON as in-process) and the decoder on hostile bytes: cut at every byte,
// each length field too large, out-of-range values, unknown flags, trailing bytes. No
// fork, no sandbox (run under ASan by test.sh).
#include "examples/x509_oracle/protocol.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "examples/x509_oracle/corpus.h"
#include "examples/x509_oracle/verify.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::x509 {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

Verdict Sample() {
  Verdict v;
  v.valid = false;
  v.error_code = 62;
  v.error_string = "hostname mismatch";
  v.error_depth = 0;
  v.chain = {{"CN=a\"\\\x01", "CN=b", "2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z",
              std::string(64, 'a')},
             {"CN=b \xff\xfe", "CN=b", "", "", ""}};
  v.validation_time = 1700000000;
  v.openssl_version = "OpenSSL 3.0.x";
  v.input_error = "";
  return v;
}

void PutU32At(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutU64At(std::string* s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*s)[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// The error message of DecodeVerdict(bytes), "" if it decoded.
std::string Error(const std::string& bytes) {
  absl::StatusOr<Verdict> v = DecodeVerdict(bytes);
  if (v.ok()) return "";
  EXPECT_TRUE(absl::IsInvalidArgument(v.status())) << v.status();
  return std::string(v.status().message());
}

// Where each length field of EncodeVerdict(v) is, and its name, computed from the format
// in protocol.h (not from the decoder).
std::vector<std::pair<std::string, size_t>> LengthFields(const Verdict& v) {
  std::vector<std::pair<std::string, size_t>> out;
  size_t at = kVerdictHeaderBytes;
  for (auto [name, s] : {std::pair<const char*, const std::string*>{"error_string", &v.error_string},
                         {"openssl", &v.openssl_version},
                         {"input_error", &v.input_error}}) {
    out.push_back({name, at});
    at += 4 + s->size();
  }
  for (size_t i = 0; i < v.chain.size(); ++i) {
    const CertInfo& c = v.chain[i];
    for (auto [name, s] : {std::pair<const char*, const std::string*>{"subject", &c.subject},
                           {"issuer", &c.issuer},
                           {"not_before", &c.not_before},
                           {"not_after", &c.not_after},
                           {"sha256", &c.sha256}}) {
      out.push_back({absl::StrCat("chain[", i, "].", name), at});
      at += 4 + s->size();
    }
  }
  return out;
}

TEST(VerdictCodecTest, RoundTripKeepsEveryFieldAndIsCanonical) {
  Verdict v = Sample();
  std::string bytes = EncodeVerdict(v);
  ASSERT_EQ(bytes.size(), LengthFields(v).back().second + 4 + 0);
  absl::StatusOr<Verdict> back = DecodeVerdict(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(VerdictToJson(*back), VerdictToJson(v));
  EXPECT_EQ(back->chain[1].subject, "CN=b \xff\xfe");  // raw bytes, escaped only in JSON
  EXPECT_EQ(EncodeVerdict(*back), bytes);
  // No time; a valid verdict; the bounds of each range are accepted.
  Verdict w;
  w.valid = true;
  w.error_depth = -1;
  back = DecodeVerdict(EncodeVerdict(w));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->validation_time.has_value());
  EXPECT_TRUE(back->valid);
  for (int64_t t : {kMinTimeUnix, kMaxTimeUnix}) {
    v.validation_time = t;
    back = DecodeVerdict(EncodeVerdict(v));
    ASSERT_TRUE(back.ok()) << t << ": " << back.status();
    EXPECT_EQ(back->validation_time, t);
  }
  v.error_depth = static_cast<int>(kMaxVerdictChainCerts);
  EXPECT_EQ(Error(EncodeVerdict(v)), "");
  // internal_error is the front end's: not carried.
  v.internal_error = "the worker says so";
  back = DecodeVerdict(EncodeVerdict(v));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->internal_error, "");
}

TEST(VerdictCodecTest, EveryCorpusCaseGivesTheInProcessJson) {
  ASSERT_TRUE(WarmUpOpenSsl());
  int n = 0;
  for (const CorpusEntry& e : MakeCorpus()) {
    Verdict v = Verify(e.request);
    absl::StatusOr<Verdict> back = DecodeVerdict(EncodeVerdict(v));
    ASSERT_TRUE(back.ok()) << e.name << ": " << back.status();
    EXPECT_EQ(VerdictToJson(*back), VerdictToJson(v)) << e.name;
    ++n;
  }
  EXPECT_GE(n, 15);
}

TEST(VerdictCodecTest, CutAtEveryByteIsRefused) {
  std::string bytes = EncodeVerdict(Sample());
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::string error = Error(bytes.substr(0, len));
    EXPECT_THAT(error, StartsWith("verdict field ")) << "cut at " << len;
  }
  // Where the cut falls in the fixed header, the error names that field and its offset.
  EXPECT_EQ(Error(""), "verdict field version at offset 0: cut short (needs 1 bytes, 0 left)");
  EXPECT_EQ(Error(bytes.substr(0, 1)),
            "verdict field flags at offset 1: cut short (needs 1 bytes, 0 left)");
  EXPECT_EQ(Error(bytes.substr(0, 5)),
            "verdict field error_code at offset 2: cut short (needs 4 bytes, 3 left)");
  EXPECT_EQ(Error(bytes.substr(0, 9)),
            "verdict field error_depth at offset 6: cut short (needs 4 bytes, 3 left)");
  EXPECT_EQ(Error(bytes.substr(0, 17)),
            "verdict field validation_time at offset 10: cut short (needs 8 bytes, 7 left)");
  EXPECT_EQ(Error(bytes.substr(0, 21)),
            "verdict field chain count at offset 18: cut short (needs 4 bytes, 3 left)");
  EXPECT_EQ(Error(bytes.substr(0, 24)),
            "verdict field error_string at offset 22: cut short (needs 4 bytes, 2 left)");
}

TEST(VerdictCodecTest, EachLengthFieldTooLargeIsRefusedByName) {
  Verdict v = Sample();
  std::string bytes = EncodeVerdict(v);
  std::vector<std::pair<std::string, size_t>> fields = LengthFields(v);
  ASSERT_EQ(fields.size(), 3u + 5u * v.chain.size());
  for (const auto& [name, at] : fields) {
    uint32_t len = 0;
    for (int i = 3; i >= 0; --i) len = (len << 8) | static_cast<uint8_t>(bytes[at + i]);
    const size_t left = bytes.size() - at - 4;
    for (uint32_t bad : {static_cast<uint32_t>(left + 1), uint32_t{0xffffffff}}) {
      std::string b = bytes;
      PutU32At(&b, at, bad);
      EXPECT_EQ(Error(b), absl::StrCat("verdict field ", name, " at offset ", at, ": length ",
                                       bad, " exceeds the ", left, " bytes left"));
    }
    // One byte longer than written, with the payload still long enough: the fields after
    // it are misread, and the decoder still refuses (or at worst reads a different but
    // well-formed verdict); it never reads past the end (ASan).
    std::string b = bytes;
    PutU32At(&b, at, len + 1);
    (void)DecodeVerdict(b);
  }
}

TEST(VerdictCodecTest, OutOfRangeValuesAreRefused) {
  Verdict v = Sample();
  const std::string good = EncodeVerdict(v);
  auto with = [&](size_t at, uint8_t byte) {
    std::string b = good;
    b[at] = static_cast<char>(byte);
    return b;
  };
  EXPECT_EQ(Error(with(0, 2)), "verdict field version at offset 0: 2 (want 1)");
  EXPECT_EQ(Error(with(0, 0)), "verdict field version at offset 0: 0 (want 1)");
  for (int bit = 2; bit < 8; ++bit) {
    EXPECT_THAT(Error(with(1, static_cast<uint8_t>(2 | (1 << bit)))),
                StartsWith("verdict field flags at offset 1: unknown bits"))
        << bit;
  }
  // valid (bit 0) with an error code.
  EXPECT_EQ(Error(with(1, 3)), "verdict field error_code at offset 2: 62 in a valid verdict");
  // valid with an input_error.
  Verdict bad = Sample();
  bad.valid = true;
  bad.error_code = 0;
  bad.input_error = "x";
  EXPECT_THAT(Error(EncodeVerdict(bad)),
              HasSubstr("verdict field input_error at offset "));
  EXPECT_THAT(Error(EncodeVerdict(bad)), HasSubstr(": non-empty in a valid verdict"));
  // error_depth outside -1..kMaxVerdictChainCerts.
  for (int depth : {-2, static_cast<int>(kMaxVerdictChainCerts) + 1, INT32_MIN, INT32_MAX}) {
    bad = Sample();
    bad.error_depth = depth;
    EXPECT_EQ(Error(EncodeVerdict(bad)),
              absl::StrCat("verdict field error_depth at offset 6: ", depth, " outside -1..",
                           kMaxVerdictChainCerts))
        << depth;
  }
  // validation_time outside what FormatRfc3339 formats, or set without its flag.
  for (int64_t t : {kMinTimeUnix - 1, kMaxTimeUnix + 1, INT64_MIN, INT64_MAX}) {
    bad = Sample();
    bad.validation_time = t;
    EXPECT_THAT(Error(EncodeVerdict(bad)),
                StartsWith(absl::StrCat("verdict field validation_time at offset 10: ", t,
                                        " outside ")))
        << t;
  }
  bad = Sample();
  bad.validation_time.reset();
  std::string b = EncodeVerdict(bad);
  PutU64At(&b, 10, 5);
  EXPECT_EQ(Error(b), "verdict field validation_time at offset 10: 5 but the flags say none");
  // Chain count: above the limit, and more entries than the bytes left can hold.
  b = good;
  PutU32At(&b, 18, kMaxVerdictChainCerts + 1);
  EXPECT_EQ(Error(b), absl::StrCat("verdict field chain count at offset 18: ",
                                   kMaxVerdictChainCerts + 1, " (at most ",
                                   kMaxVerdictChainCerts, ")"));
  b = good;
  PutU32At(&b, 18, kMaxVerdictChainCerts);
  EXPECT_THAT(Error(b), StartsWith(absl::StrCat("verdict field chain count at offset 18: ",
                                                kMaxVerdictChainCerts,
                                                " entries cannot fit in the ")));
  // One entry more than sent, with 19 bytes for it (it needs at least 20): its four
  // empty strings are read, its sha256's length is cut short.
  b = good + std::string(19, '\0');
  PutU32At(&b, 18, 3);
  EXPECT_EQ(Error(b), absl::StrCat("verdict field chain[2].sha256 at offset ", good.size() + 16,
                                   ": cut short (needs 4 bytes, 3 left)"));
}

TEST(VerdictCodecTest, TrailingBytesAndOversizedPayloadsAreRefused) {
  std::string good = EncodeVerdict(Sample());
  EXPECT_EQ(Error(good + "x"),
            absl::StrCat("verdict field end at offset ", good.size(),
                         ": 1 bytes after the verdict"));
  EXPECT_EQ(Error(good + std::string(100, '\0')),
            absl::StrCat("verdict field end at offset ", good.size(),
                         ": 100 bytes after the verdict"));
  // A payload above kMaxVerdictBytes is refused whole, before any field is read.
  Verdict big;
  big.error_string.assign(kMaxVerdictBytes, 'e');
  std::string b = EncodeVerdict(big);
  ASSERT_GT(b.size(), kMaxVerdictBytes);
  EXPECT_EQ(Error(b), absl::StrCat("verdict of ", b.size(), " bytes exceeds ", kMaxVerdictBytes));
}

TEST(VerdictCodecTest, JsonAboveTheLimitBecomesAnErrorVerdict) {
  // 1 MiB of control bytes: 1 MiB binary, 6 MiB of JSON ("\u0001" each).
  Verdict v = Sample();
  v.error_string.assign(1 << 20, '\x01');
  ASSERT_LE(EncodeVerdict(v).size(), kMaxVerdictBytes);
  const size_t json_size = VerdictToJson(v).size();
  ASSERT_GT(json_size, kMaxVerdictBytes);
  Verdict decoded = *DecodeVerdict(EncodeVerdict(v));
  std::string json = BoundedVerdictJson(&decoded);
  EXPECT_LE(json.size(), kMaxVerdictBytes);
  EXPECT_FALSE(decoded.valid);
  EXPECT_EQ(decoded.input_error,
            absl::StrCat("verdict of ", json_size, " bytes exceeds ", kMaxVerdictBytes));
  EXPECT_EQ(json, VerdictToJson(decoded));
  // At the limit, the JSON is kept.
  Verdict w = Sample();
  w.error_string.clear();
  w.error_string.assign(kMaxVerdictBytes - VerdictToJson(w).size(), 'e');
  Verdict kept = w;
  EXPECT_EQ(BoundedVerdictJson(&kept).size(), kMaxVerdictBytes);
  EXPECT_EQ(kept.error_string, w.error_string);
}

}  // namespace
}  // namespace vow::x509
