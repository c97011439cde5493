// The oracle through the sandbox: every verification happens in a real worker locked to
// `stdio` and forked by a real broker (the test process). Differential against the
// in-process Verify() on the generated corpus, the broker's clock rule, the system trust
// store through the broker, x509-limbo files, hostile input and crashing workers.
#include "examples/x509_oracle/oracle.h"

#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "examples/x509_oracle/corpus.h"
#include "examples/x509_oracle/limbo.h"
#include "examples/x509_oracle/oracle_test_util.h"
#include "examples/x509_oracle/oracle_worker.h"
#include "examples/x509_oracle/protocol.h"
#include "examples/x509_oracle/verify.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::x509 {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using testing::MakeBadInputs;
using testing::ReadTestdata;
using testing::ValidRequest;

OracleOptions Options(OracleOptions::Workers workers, size_t pool_size = 2) {
  OracleOptions o;
  o.workers = workers;
  o.pool_size = pool_size;
  o.clock.kind = ClockRule::Kind::kFixed;
  o.clock.fixed = absl::FromUnixSeconds(kCorpusTime);
  o.timeout = absl::Seconds(60);
  o.stderr_fd = 2;
  return o;
}

std::unique_ptr<Oracle> MakeOracle(const OracleOptions& o) {
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(o);
  EXPECT_TRUE(oracle.ok()) << oracle.status();
  return oracle.ok() ? *std::move(oracle) : nullptr;
}

// An oracle whose workers carry the test hooks (kCrashMagic, kGarbageMagic).
std::unique_ptr<Oracle> MakeHookedOracle(OracleOptions::Workers workers, size_t pool_size = 2) {
  OracleOptions o = Options(workers, pool_size);
  o.crash_hook_for_testing = true;
  return MakeOracle(o);
}

// ---- The wire format (both sides). ----

TEST(ProtocolTest, JobRoundTrip) {
  VerifyRequest r;
  r.chain = std::string("chain\0bytes", 11);
  r.untrusted = "u";
  r.trusted = "";
  r.host = "::1";
  r.host_kind = VerifyRequest::HostKind::kIp;
  r.purpose = kPurposeSslClient;
  r.time_unix = -62135596800LL;
  absl::StatusOr<Job> job = DecodeJob(EncodeJob(r, true));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->has_time);
  EXPECT_EQ(job->request.chain, r.chain);
  EXPECT_EQ(job->request.untrusted, "u");
  EXPECT_EQ(job->request.trusted, "");
  EXPECT_EQ(job->request.host, "::1");
  EXPECT_EQ(job->request.host_kind, VerifyRequest::HostKind::kIp);
  EXPECT_EQ(job->request.purpose, kPurposeSslClient);
  EXPECT_EQ(job->request.time_unix, r.time_unix);

  EXPECT_EQ(job->trust, TrustSource::kRequest);

  job = DecodeJob(EncodeJob(r, false, TrustSource::kSystem));
  ASSERT_TRUE(job.ok());
  EXPECT_FALSE(job->has_time);
  EXPECT_EQ(job->request.time_unix, 0);
  EXPECT_EQ(job->trust, TrustSource::kSystem);

  // Every other field.
  r.crls = "crl";
  r.host_kind = VerifyRequest::HostKind::kEmail;
  r.subject_cn_fallback = true;
  r.purpose = kNoPurpose;
  r.max_depth = 7;
  r.required_names = {{PeerName::Kind::kDns, "a.test"}, {PeerName::Kind::kIp, "10.0.0.1"},
                      {PeerName::Kind::kEmail, "x@y.test"}};
  job = DecodeJob(EncodeJob(r, true));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->request.crls, "crl");
  EXPECT_EQ(job->request.host_kind, VerifyRequest::HostKind::kEmail);
  EXPECT_TRUE(job->request.subject_cn_fallback);
  EXPECT_EQ(job->request.purpose, kNoPurpose);
  EXPECT_EQ(job->request.max_depth, 7);
  ASSERT_EQ(job->request.required_names.size(), 3u);
  EXPECT_EQ(job->request.required_names[1].kind, PeerName::Kind::kIp);
  EXPECT_EQ(job->request.required_names[1].value, "10.0.0.1");
  EXPECT_EQ(job->request.required_names[2].kind, PeerName::Kind::kEmail);
  r.max_depth = -1;
  job = DecodeJob(EncodeJob(r, true));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->request.max_depth, -1);
}

TEST(ProtocolTest, HostileJobsAreRefused) {
  VerifyRequest r;
  r.chain = "abc";
  r.host = "h";
  std::string good = EncodeJob(r, true);
  // Every truncation.
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeJob(good.substr(0, n)).ok()) << n;
  }
  EXPECT_THAT(std::string(DecodeJob(good + "x").status().message()),
              HasSubstr("1 bytes after the job"));
  std::string bad = good;
  bad[0] = 1;
  EXPECT_THAT(std::string(DecodeJob(bad).status().message()), HasSubstr("job version 1"));
  bad = good;
  bad[1] = static_cast<char>(0x10);
  EXPECT_FALSE(DecodeJob(bad).ok());
  bad = good;
  bad[2] = 4;  // host kind
  EXPECT_THAT(std::string(DecodeJob(bad).status().message()), HasSubstr("bad host kind 4"));
  // A field length that points past the end (0xffffffff).
  bad = good;
  for (int i = 0; i < 4; ++i) bad[16 + i] = static_cast<char>(0xff);
  EXPECT_THAT(std::string(DecodeJob(bad).status().message()), HasSubstr("chain cut short"));
  // The system store together with anchors.
  r.trusted = "x";
  EXPECT_THAT(std::string(DecodeJob(EncodeJob(r, true, TrustSource::kSystem)).status().message()),
              HasSubstr("system trust store and names anchors"));
  r.trusted.clear();
  // Required names: too many, a bad kind.
  r.required_names.assign(kMaxRequiredNames + 1, PeerName{PeerName::Kind::kDns, "a"});
  EXPECT_THAT(std::string(DecodeJob(EncodeJob(r, true)).status().message()),
              HasSubstr("required names (at most"));
  r.required_names.assign(1, PeerName{PeerName::Kind::kIp, "1.2.3.4"});
  good = EncodeJob(r, true);
  ASSERT_TRUE(DecodeJob(good).ok());
  bad = good;
  bad[good.size() - 4 - 7 - 1] = 3;  // the name's kind byte
  EXPECT_THAT(std::string(DecodeJob(bad).status().message()), HasSubstr("has kind 3"));
}

TEST(ProtocolTest, VerdictJsonRoundTripAndHostileVerdicts) {
  Verdict v;
  v.valid = false;
  v.error_code = 62;
  v.error_string = "hostname mismatch";
  v.error_depth = 0;
  v.chain = {{"CN=a\"\\", "CN=b", "2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z", "ab01"},
             {"CN=b", "CN=b", "", "", ""}};
  v.validation_time = -62135596800LL;
  v.openssl_version = "OpenSSL 3.0.x";
  absl::StatusOr<Verdict> back = VerdictFromJson(VerdictToJson(v));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(VerdictToJson(*back), VerdictToJson(v));
  EXPECT_FALSE(VerdictFromJson("{}").ok());
  EXPECT_FALSE(VerdictFromJson("[]").ok());
  EXPECT_FALSE(VerdictFromJson(
                   "{\"valid\":1,\"error_code\":0,\"error_string\":\"\",\"error_depth\":-1,"
                   "\"chain\":[],\"validation_time\":null,\"openssl\":\"\",\"input_error\":\"\",\"internal_error\":\"\"}")
                   .ok());
  EXPECT_TRUE(VerdictFromJson(
                  "{\"valid\":true,\"error_code\":0,\"error_string\":\"\",\"error_depth\":-1,"
                  "\"chain\":[],\"validation_time\":null,\"openssl\":\"\",\"input_error\":\"\",\"internal_error\":\"\"}")
                  .ok());
  EXPECT_FALSE(VerdictFromJson(
                   "{\"valid\":true,\"error_code\":0,\"error_string\":\"\",\"error_depth\":-1,"
                   "\"chain\":[1],\"validation_time\":null,\"openssl\":\"\",\"input_error\":\"\",\"internal_error\":\"\"}")
                   .ok());
  EXPECT_FALSE(VerdictFromJson(
                   "{\"valid\":true,\"error_code\":0,\"error_string\":\"\",\"error_depth\":-1,"
                   "\"chain\":[{\"subject\":\"\"}],\"validation_time\":null,\"openssl\":\"\","
                   "\"input_error\":\"\",\"internal_error\":\"\"}")
                   .ok());
  EXPECT_FALSE(VerdictFromJson(
                   "{\"valid\":true,\"error_code\":0,\"error_string\":\"\",\"error_depth\":-1,"
                   "\"chain\":[],\"validation_time\":\"yesterday\",\"openssl\":\"\","
                   "\"input_error\":\"\",\"internal_error\":\"\"}")
                   .ok());
}

// ---- Differential: in-process vs sandboxed. ----

struct Expected {
  CorpusEntry entry;
  std::string json;  // VerdictToJson of the in-process verdict
};

// In-process verdicts are computed before any Oracle exists: no thread of this process
// runs OpenSSL while the broker forks.
std::vector<Expected> InProcessCorpus() {
  EXPECT_TRUE(WarmUpOpenSsl());
  std::vector<Expected> out;
  for (CorpusEntry& e : MakeCorpus()) {
    Verdict v = Verify(e.request);
    // The corpus's own expectations hold in-process (verify_test checks them in detail).
    EXPECT_EQ(v.valid, e.expect_valid) << e.name;
    std::string json = VerdictToJson(v);
    out.push_back({std::move(e), std::move(json)});
  }
  return out;
}

void ExpectSameVerdicts(Oracle& oracle, const std::vector<Expected>& corpus) {
  for (const Expected& x : corpus) {
    Verdict decoded;
    std::string json =
        oracle.VerifyPayload(EncodeJob(x.entry.request, /*has_time=*/true), &decoded);
    // Byte for byte: the worker's binary verdict, decoded here, makes the same JSON.
    EXPECT_EQ(json, x.json) << x.entry.name;
    EXPECT_EQ(VerdictToJson(decoded), json) << x.entry.name;
    absl::StatusOr<Verdict> v = VerdictFromJson(json);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->valid, x.entry.expect_valid) << x.entry.name;
    if (x.entry.expect_input_error) {
      EXPECT_THAT(v->input_error, ::testing::Not(IsEmpty())) << x.entry.name;
    } else {
      EXPECT_EQ(v->error_code, x.entry.expect_error) << x.entry.name;
      EXPECT_EQ(v->error_depth, x.entry.expect_depth) << x.entry.name;
    }
  }
}

TEST(OracleDifferentialTest, PoolGivesInProcessVerdicts) {
  std::vector<Expected> corpus = InProcessCorpus();
  ASSERT_GE(corpus.size(), 15u);
  std::unique_ptr<Oracle> oracle = MakeOracle(Options(OracleOptions::Workers::kPool));
  ASSERT_NE(oracle, nullptr);
  // Twice: the second round is served by the same, already used, workers.
  ExpectSameVerdicts(*oracle, corpus);
  ExpectSameVerdicts(*oracle, corpus);
  EXPECT_EQ(oracle->failed_workers(), 0u);
}

TEST(OracleDifferentialTest, FreshWorkersGiveInProcessVerdicts) {
  std::vector<Expected> corpus = InProcessCorpus();
  std::unique_ptr<Oracle> oracle = MakeOracle(Options(OracleOptions::Workers::kFresh));
  ASSERT_NE(oracle, nullptr);
  ExpectSameVerdicts(*oracle, corpus);
  EXPECT_EQ(oracle->failed_workers(), 0u);
  EXPECT_EQ(oracle->broker().live_workers(), 0u);
}

TEST(OracleDifferentialTest, RequestWithoutTimeUsesTheBrokersFixedClock) {
  std::vector<Expected> corpus = InProcessCorpus();
  std::unique_ptr<Oracle> oracle = MakeOracle(Options(OracleOptions::Workers::kPool));
  ASSERT_NE(oracle, nullptr);
  for (const Expected& x : corpus) {
    VerifyRequest r = x.entry.request;
    r.time_unix = 0;  // not sent: the worker asks the broker, whose clock says kCorpusTime
    EXPECT_EQ(oracle->VerifyPayload(EncodeJob(r, /*has_time=*/false)), x.json) << x.entry.name;
  }
}

TEST(OracleDifferentialTest, ClockRuleDecidesForARequestWithoutTime) {
  ASSERT_TRUE(WarmUpOpenSsl());
  ValidChainPems pems = MakeValidChain();  // leaf valid 2024..2026
  VerifyRequest r = ValidRequest(pems);
  OracleOptions o = Options(OracleOptions::Workers::kPool, 1);
  o.clock.fixed = absl::FromUnixSeconds(kCorpusTime + 2 * 365 * 86400);  // 2027
  std::unique_ptr<Oracle> oracle = MakeOracle(o);
  ASSERT_NE(oracle, nullptr);
  Verdict later = oracle->Verify(r, /*has_time=*/false);
  EXPECT_EQ(later.error_code, 10) << VerdictToJson(later);  // expired
  // A request that names its time is not affected by the clock.
  EXPECT_TRUE(oracle->Verify(r, /*has_time=*/true).valid);

  oracle.reset();
  o.clock.kind = ClockRule::Kind::kNone;
  oracle = MakeOracle(o);
  ASSERT_NE(oracle, nullptr);
  Verdict none = oracle->Verify(r, /*has_time=*/false);
  EXPECT_FALSE(none.valid);
  EXPECT_THAT(none.input_error, StartsWith("clock: "));
  EXPECT_EQ(oracle->failed_workers(), 0u);
}

// ---- The trust store through the broker. ----

TEST(OracleTrustStoreTest, SystemBundleIsReadThroughTheBroker) {
  OracleOptions o = Options(OracleOptions::Workers::kPool, 1);
  o.clock.kind = ClockRule::Kind::kReal;
  std::unique_ptr<Oracle> oracle = MakeOracle(o);
  ASSERT_NE(oracle, nullptr);
  VerifyRequest r;
  r.chain = ReadTestdata("valid_chain.pem");
  ASSERT_FALSE(r.chain.empty());
  r.host = "www.vow.test";
  // The system bundle, where the demo root is not.
  Verdict v = oracle->Verify(r, /*has_time=*/false, TrustSource::kSystem);
  EXPECT_THAT(v.input_error, IsEmpty());
  EXPECT_EQ(v.error_code, 20) << VerdictToJson(v);  // unable to get local issuer
  // Twice (the bundle is cached in the worker).
  v = oracle->Verify(r, /*has_time=*/false, TrustSource::kSystem);
  EXPECT_EQ(v.error_code, 20);
  // With the demo root given, the same chain is valid now (real clock; valid to 2045).
  r.trusted = ReadTestdata("demo_root.pem");
  EXPECT_TRUE(oracle->Verify(r, /*has_time=*/false).valid);
  // The system store and anchors in the same job: refused by the worker.
  v = oracle->Verify(r, /*has_time=*/false, TrustSource::kSystem);
  EXPECT_THAT(v.input_error, HasSubstr("system trust store and names anchors"));
}

// `trusted_certs: []` / an empty `trusted` is an empty store: nothing is trusted, the
// system bundle is never consulted (it used to be). A self-signed leaf that IS in the
// system bundle would be valid against it; an empty store must still say "untrusted".
TEST(OracleTrustStoreTest, EmptyTrustedIsAnEmptyStoreNotTheSystemBundle) {
  OracleOptions o = Options(OracleOptions::Workers::kPool, 1);
  o.clock.kind = ClockRule::Kind::kReal;
  // The bundle is the demo root itself: with kSystem the chain is valid, so a fallback
  // to the bundle would show.
  o.trust_bundle = std::string(getenv("TEST_SRCDIR")) + "/" + getenv("TEST_WORKSPACE") +
                   "/examples/x509_oracle/testdata/demo_root.pem";
  std::unique_ptr<Oracle> oracle = MakeOracle(o);
  ASSERT_NE(oracle, nullptr);
  VerifyRequest r;
  r.chain = ReadTestdata("valid_chain.pem");
  r.host = "www.vow.test";
  EXPECT_TRUE(oracle->Verify(r, /*has_time=*/false, TrustSource::kSystem).valid);
  Verdict v = oracle->Verify(r, /*has_time=*/false, TrustSource::kRequest);
  EXPECT_FALSE(v.valid);
  EXPECT_THAT(v.input_error, IsEmpty());
  EXPECT_EQ(v.error_code, 20) << VerdictToJson(v);  // unable to get local issuer
  // The same through limbo: trusted_certs [] is a FAILURE.
  ASSERT_TRUE(WarmUpOpenSsl());
  EXPECT_FALSE(Verify(r).valid);
}

TEST(OracleTrustStoreTest, MissingBundleIsAnInputError) {
  OracleOptions o = Options(OracleOptions::Workers::kFresh);
  o.trust_bundle = "/nonexistent-vow-dir/ca.crt";
  std::unique_ptr<Oracle> oracle = MakeOracle(o);
  ASSERT_NE(oracle, nullptr);
  VerifyRequest r;
  r.chain = ReadTestdata("valid_chain.pem");
  Verdict v = oracle->Verify(r, /*has_time=*/true, TrustSource::kSystem);
  EXPECT_THAT(v.input_error, StartsWith("trust store /nonexistent-vow-dir/ca.crt: "));
}

TEST(OracleTrustStoreTest, PolicyUnveilsOnlyTheBundle) {
  OracleOptions o;
  std::string path;
  Policy p = OraclePolicy(o, &path);
  EXPECT_EQ(p.promises, PromiseSet{Promise::kStdio});
  EXPECT_EQ(p.penalty, Penalty::kKill);
  ASSERT_GE(p.paths.size(), 1u);
  EXPECT_EQ(p.paths[0].path, "/etc/ssl/certs");
  for (const PathRule& rule : p.paths) {
    EXPECT_TRUE(rule.read);
    EXPECT_FALSE(rule.write || rule.create || rule.exec);
  }
  EXPECT_TRUE(p.connects.empty());
}

// ---- x509-limbo through the sandbox: the same lines as in-process. ----

TEST(OracleLimboTest, SameLinesAsInProcess) {
  ASSERT_TRUE(WarmUpOpenSsl());
  constexpr int64_t kNow = 1893456000;  // 2030-01-01
  std::map<std::string, LimboReport> in_process;
  for (const char* file : {"limbo/single_case.json", "limbo/suite.json"}) {
    absl::StatusOr<std::vector<LimboCase>> cases = ParseLimbo(ReadTestdata(file), kNow);
    ASSERT_TRUE(cases.ok()) << cases.status();
    in_process[file] = RunLimbo(*cases, Verify);
  }
  std::unique_ptr<Oracle> oracle = MakeOracle(Options(OracleOptions::Workers::kPool, 1));
  ASSERT_NE(oracle, nullptr);
  for (const char* file : {"limbo/single_case.json", "limbo/suite.json"}) {
    absl::StatusOr<std::vector<LimboCase>> cases = ParseLimbo(ReadTestdata(file), kNow);
    ASSERT_TRUE(cases.ok());
    int calls = 0;
    LimboReport r = RunLimbo(*cases, [&](const VerifyRequest& req) {
      ++calls;
      return oracle->Verify(req);
    });
    EXPECT_EQ(r.lines, in_process[file].lines) << file;
    EXPECT_EQ(r.summary, in_process[file].summary) << file;
    EXPECT_EQ(calls, r.total - r.skipped);
  }
  EXPECT_EQ(in_process["limbo/suite.json"].summary,
            "limbo: 25 cases: 18 match, 3 MISMATCH, 4 skipped");
}

// ---- Hostile input and crashing workers. ----

TEST(OracleHostileTest, BadInputGetsAnErrorVerdictAndTheWorkerStays) {
  ASSERT_TRUE(WarmUpOpenSsl());
  ValidChainPems pems = MakeValidChain();
  std::vector<testing::BadInput> bad = MakeBadInputs(pems);
  std::unique_ptr<Oracle> oracle = MakeOracle(Options(OracleOptions::Workers::kPool, 1));
  ASSERT_NE(oracle, nullptr);
  for (const testing::BadInput& b : bad) {
    Verdict v = oracle->Verify(b.request);
    EXPECT_FALSE(v.valid) << b.name;
    EXPECT_THAT(v.input_error, HasSubstr(b.expect_input_error)) << b.name;
    EXPECT_TRUE(oracle->Verify(ValidRequest(pems)).valid) << "after " << b.name;
  }
  // Malformed job frames: decoded by the worker, answered, and it carries on.
  for (std::string job : {std::string(), std::string("\x07garbage"), std::string(100, '\xff'),
                          EncodeJob(ValidRequest(pems), true) + "trailing"}) {
    std::string json = oracle->VerifyPayload(job);
    absl::StatusOr<Verdict> v = VerdictFromJson(json);
    ASSERT_TRUE(v.ok()) << json;
    EXPECT_THAT(v->input_error, StartsWith("bad request frame: ")) << json;
  }
  EXPECT_TRUE(oracle->Verify(ValidRequest(pems)).valid);
  EXPECT_EQ(oracle->failed_workers(), 0u);  // none of this needed a new worker
}

TEST(OracleHostileTest, CrashingPoolWorkerGivesAnErrorVerdictAndIsReplaced) {
  ASSERT_TRUE(WarmUpOpenSsl());
  ValidChainPems pems = MakeValidChain();
  std::unique_ptr<Oracle> oracle = MakeHookedOracle(OracleOptions::Workers::kPool, 1);
  ASSERT_NE(oracle, nullptr);
  VerifyRequest crash = ValidRequest(pems);
  crash.chain += kCrashMagic;
  for (int round = 1; round <= 3; ++round) {
    Verdict v = oracle->Verify(crash);
    EXPECT_FALSE(v.valid);
    EXPECT_THAT(v.internal_error, StartsWith("worker crashed: "));
    // abort() -> SIGABRT, as the broker saw it (not "killed by the broker").
    EXPECT_THAT(v.internal_error, HasSubstr("signal 6")) << v.input_error;
    EXPECT_EQ(oracle->failed_workers(), static_cast<uint64_t>(round));
    EXPECT_TRUE(oracle->Verify(ValidRequest(pems)).valid);  // the replacement serves
  }
  // The hook is in the workers only: this process verifies the magic input normally.
  EXPECT_THAT(Verify(crash).input_error, IsEmpty());
}

TEST(OracleHostileTest, CrashingFreshWorkerGivesAnErrorVerdict) {
  ASSERT_TRUE(WarmUpOpenSsl());
  ValidChainPems pems = MakeValidChain();
  std::unique_ptr<Oracle> oracle = MakeHookedOracle(OracleOptions::Workers::kFresh);
  ASSERT_NE(oracle, nullptr);
  VerifyRequest crash = ValidRequest(pems);
  crash.chain += kCrashMagic;
  Verdict v = oracle->Verify(crash);
  EXPECT_THAT(v.internal_error, StartsWith("worker crashed: "));
  EXPECT_THAT(v.internal_error, HasSubstr("signal 6"));
  EXPECT_TRUE(oracle->Verify(ValidRequest(pems)).valid);
  EXPECT_EQ(oracle->broker().live_workers(), 0u);
}

// A worker that answers something that is not a binary verdict: the request gets an
// internal-error verdict naming what was wrong, the worker is not reused (pool: replaced;
// fresh: killed), and the next request is served.
TEST(OracleHostileTest, GarbageVerdictFailsTheRequestAndThePoolWorkerIsReplaced) {
  ASSERT_TRUE(WarmUpOpenSsl());
  ValidChainPems pems = MakeValidChain();
  std::unique_ptr<Oracle> oracle = MakeHookedOracle(OracleOptions::Workers::kPool, 1);
  ASSERT_NE(oracle, nullptr);
  VerifyRequest garbage = ValidRequest(pems);
  garbage.chain += kGarbageMagic;
  for (int round = 1; round <= 2; ++round) {
    Verdict v = oracle->Verify(garbage);
    EXPECT_FALSE(v.valid);
    EXPECT_THAT(v.input_error, IsEmpty());
    EXPECT_THAT(v.internal_error,
                StartsWith("worker failed: the worker's answer is not a verdict: verdict "
                           "field version at offset 0: 7 (want 1)"));
    EXPECT_EQ(oracle->failed_workers(), static_cast<uint64_t>(round));
    EXPECT_TRUE(oracle->Verify(ValidRequest(pems)).valid);  // the replacement serves
  }
}

TEST(OracleHostileTest, GarbageVerdictFromAFreshWorkerFailsTheRequest) {
  ASSERT_TRUE(WarmUpOpenSsl());
  ValidChainPems pems = MakeValidChain();
  std::unique_ptr<Oracle> oracle = MakeHookedOracle(OracleOptions::Workers::kFresh);
  ASSERT_NE(oracle, nullptr);
  VerifyRequest garbage = ValidRequest(pems);
  garbage.chain += kGarbageMagic;
  Verdict v = oracle->Verify(garbage);
  EXPECT_THAT(v.internal_error, StartsWith("worker failed: the worker's answer is not a "
                                           "verdict: verdict field version at offset 0"));
  EXPECT_EQ(oracle->failed_workers(), 1u);
  EXPECT_TRUE(oracle->Verify(ValidRequest(pems)).valid);
  EXPECT_EQ(oracle->broker().live_workers(), 0u);
}

TEST(OracleHostileTest, OversizedPayloadIsRefusedBeforeAnyWorker) {
  std::unique_ptr<Oracle> oracle = MakeOracle(Options(OracleOptions::Workers::kFresh));
  ASSERT_NE(oracle, nullptr);
  std::string json = oracle->VerifyPayload(std::string(kMaxJobBytes + 1, 'x'));
  EXPECT_THAT(json, HasSubstr("exceeds the limit of 67108864"));
}

}  // namespace
}  // namespace vow::x509

namespace vow::x509 {
namespace {

// Pids of this process's descendants that run under a seccomp filter (the locked
// workers; the broker's own helpers are not filtered), but not the fork server's pre-made
// worker (README "Spawn, round 5"), which is locked before it is any pool's worker: until
// its hand-off its fd 0 is the server's /dev/null, where a pool worker's is its data
// socket.
std::vector<pid_t> LockedDescendants() {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream status(entry.path() / "status");
    std::string line;
    bool filtered = false;
    while (std::getline(status, line)) {
      if (line.rfind("Seccomp:", 0) == 0) filtered = line.find('2') != std::string::npos;
    }
    if (!filtered) continue;
    char stdin_link[64];
    const ssize_t n = readlink((entry.path() / "fd" / "0").c_str(), stdin_link,
                               sizeof(stdin_link) - 1);
    if (n > 0 && std::string(stdin_link, static_cast<size_t>(n)) == "/dev/null") continue;
    for (pid_t p = pid; p > 1;) {
      std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
      std::string line;
      std::getline(stat, line);
      size_t close = line.rfind(')');
      if (close == std::string::npos) break;
      std::istringstream rest(line.substr(close + 2));
      std::string state;
      pid_t ppid = 0;
      rest >> state >> ppid;
      if (ppid == getpid()) {
        out.push_back(pid);
        break;
      }
      p = ppid;
    }
  }
  return out;
}

// True once `pid` has exited (a zombie not yet reaped, or reaped and gone).
bool IsDeadOrGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() &&
         (line[close + 2] == 'Z' || line[close + 2] == 'X');
}

// A pooled worker killed while idle costs no request: the request finds it gone before
// sending the job and goes to a fresh worker.
TEST(OraclePoolTest, WorkerKilledWhileIdleCostsNoRequest) {
  ASSERT_TRUE(WarmUpOpenSsl());
  ValidChainPems pems = MakeValidChain();
  std::unique_ptr<Oracle> oracle = MakeOracle(Options(OracleOptions::Workers::kPool, 1));
  ASSERT_NE(oracle, nullptr);
  VerifyRequest r = testing::ValidRequest(pems);
  ASSERT_TRUE(oracle->Verify(r).valid);
  for (int round = 0; round < 3; ++round) {
    // Wait for the pool's one idle worker, then kill it.
    absl::Time until = absl::Now() + absl::Seconds(10);
    std::vector<pid_t> workers;
    while (absl::Now() < until) {
      workers = LockedDescendants();
      if (oracle->idle_workers() == 1 && workers.size() == 1) break;
      absl::SleepFor(absl::Milliseconds(5));
    }
    ASSERT_EQ(workers.size(), 1u) << "round " << round;
    ASSERT_EQ(kill(workers[0], SIGKILL), 0);
    // kill() only queues the signal: on a loaded machine the worker may not have run
    // (and died) for a while, and a request sent to it before then is a request it was
    // killed during, not one it was idle for. Wait until it is dead (a zombie, or reaped).
    until = absl::Now() + absl::Seconds(10);
    while (absl::Now() < until && !IsDeadOrGone(workers[0])) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_TRUE(IsDeadOrGone(workers[0])) << "round " << round;
    Verdict v = oracle->Verify(r);
    EXPECT_TRUE(v.valid) << VerdictToJson(v);
    EXPECT_THAT(v.internal_error, IsEmpty());
    EXPECT_EQ(oracle->retried_requests(), static_cast<uint64_t>(round + 1));
  }
}

// ---- colocate_single_caller (performance only, but the caller's affinity is its own). ----

cpu_set_t AffinityOf(pid_t pid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(pid, sizeof(set), &set), 0) << "pid " << pid;
  return set;
}
std::string CpuList(const cpu_set_t& set) {
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) absl::StrAppend(&out, out.empty() ? "" : ",", c);
  }
  return out;
}
// Lets this thread run on every online CPU (a test must not inherit a pinning left by
// an earlier one) and returns that set; fewer than two CPUs: an empty set.
cpu_set_t AllCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 2) return set;
  for (long c = 0; c < n && c < CPU_SETSIZE; ++c) CPU_SET(static_cast<int>(c), &set);
  EXPECT_EQ(sched_setaffinity(0, sizeof(set), &set), 0);
  return AffinityOf(0);
}
// The pool's one worker (pool size 1), once it is idle.
pid_t TheIdleWorker(Oracle& oracle) {
  absl::Time until = absl::Now() + absl::Seconds(10);
  std::vector<pid_t> workers;
  while (absl::Now() < until) {
    workers = LockedDescendants();
    if (oracle.idle_workers() == 1 && workers.size() == 1) return workers[0];
    absl::SleepFor(absl::Milliseconds(5));
  }
  ADD_FAILURE() << "no single idle worker; " << workers.size() << " locked descendants";
  return -1;
}

// A serial caller's worker runs on the caller's CPU; the caller gets its own affinity
// back, whether it was free to run anywhere or already pinned.
TEST(OraclePoolTest, ASerialCallersWorkerRunsOnTheCallersCpu) {
  ASSERT_TRUE(WarmUpOpenSsl());
  const cpu_set_t all = AllCpus();
  if (CPU_COUNT(&all) < 2) GTEST_SKIP() << "one CPU: nothing to co-locate";
  ValidChainPems pems = MakeValidChain();
  std::unique_ptr<Oracle> oracle = MakeOracle(Options(OracleOptions::Workers::kPool, 1));
  ASSERT_NE(oracle, nullptr);
  VerifyRequest r = testing::ValidRequest(pems);

  // Free to run anywhere: pinned for the call only; the worker stays on one CPU.
  ASSERT_TRUE(oracle->Verify(r).valid);
  EXPECT_EQ(CpuList(AffinityOf(0)), CpuList(all)) << "the caller's affinity was not restored";
  pid_t worker = TheIdleWorker(*oracle);
  ASSERT_GT(worker, 0);
  cpu_set_t worker_cpus = AffinityOf(worker);
  EXPECT_EQ(CPU_COUNT(&worker_cpus), 1) << CpuList(worker_cpus);

  // Callers pinned to each of two CPUs in turn: the worker follows, the caller stays.
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
    if (CPU_ISSET(c, &all)) cpus.push_back(c);
  }
  for (int round = 0; round < 2; ++round) {
    for (int cpu : cpus) {
      std::thread caller([&] {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
        EXPECT_TRUE(oracle->Verify(r).valid);
        EXPECT_EQ(CpuList(AffinityOf(0)), std::to_string(cpu));
      });
      caller.join();
      EXPECT_EQ(CpuList(AffinityOf(TheIdleWorker(*oracle))), std::to_string(cpu))
          << "round " << round;
    }
  }
}

TEST(OraclePoolTest, WithoutColocationWorkersKeepTheProcesssAffinity) {
  ASSERT_TRUE(WarmUpOpenSsl());
  const cpu_set_t all = AllCpus();
  if (CPU_COUNT(&all) < 2) GTEST_SKIP() << "one CPU: nothing to co-locate";
  ValidChainPems pems = MakeValidChain();
  OracleOptions o = Options(OracleOptions::Workers::kPool, 1);
  o.colocate_single_caller = false;
  std::unique_ptr<Oracle> oracle = MakeOracle(o);
  ASSERT_NE(oracle, nullptr);
  std::thread caller([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    EXPECT_TRUE(oracle->Verify(testing::ValidRequest(pems)).valid);
  });
  caller.join();
  EXPECT_EQ(CpuList(AffinityOf(TheIdleWorker(*oracle))), CpuList(all));
}

// Concurrent callers: every verdict right, every caller's affinity its own after each
// call, and once they are done a serial call still pins (the in-flight count went back
// to zero).
TEST(OraclePoolTest, ConcurrentCallersKeepTheirAffinity) {
  ASSERT_TRUE(WarmUpOpenSsl());
  const cpu_set_t all = AllCpus();
  if (CPU_COUNT(&all) < 2) GTEST_SKIP() << "one CPU: nothing to co-locate";
  ValidChainPems pems = MakeValidChain();
  std::unique_ptr<Oracle> oracle = MakeOracle(Options(OracleOptions::Workers::kPool, 2));
  ASSERT_NE(oracle, nullptr);
  VerifyRequest r = testing::ValidRequest(pems);
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        EXPECT_TRUE(oracle->Verify(r).valid);
        EXPECT_EQ(CpuList(AffinityOf(0)), CpuList(all)) << "call " << i;
      }
    });
  }
  for (std::thread& c : callers) c.join();
  std::thread caller([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    EXPECT_TRUE(oracle->Verify(r).valid);
  });
  caller.join();
  int pinned = 0;
  for (pid_t w : LockedDescendants()) {
    cpu_set_t cpus = AffinityOf(w);
    pinned += CPU_COUNT(&cpus) == 1;
  }
  EXPECT_GE(pinned, 1) << "a serial call after concurrent ones did not pin its worker";
}

}  // namespace
}  // namespace vow::x509
