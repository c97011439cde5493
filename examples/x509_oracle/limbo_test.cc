// The x509-limbo reader on the hand-written files in testdata/limbo/ (made by
// make_demo_chains.sh from the demo chains), run with the in-process verifier.
#include "examples/x509_oracle/limbo.h"

#include <openssl/x509_vfy.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "examples/x509_oracle/verify.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::x509 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

std::string ReadTestdata(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::string path = absl::StrCat(srcdir != nullptr ? srcdir : ".",
                                   "/vow/examples/x509_oracle/testdata/", name);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

constexpr int64_t k2030_06_01_12 = 1906545600;  // 2030-06-01T12:00:00Z

class LimboTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(WarmUpOpenSsl()); }
};

TEST_F(LimboTest, SingleCaseFileWithEveryField) {
  absl::StatusOr<std::vector<LimboCase>> cases =
      ParseLimbo(ReadTestdata("limbo/single_case.json"));
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_EQ(cases->size(), 1u);
  const LimboCase& c = (*cases)[0];
  EXPECT_EQ(c.id, "vow::single::valid-dns");
  EXPECT_THAT(c.description, StartsWith("A valid chain for `www.vow.test`"));
  EXPECT_EQ(c.skip_reason, "");
  EXPECT_TRUE(c.expected_success);
  EXPECT_EQ(c.kind, LimboCase::Kind::kServer);
  EXPECT_EQ(c.request.host, "www.vow.test");
  EXPECT_EQ(c.request.host_kind, VerifyRequest::HostKind::kDns);
  EXPECT_EQ(c.request.time_unix, k2030_06_01_12);
  EXPECT_EQ(c.request.trusted, ReadTestdata("demo_root.pem"));
  // peer_certificate + untrusted_intermediates == the shipped valid chain.
  EXPECT_EQ(c.request.chain + c.request.untrusted, ReadTestdata("valid_chain.pem"));

  LimboReport r = RunLimbo(*cases, Verify);
  EXPECT_THAT(r.lines, ElementsAre("vow::single::valid-dns: valid, match"));
  EXPECT_EQ(r.summary, "limbo: 1 cases: 1 match, 0 MISMATCH, 0 skipped");
}

TEST_F(LimboTest, SuiteFile) {
  constexpr int64_t kNow = 1893456000;  // 2030-01-01: the demo chain is valid
  absl::StatusOr<std::vector<LimboCase>> cases =
      ParseLimbo(ReadTestdata("limbo/suite.json"), kNow);
  ASSERT_TRUE(cases.ok()) << cases.status();
  LimboReport r = RunLimbo(*cases, Verify);
  std::map<std::string, std::string> line_of;
  for (const std::string& line : r.lines) line_of[line.substr(0, line.find(": "))] = line;
  ASSERT_EQ(line_of.size(), cases->size());

  auto line = [&](const std::string& id) { return line_of[id]; };
  EXPECT_EQ(line("vow::valid"), "vow::valid: valid, match");
  EXPECT_EQ(line("vow::expired"),
            "vow::expired: invalid (error 10 at depth 0: certificate has expired), match");
  EXPECT_EQ(line("vow::expired-leaf-at-an-earlier-time"),
            "vow::expired-leaf-at-an-earlier-time: valid, match");
  // Before 2020 no certificate of the chain is valid yet; OpenSSL checks from the
  // anchor down, so the error is reported at the root (depth 2).
  EXPECT_EQ(line("vow::not-yet-valid"),
            "vow::not-yet-valid: invalid (error 9 at depth 2: certificate is not yet "
            "valid), match");
  EXPECT_EQ(line("vow::time-with-offset"), "vow::time-with-offset: valid, match");
  EXPECT_EQ(line("vow::wrong-host"),
            "vow::wrong-host: invalid (error 62 at depth 0: hostname mismatch), match");
  EXPECT_EQ(line("vow::ip-name-against-dns-leaf"),
            "vow::ip-name-against-dns-leaf: invalid (error 64 at depth 0: IP address "
            "mismatch), match");
  EXPECT_EQ(line("vow::no-peer-name"), "vow::no-peer-name: valid, match");
  EXPECT_EQ(line("vow::peer-name-omitted"), "vow::peer-name-omitted: valid, match");
  EXPECT_EQ(line("vow::missing-intermediate"),
            "vow::missing-intermediate: invalid (error 20 at depth 0: unable to get local "
            "issuer certificate), match");
  EXPECT_EQ(line("vow::intermediate-as-anchor"), "vow::intermediate-as-anchor: valid, match");
  EXPECT_EQ(line("vow::client-kind-server-leaf"),
            "vow::client-kind-server-leaf: invalid (error 26 at depth 0: unsuitable "
            "certificate purpose), match");
  EXPECT_THAT(line("vow::garbage-peer"),
              StartsWith("vow::garbage-peer: invalid (input error: chain: neither PEM nor "
                         "a DER certificate"));
  EXPECT_THAT(line("vow::garbage-peer"), HasSubstr("), match"));
  EXPECT_EQ(line("vow::wrong-expectation"),
            "vow::wrong-expectation: valid, MISMATCH (expected FAILURE)");
  EXPECT_EQ(line("vow::validation-time-null"), "vow::validation-time-null: valid, match");

  // The "skip::" cases of this (older) suite are judged now, each field read as
  // limbo's OpenSSL harness reads it: the leaf has no e-mail SAN (error 63), depth 5
  // is enough, features are ignored, [] sets no purpose, the peer names all match, and
  // the empty CRL block is unusable input.
  EXPECT_EQ(line("vow::skip::rfc822"),
            "vow::skip::rfc822: invalid (error 63 at depth 0: email address mismatch), "
            "MISMATCH (expected SUCCESS)");
  EXPECT_EQ(line("vow::skip::max-chain-depth"), "vow::skip::max-chain-depth: valid, match");
  EXPECT_EQ(line("vow::skip::features"), "vow::skip::features: valid, match");
  EXPECT_EQ(line("vow::skip::signature-algorithms"),
            "vow::skip::signature-algorithms: SKIP (signature_algorithms [ECDSA_WITH_SHA256]: "
            "X509_verify_cert has no such constraint)");
  EXPECT_EQ(line("vow::skip::key-usage"),
            "vow::skip::key-usage: SKIP (key_usage [digitalSignature]: X509_verify_cert has "
            "no such constraint)");
  EXPECT_EQ(line("vow::skip::eku-other"),
            "vow::skip::eku-other: SKIP (extended_key_usage [codeSigning]: no OpenSSL purpose "
            "checks exactly this EKU)");
  EXPECT_EQ(line("vow::skip::eku-none"), "vow::skip::eku-none: valid, match");
  EXPECT_EQ(line("vow::skip::expected-peer-names"),
            "vow::skip::expected-peer-names: valid, match");
  EXPECT_THAT(line("vow::skip::crls"),
              StartsWith("vow::skip::crls: invalid (input error: crls: bad PEM CRL #1"));
  EXPECT_EQ(line("vow::skip::unknown-field"),
            "vow::skip::unknown-field: SKIP (unknown field \"some_future_constraint\")");

  EXPECT_EQ(r.total, 25);
  EXPECT_EQ(r.skipped, 4);
  EXPECT_EQ(r.mismatched, 3);
  EXPECT_EQ(r.matched, 18);
  EXPECT_EQ(r.summary, "limbo: 25 cases: 18 match, 3 MISMATCH, 4 skipped");
}

TEST_F(LimboTest, NullValidationTimeWithoutAClockIsSkipped) {
  absl::StatusOr<std::vector<LimboCase>> cases = ParseLimbo(ReadTestdata("limbo/suite.json"));
  ASSERT_TRUE(cases.ok()) << cases.status();
  bool found = false;
  for (const LimboCase& c : *cases) {
    if (c.id != "vow::validation-time-null") continue;
    found = true;
    EXPECT_EQ(c.skip_reason,
              "validation_time is null (\"now\") and no current time was given");
  }
  EXPECT_TRUE(found);
}

TEST_F(LimboTest, SkippedCasesAreNeverVerified) {
  absl::StatusOr<std::vector<LimboCase>> cases =
      ParseLimbo(ReadTestdata("limbo/suite.json"), 1893456000);
  ASSERT_TRUE(cases.ok()) << cases.status();
  int calls = 0;
  LimboReport r = RunLimbo(*cases, [&](const VerifyRequest& req) {
    ++calls;
    return Verify(req);
  });
  EXPECT_EQ(calls, r.total - r.skipped);
}

TEST_F(LimboTest, InjectedVerifierDecides) {
  // The runner trusts the injected verifier (the lead passes a sandboxed one): an
  // always-"valid" verifier matches exactly the SUCCESS cases.
  absl::StatusOr<std::vector<LimboCase>> cases =
      ParseLimbo(ReadTestdata("limbo/suite.json"), 1893456000);
  ASSERT_TRUE(cases.ok());
  int expected_success = 0;
  for (const LimboCase& c : *cases) {
    if (c.skip_reason.empty() && c.expected_success) ++expected_success;
  }
  LimboReport r = RunLimbo(*cases, [](const VerifyRequest&) {
    Verdict v;
    v.valid = true;
    return v;
  });
  EXPECT_EQ(r.matched, expected_success);
}

TEST_F(LimboTest, MalformedJsonGivesThePosition) {
  absl::StatusOr<std::vector<LimboCase>> cases = ParseLimbo(ReadTestdata("limbo/malformed.json"));
  ASSERT_FALSE(cases.ok());
  EXPECT_EQ(Msg(cases.status()),
            "JSON line 6, column 7 (byte 76): syntax error while parsing object - unexpected "
            "string literal; expected '}'");
}

TEST_F(LimboTest, SchemaViolationNamesCaseAndPosition) {
  absl::StatusOr<std::vector<LimboCase>> cases =
      ParseLimbo(ReadTestdata("limbo/bad_schema.json"));
  ASSERT_FALSE(cases.ok());
  EXPECT_EQ(Msg(cases.status()),
            "limbo testcase #1 (vow::bad-expected-result) at line 14, column 26 (byte "
            "403): expected_result must be \"SUCCESS\" or \"FAILURE\", got \"MAYBE\"");
}

TEST_F(LimboTest, OtherSchemaErrors) {
  const std::string base = ReadTestdata("limbo/single_case.json");
  struct Case {
    std::string from, to, error;
  };
  for (const Case& c : std::vector<Case>{
           {"\"validation_kind\": \"SERVER\"", "\"validation_kind\": \"PEER\"",
            "validation_kind must be \"SERVER\" or \"CLIENT\", got \"PEER\""},
           {"\"validation_time\": \"2030-06-01T12:00:00Z\"",
            "\"validation_time\": \"2030-02-30T12:00:00Z\"", "day out of range"},
           {"\"validation_time\": \"2030-06-01T12:00:00Z\"", "\"validation_time\": 5",
            "field \"validation_time\" must be an RFC 3339 string or null, not a number"},
           {"\"max_chain_depth\": null", "\"max_chain_depth\": \"x\"",
            "field \"max_chain_depth\" must be an integer or null, not a string"},
           {"\"kind\": \"DNS\"", "\"kind\": \"URI\"",
            "expected_peer_name.kind must be \"DNS\", \"IP\" or \"RFC822\", got \"URI\""},
           {"\"key_usage\": [],", "", "missing required field \"key_usage\""},
           {"\"trusted_certs\": [", "\"trusted_certs\": [1,",
            "field \"trusted_certs[0]\" must be a string, not a number"},
           {"\"peer_certificate_key\": \"", "\"peer_certificate_key\": 7, \"x\": \"",
            "field \"peer_certificate_key\" must be a string or null, not a number"},
       }) {
    std::string text = absl::StrReplaceAll(base, {{c.from, c.to}});
    ASSERT_NE(text, base) << c.from;
    absl::StatusOr<std::vector<LimboCase>> cases = ParseLimbo(text);
    ASSERT_FALSE(cases.ok()) << c.to;
    EXPECT_THAT(Msg(cases.status()), HasSubstr(c.error));
    EXPECT_THAT(Msg(cases.status()),
                StartsWith("limbo testcase #1 (vow::single::valid-dns) at line "));
  }
}

TEST_F(LimboTest, TopLevelShape) {
  EXPECT_THAT(Msg(ParseLimbo("[]").status()),
              HasSubstr("must be a testcase object or a suite object, not an array"));
  EXPECT_THAT(Msg(ParseLimbo("{}").status()),
              HasSubstr("neither \"testcases\" (a suite) nor \"id\""));
  EXPECT_THAT(Msg(ParseLimbo("{\"version\": 2, \"testcases\": []}").status()),
              HasSubstr("\"version\" other than 1"));
  EXPECT_THAT(Msg(ParseLimbo("{\"testcases\": []}").status()),
              HasSubstr("has no \"version\""));
  EXPECT_THAT(Msg(ParseLimbo("{\"version\": 1, \"testcases\": {}}").status()),
              HasSubstr("must be an array"));
  absl::StatusOr<std::vector<LimboCase>> empty =
      ParseLimbo("{\"version\": 1, \"testcases\": []}");
  ASSERT_TRUE(empty.ok());
  EXPECT_THAT(*empty, IsEmpty());
  EXPECT_EQ(RunLimbo(*empty, Verify).summary,
            "limbo: 0 cases: 0 match, 0 MISMATCH, 0 skipped");
}

TEST_F(LimboTest, LargeSuite) {
  // The real limbo.json is tens of megabytes: ~30 MB here, 12,000 cases.
  const std::string one = ReadTestdata("limbo/single_case.json");
  std::string suite = "{\"version\": 1, \"testcases\": [";
  suite.reserve(12000 * (one.size() + 40));
  for (int i = 0; i < 12000; ++i) {
    if (i > 0) suite += ",";
    suite += absl::StrReplaceAll(
        one, {{"vow::single::valid-dns", absl::StrCat("vow::bulk::case-", i)}});
  }
  suite += "]}";
  ASSERT_GT(suite.size(), 30u << 20);
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<LimboCase>> cases = ParseLimbo(suite);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(cases.ok()) << cases.status();
  EXPECT_EQ(cases->size(), 12000u);
  EXPECT_EQ(cases->back().id, "vow::bulk::case-11999");
  std::printf("parsed %zu MB, %zu cases in %.2f s\n", suite.size() >> 20, cases->size(),
              seconds);
  EXPECT_LT(seconds, 30.0);  // generous: ASan builds are several times slower
}

TEST(Rfc3339Test, Forms) {
  EXPECT_EQ(*ParseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseRfc3339("2030-06-01T12:00:00Z"), k2030_06_01_12);
  EXPECT_EQ(*ParseRfc3339("2030-06-01t14:00:00.999+02:00"), k2030_06_01_12);
  EXPECT_EQ(*ParseRfc3339("2030-06-01 07:30:00-04:30"), k2030_06_01_12);
  EXPECT_EQ(*ParseRfc3339("2024-02-29T00:00:00Z"), 1709164800);
  EXPECT_EQ(*ParseRfc3339("1969-12-31T23:59:59Z"), -1);
  for (const char* bad : {"", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
                          "2024-01-01", "2024-01-01T00:00:00", "2024-01-01T24:00:00Z",
                          "2024-13-01T00:00:00Z", "2024-01-01T00:00:00Zjunk",
                          "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00+0200",
                          "24-01-01T00:00:00Z"}) {
    EXPECT_FALSE(ParseRfc3339(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace vow::x509
