// The binary verdict (protocol.h), worker -> front end: round trips (every corpus case
// gives the same JSON as in-process) and the decoder on hostile bytes: cut at every byte,
// each length field too large, out-of-range values, unknown flags, trailing bytes. No
// fork, no sandbox (run under ASan by test.sh).
#include "examples/x509_oracle/protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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

// ---- DecodeJobInto: one Job reused for every job (the worker's loop) ----

// Jobs that differ in every field: the corpus's, and variants with required names, no
// time, the system trust store, the CN fallback and each host kind.
std::vector<std::string> JobVariety() {
  std::vector<std::string> out;
  std::vector<CorpusEntry> corpus = MakeCorpus();
  for (const CorpusEntry& e : corpus) out.push_back(EncodeJob(e.request, true));
  VerifyRequest r = corpus[0].request;
  r.required_names = {{PeerName::Kind::kDns, "www.example.com"},
                      {PeerName::Kind::kIp, "192.0.2.1"},
                      {PeerName::Kind::kEmail, "a@example.com"}};
  r.host_kind = VerifyRequest::HostKind::kEmail;
  r.subject_cn_fallback = true;
  r.purpose = kNoPurpose;
  r.max_depth = 7;
  r.crls = "not a CRL, but bytes";
  out.push_back(EncodeJob(r, true));
  r.required_names.resize(1);
  r.host_kind = VerifyRequest::HostKind::kIp;
  out.push_back(EncodeJob(r, false));
  r.trusted.clear();
  r.host_kind = VerifyRequest::HostKind::kDns;
  out.push_back(EncodeJob(r, true, TrustSource::kSystem));
  return out;
}

TEST(JobCodecTest, DecodingIntoAReusedJobGivesWhatAFreshDecodeGives) {
  std::vector<std::string> jobs = JobVariety();
  ASSERT_GT(jobs.size(), 20u);
  for (const std::string& a : jobs) {
    for (const std::string& b : jobs) {
      Job job;
      ASSERT_TRUE(DecodeJobInto(a, &job).ok());
      ASSERT_TRUE(DecodeJobInto(b, &job).ok());
      // The encoding is canonical: the same bytes back means the same job, field by field.
      EXPECT_EQ(EncodeJob(job.request, job.has_time, job.trust), b);
      absl::StatusOr<Job> fresh = DecodeJob(b);
      ASSERT_TRUE(fresh.ok());
      EXPECT_EQ(EncodeJob(fresh->request, fresh->has_time, fresh->trust), b);
    }
  }
  // After a refused job, the next one decodes whole.
  Job job;
  ASSERT_TRUE(DecodeJobInto(jobs[jobs.size() - 3], &job).ok());
  std::string cut = jobs[0].substr(0, jobs[0].size() - 1);
  EXPECT_FALSE(DecodeJobInto(cut, &job).ok());
  ASSERT_TRUE(DecodeJobInto(jobs[1], &job).ok());
  EXPECT_EQ(EncodeJob(job.request, job.has_time, job.trust), jobs[1]);
}

TEST(JobCodecTest, ALargeJobsStorageIsGivenBack) {
  VerifyRequest r = MakeCorpus()[0].request;
  const std::string small = EncodeJob(r, true);
  r.untrusted.assign(2u << 20, 'u');
  const std::string large = EncodeJob(r, true);
  Job job;
  ASSERT_TRUE(DecodeJobInto(small, &job).ok());
  const char* storage = job.request.chain.data();
  ShedLargeJob(&job, 1u << 20);
  EXPECT_EQ(job.request.chain.data(), storage);  // kept
  EXPECT_EQ(EncodeJob(job.request, job.has_time, job.trust), small);
  ASSERT_TRUE(DecodeJobInto(large, &job).ok());
  ShedLargeJob(&job, 1u << 20);
  EXPECT_LT(job.request.untrusted.capacity(), 1u << 20);
  EXPECT_EQ(EncodeJob(job.request, job.has_time, job.trust), EncodeJob(VerifyRequest{}, false));
}

// ---- RecvSoleFrame: the front end's read of a worker's answer ----

struct SocketPair {
  SocketPair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ours = sv[0];
    theirs = sv[1];
  }
  ~SocketPair() {
    if (ours >= 0) close(ours);
    if (theirs >= 0) close(theirs);
  }
  void Write(const std::string& bytes) {
    ASSERT_EQ(write(theirs, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void CloseTheirs() {
    close(theirs);
    theirs = -1;
  }
  int ours = -1;
  int theirs = -1;
};

absl::Status Sole(int fd, std::string* out, uint32_t max = kMaxVerdictBytes,
                  absl::Duration wait = absl::Seconds(10)) {
  return RecvSoleFrame(fd, max, absl::Now() + wait, out);
}

TEST(RecvSoleFrameTest, ReadsAFrameWholeOrInPieces) {
  const std::string small = EncodeVerdict(Sample());
  const std::string big(3 * kSoleFrameChunk + 5, 'b');  // beyond one recv's chunk
  for (const std::string& payload : {small, big, std::string()}) {
    // All at once.
    {
      SocketPair p;
      std::string frame = Frame(payload);
      std::thread writer([&] { p.Write(frame); });
      std::string got = "old";
      ASSERT_TRUE(Sole(p.ours, &got).ok());
      writer.join();
      EXPECT_EQ(got, payload);
    }
    // Split inside the length prefix, then inside the payload, with pauses.
    {
      SocketPair p;
      std::string frame = Frame(payload);
      const size_t cut = std::min(frame.size(), 5 + payload.size() / 2);
      std::thread writer([&] {
        p.Write(frame.substr(0, 2));
        absl::SleepFor(absl::Milliseconds(20));
        p.Write(frame.substr(2, cut - 2));
        absl::SleepFor(absl::Milliseconds(20));
        if (cut < frame.size()) p.Write(frame.substr(cut));
      });
      std::string got;
      ASSERT_TRUE(Sole(p.ours, &got).ok());
      writer.join();
      EXPECT_EQ(got, payload);
    }
  }
}

TEST(RecvSoleFrameTest, BytesAfterTheFrameAreRefused) {
  SocketPair p;
  p.Write(Frame("verdict") + "x");
  std::string got;
  absl::Status s = Sole(p.ours, &got);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("1 bytes after the frame of 7 bytes"));
  // A second whole frame in the same read is refused the same way.
  SocketPair q;
  q.Write(Frame("verdict") + Frame("another"));
  s = Sole(q.ours, &got);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("11 bytes after the frame of 7 bytes"));
}

TEST(RecvSoleFrameTest, EndOfStreamOversizeAndDeadline) {
  std::string got;
  {
    SocketPair p;
    p.CloseTheirs();
    EXPECT_TRUE(absl::IsOutOfRange(Sole(p.ours, &got)));
  }
  {
    SocketPair p;
    p.Write(std::string("\x05\x00", 2));
    p.CloseTheirs();
    EXPECT_TRUE(absl::IsDataLoss(Sole(p.ours, &got)));
  }
  {
    SocketPair p;
    p.Write(Frame("verdict").substr(0, 8));
    p.CloseTheirs();
    EXPECT_TRUE(absl::IsDataLoss(Sole(p.ours, &got)));
    EXPECT_EQ(got, "");
  }
  {
    SocketPair p;
    p.Write(Frame(std::string(101, 'v')));
    absl::Status s = Sole(p.ours, &got, 100);
    EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("frame of 101 bytes"));
  }
  {
    SocketPair p;
    absl::Time start = absl::Now();
    EXPECT_TRUE(absl::IsDeadlineExceeded(Sole(p.ours, &got, kMaxVerdictBytes,
                                              absl::Milliseconds(50))));
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
    p.Write(Frame("late").substr(0, 6));  // a frame that starts but never ends
    EXPECT_TRUE(absl::IsDeadlineExceeded(Sole(p.ours, &got, kMaxVerdictBytes,
                                              absl::Milliseconds(50))));
  }
}

// ---- FrameReader: the worker's reads of its jobs ----

TEST(FrameReaderTest, FramesInOneReadAndAcrossReads) {
  SocketPair p;
  FrameReader reader(p.ours, 1u << 24);
  absl::string_view payload;
  uint32_t announced = 0;
  // Three frames arriving together: each comes out whole, in order.
  p.Write(Frame("first") + Frame("") + Frame("third"));
  for (const char* want : {"first", "", "third"}) {
    ASSERT_EQ(reader.Next(&payload, &announced), FrameReader::Result::kFrame);
    EXPECT_EQ(payload, want);
  }
  // A frame split inside its prefix and its payload, with pauses; one larger than the
  // buffer; then one larger than kKeep, after which the buffer is given back.
  const std::string large(FrameReader::kChunk * 3 + 7, 'L');
  const std::string huge(FrameReader::kKeep + 1, 'H');
  for (const std::string& want : {std::string("split"), large, huge, std::string("small")}) {
    std::string frame = Frame(want);
    std::thread writer([&] {
      size_t at = 0;
      for (size_t piece : {size_t{3}, size_t{4} + want.size() / 2}) {
        p.Write(frame.substr(at, piece));
        at += piece;
        absl::SleepFor(absl::Milliseconds(20));
      }
      // The rest, in pieces a socket can take while the reader reads.
      while (at < frame.size()) {
        size_t n = std::min<size_t>(frame.size() - at, 100000);
        p.Write(frame.substr(at, n));
        at += n;
      }
    });
    ASSERT_EQ(reader.Next(&payload, &announced), FrameReader::Result::kFrame);
    writer.join();
    EXPECT_EQ(payload, want);
    EXPECT_EQ(announced, want.size());
    // The storage of the frame above kKeep is given back at the next call.
    if (want == huge) {
      EXPECT_GT(reader.buffer_capacity(), FrameReader::kKeep);
    }
    if (want == "small") {
      EXPECT_LT(reader.buffer_capacity(), FrameReader::kKeep);
    }
  }
  // Frames right after one above kKeep (the buffer is given back between them).
  const std::string large2(FrameReader::kKeep + 10, 'M');
  p.Write(Frame(large2).substr(0, 4));
  std::thread writer([&] { p.Write(Frame(large2).substr(4) + Frame("kept")); });
  ASSERT_EQ(reader.Next(&payload, &announced), FrameReader::Result::kFrame);
  writer.join();
  EXPECT_EQ(payload, large2);
  ASSERT_EQ(reader.Next(&payload, &announced), FrameReader::Result::kFrame);
  EXPECT_EQ(payload, "kept");
  // EOF between frames.
  p.CloseTheirs();
  EXPECT_EQ(reader.Next(&payload, &announced), FrameReader::Result::kEnd);
}

TEST(FrameReaderTest, CutFramesAndOversizeAnnouncements) {
  absl::string_view payload;
  uint32_t announced = 0;
  for (size_t keep : {size_t{1}, size_t{3}, size_t{4}, size_t{9}}) {
    SocketPair p;
    FrameReader reader(p.ours, 1000);
    p.Write(Frame("0123456789").substr(0, keep));
    p.CloseTheirs();
    EXPECT_EQ(reader.Next(&payload, &announced), FrameReader::Result::kCut) << keep;
  }
  SocketPair p;
  FrameReader reader(p.ours, 1000);
  p.Write(Frame(std::string(1000, 'x')) + Frame(std::string(1001, 'y')));
  ASSERT_EQ(reader.Next(&payload, &announced), FrameReader::Result::kFrame);
  EXPECT_EQ(payload.size(), 1000u);
  EXPECT_EQ(reader.Next(&payload, &announced), FrameReader::Result::kTooBig);
  EXPECT_EQ(announced, 1001u);
}

}  // namespace
}  // namespace vow::x509
