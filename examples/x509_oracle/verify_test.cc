// Tests of the verification core, in process: the corpus (the in-process half of the
// differential test), hostile input, the JSON form of a verdict, the crash hook.
#include "examples/x509_oracle/verify.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_format.h"
#include "examples/x509_oracle/corpus.h"
#include "examples/x509_oracle/json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::x509 {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::vector<std::string> Subjects(const Verdict& v) {
  std::vector<std::string> out;
  for (const CertInfo& c : v.chain) out.push_back(c.subject);
  return out;
}

class VerifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(WarmUpOpenSsl()); }
};

VerifyRequest ValidRequest(const ValidChainPems& pems) {
  VerifyRequest r;
  r.chain = pems.leaf + pems.intermediate;
  r.trusted = pems.root;
  r.host = "www.example.com";
  r.time_unix = kCorpusTime;
  return r;
}

TEST_F(VerifyTest, CorpusGivesExpectedVerdicts) {
  std::vector<CorpusEntry> corpus = MakeCorpus();
  ASSERT_GE(corpus.size(), 20u);
  for (const CorpusEntry& e : corpus) {
    SCOPED_TRACE(e.name);
    Verdict v = Verify(e.request);
    if (e.expect_input_error) {
      EXPECT_FALSE(v.valid);
      EXPECT_THAT(v.input_error, Not(IsEmpty()));
      EXPECT_THAT(v.chain, IsEmpty());
      continue;
    }
    EXPECT_THAT(v.input_error, IsEmpty());
    EXPECT_EQ(v.valid, e.expect_valid);
    EXPECT_EQ(v.error_code, e.expect_error) << v.error_string;
    EXPECT_EQ(v.error_depth, e.expect_depth);
    EXPECT_EQ(v.error_string, X509_verify_cert_error_string(e.expect_error));
    EXPECT_THAT(v.chain, Not(IsEmpty()));
  }
}

// Anchors parsed once give every verdict that the same anchors in the request give, used
// again and again (the worker's cached system bundle), and the same errors.
TEST_F(VerifyTest, ParsedAnchorsGiveTheRequestsVerdicts) {
  std::vector<CorpusEntry> corpus = MakeCorpus();
  for (int round = 0; round < 2; ++round) {
    for (const CorpusEntry& e : corpus) {
      SCOPED_TRACE(e.name);
      std::unique_ptr<TrustAnchors> anchors = TrustAnchors::Parse(e.request.trusted);
      VerifyRequest without = e.request;
      without.trusted.clear();
      std::string want = VerdictToJson(Verify(e.request));
      EXPECT_EQ(VerdictToJson(VerifyWithAnchors(without, *anchors)), want);
      EXPECT_EQ(VerdictToJson(VerifyWithAnchors(without, *anchors)), want);
    }
  }
  ValidChainPems pems = MakeValidChain();
  VerifyRequest r = ValidRequest(pems);
  std::unique_ptr<TrustAnchors> anchors = TrustAnchors::Parse(r.trusted);
  EXPECT_THAT(anchors->error(), IsEmpty());
  // Anchors in the request as well: refused, not silently merged or ignored.
  EXPECT_THAT(VerifyWithAnchors(r, *anchors).input_error,
              HasSubstr("trusted: the request names anchors and parsed anchors"));
  r.trusted.clear();
  EXPECT_TRUE(VerifyWithAnchors(r, *anchors).valid);
  // Other anchors than the chain's: not valid (the anchors are really used).
  std::unique_ptr<TrustAnchors> other = TrustAnchors::Parse(MakeValidChain().root);
  EXPECT_FALSE(VerifyWithAnchors(r, *other).valid);
  std::unique_ptr<TrustAnchors> none = TrustAnchors::Parse("");
  EXPECT_FALSE(VerifyWithAnchors(r, *none).valid);
  // Bad anchors: the error is kept and is every verdict's input_error.
  std::unique_ptr<TrustAnchors> garbage = TrustAnchors::Parse("garbage");
  EXPECT_THAT(garbage->error(), HasSubstr("trusted: no PEM certificate found"));
  EXPECT_EQ(garbage->certs(), nullptr);
  EXPECT_THAT(VerifyWithAnchors(r, *garbage).input_error,
              HasSubstr("trusted: no PEM certificate found"));
  std::unique_ptr<TrustAnchors> huge =
      TrustAnchors::Parse(std::string(kMaxFieldBytes + 1, 'A'));
  EXPECT_THAT(VerifyWithAnchors(r, *huge).input_error, HasSubstr("trusted is"));
}

TEST_F(VerifyTest, ValidChainReportsBuiltChainLeafFirst) {
  ValidChainPems pems = MakeValidChain();
  Verdict v = Verify(ValidRequest(pems));
  ASSERT_TRUE(v.valid) << v.error_string << v.input_error;
  EXPECT_EQ(v.error_code, 0);
  EXPECT_EQ(v.error_string, "ok");
  EXPECT_EQ(v.error_depth, -1);
  EXPECT_THAT(Subjects(v),
              ::testing::ElementsAre("CN=www.example.com,O=vow test",
                                     "CN=vow test intermediate,O=vow test",
                                     "CN=vow test root,O=vow test"));
}

TEST_F(VerifyTest, TimeIsAnInput) {
  ValidChainPems pems = MakeValidChain();  // leaf valid 2024-01-01..2026-01-01
  VerifyRequest r = ValidRequest(pems);
  r.time_unix = 1704067200 + 10;  // just after notBefore
  EXPECT_TRUE(Verify(r).valid);
  r.time_unix = 1704067200 - 10;
  EXPECT_EQ(Verify(r).error_code, X509_V_ERR_CERT_NOT_YET_VALID);
  r.time_unix = 1767225600 + 10;
  EXPECT_EQ(Verify(r).error_code, X509_V_ERR_CERT_HAS_EXPIRED);
  r.time_unix = 253402300799LL + 1;  // after 9999-12-31
  EXPECT_THAT(Verify(r).input_error, HasSubstr("years 1..9999"));
}

TEST_F(VerifyTest, HostKindOverridesAutoDetection) {
  ValidChainPems pems = MakeValidChain();
  VerifyRequest r = ValidRequest(pems);
  r.host = "www.example.com";
  r.host_kind = VerifyRequest::HostKind::kIp;
  EXPECT_THAT(Verify(r).input_error, HasSubstr("not an IPv4 or IPv6 literal"));
  r.host = "192.0.2.1";
  r.host_kind = VerifyRequest::HostKind::kDns;  // matched as a DNS name: no SAN has it
  Verdict v = Verify(r);
  EXPECT_THAT(v.input_error, IsEmpty());
  EXPECT_EQ(v.error_code, X509_V_ERR_HOSTNAME_MISMATCH);
  r.host = "[::1]";
  r.host_kind = VerifyRequest::HostKind::kAuto;
  EXPECT_EQ(Verify(r).error_code, X509_V_ERR_IP_ADDRESS_MISMATCH);
  r.host = "fe80::1%eth0";
  EXPECT_THAT(Verify(r).input_error, HasSubstr("not a valid IPv6 literal"));
}

std::string ReadTestdata(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(std::string(srcdir != nullptr ? srcdir : ".") +
                       "/vow/examples/x509_oracle/testdata/" + name,
                   std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(VerifyTest, ShippedDemoChains) {
  // The chains ./run.sh verifies (made by make_demo_chains.sh), at 2030-01-01.
  VerifyRequest r;
  r.trusted = ReadTestdata("demo_root.pem");
  r.host = "www.vow.test";
  r.time_unix = 1893456000;
  ASSERT_FALSE(r.trusted.empty());
  r.chain = ReadTestdata("valid_chain.pem");
  Verdict v = Verify(r);
  EXPECT_TRUE(v.valid) << VerdictToJson(v);
  EXPECT_THAT(Subjects(v),
              ::testing::ElementsAre("CN=www.vow.test,O=vow demo",
                                     "CN=vow demo intermediate,O=vow demo",
                                     "CN=vow demo root,O=vow demo"));
  r.chain = ReadTestdata("expired_chain.pem");
  EXPECT_EQ(Verify(r).error_code, X509_V_ERR_CERT_HAS_EXPIRED);
  r.chain = ReadTestdata("wrong_host_chain.pem");
  EXPECT_EQ(Verify(r).error_code, X509_V_ERR_HOSTNAME_MISMATCH);
  // Valid until 2045-01-01.
  r.chain = ReadTestdata("valid_chain.pem");
  r.time_unix = 2366841600 - 1;  // 2044-12-31T23:59:59Z
  EXPECT_TRUE(Verify(r).valid);
}

// --- Hostile input: each gets a clear answer, none crashes. ---

TEST_F(VerifyTest, GarbagePem) {
  VerifyRequest r = ValidRequest(MakeValidChain());
  r.chain = "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n";
  Verdict v = Verify(r);
  EXPECT_FALSE(v.valid);
  EXPECT_THAT(v.input_error, HasSubstr("chain: bad PEM certificate #1"));

  r.chain = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  v = Verify(r);
  EXPECT_FALSE(v.valid);
  EXPECT_THAT(v.input_error, HasSubstr("chain: bad PEM certificate #1"));

  r.chain = "-----BEGIN CERTIFICATE-----\nMIIB";  // no end line
  EXPECT_THAT(Verify(r).input_error, HasSubstr("chain: bad PEM"));

  // An "encrypted" certificate block must not make OpenSSL ask for a password.
  r.chain =
      "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n"
      "DEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n"
      "-----END CERTIFICATE-----\n";
  EXPECT_THAT(Verify(r).input_error, HasSubstr("chain: bad PEM"));
}

TEST_F(VerifyTest, GarbageInOtherFields) {
  ValidChainPems pems = MakeValidChain();
  VerifyRequest r = ValidRequest(pems);
  r.trusted = "garbage";
  EXPECT_THAT(Verify(r).input_error, HasSubstr("trusted: no PEM certificate found"));
  r = ValidRequest(pems);
  r.untrusted = "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n";
  EXPECT_THAT(Verify(r).input_error, HasSubstr("untrusted: bad PEM"));
  // A PEM bundle of only private keys has no certificate.
  r = ValidRequest(pems);
  r.trusted = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  EXPECT_THAT(Verify(r).input_error, HasSubstr("trusted: "));
}

TEST_F(VerifyTest, TruncatedDer) {
  ValidChainPems pems = MakeValidChain();
  std::string der;
  {
    BIO* bio = BIO_new_mem_buf(pems.leaf.data(), static_cast<int>(pems.leaf.size()));
    X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    ASSERT_NE(x, nullptr);
    unsigned char* buf = nullptr;
    int n = i2d_X509(x, &buf);
    ASSERT_GT(n, 100);
    der.assign(reinterpret_cast<char*>(buf), n);
    OPENSSL_free(buf);
    X509_free(x);
    BIO_free(bio);
  }
  VerifyRequest r = ValidRequest(pems);
  r.chain = der;
  r.untrusted = pems.intermediate;
  ASSERT_TRUE(Verify(r).valid) << Verify(r).input_error;
  for (size_t cut : {size_t{1}, size_t{10}, der.size() / 2, der.size() - 1}) {
    r.chain = der.substr(0, cut);
    Verdict v = Verify(r);
    EXPECT_FALSE(v.valid);
    EXPECT_THAT(v.input_error, HasSubstr("neither PEM nor a DER certificate")) << cut;
  }
  r.chain = der + "x";
  EXPECT_THAT(Verify(r).input_error, HasSubstr("1 trailing bytes"));
}

TEST_F(VerifyTest, TenThousandCertificateChainIsRejectedQuickly) {
  ValidChainPems pems = MakeValidChain();
  VerifyRequest r = ValidRequest(pems);
  std::string chain;
  chain.reserve(10000 * pems.intermediate.size());
  chain += pems.leaf;
  for (int i = 1; i < 10000; ++i) chain += pems.intermediate;
  ASSERT_LT(chain.size(), kMaxFieldBytes);
  r.chain = std::move(chain);
  auto start = std::chrono::steady_clock::now();
  Verdict v = Verify(r);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(v.valid);
  EXPECT_THAT(v.input_error, HasSubstr("chain: more than 100 certificates"));
  // Parsing stops at certificate 101: milliseconds, not seconds (generous for ASan).
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  std::printf("10,000-certificate chain refused in %.1f ms\n",
              std::chrono::duration<double, std::milli>(elapsed).count());

  // The same in the trusted bundle: the limit there is 1000.
  r = ValidRequest(pems);
  std::string bundle;
  for (int i = 0; i < 1001; ++i) bundle += pems.root;
  r.trusted = std::move(bundle);
  EXPECT_THAT(Verify(r).input_error, HasSubstr("trusted: more than 1000 certificates"));
}

TEST_F(VerifyTest, ChainsAtTheLimitAreAccepted) {
  ValidChainPems pems = MakeValidChain();
  VerifyRequest r = ValidRequest(pems);
  std::string chain = pems.leaf;
  for (int i = 1; i < kMaxChainCerts; ++i) chain += pems.intermediate;
  r.chain = chain;
  Verdict v = Verify(r);
  EXPECT_THAT(v.input_error, IsEmpty());
  EXPECT_TRUE(v.valid) << v.error_string;
}

TEST_F(VerifyTest, FiftyMegabyteInput) {
  ValidChainPems pems = MakeValidChain();
  const std::string big(50 << 20, 'A');
  for (std::string VerifyRequest::*field :
       {&VerifyRequest::chain, &VerifyRequest::untrusted, &VerifyRequest::trusted,
        &VerifyRequest::host}) {
    VerifyRequest r = ValidRequest(pems);
    r.*field = big;
    auto start = std::chrono::steady_clock::now();
    Verdict v = Verify(r);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
    EXPECT_FALSE(v.valid);
    EXPECT_THAT(v.input_error, HasSubstr("52428800 bytes (at most 16777216)"));
  }
}

TEST_F(VerifyTest, NulInHostname) {
  ValidChainPems pems = MakeValidChain();
  VerifyRequest r = ValidRequest(pems);
  r.host = std::string("www.example.com\0.evil.com", 25);
  Verdict v = Verify(r);
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.input_error, "host contains a NUL byte (at offset 15)");
  r.host = std::string("\0", 1);
  EXPECT_THAT(Verify(r).input_error, HasSubstr("NUL byte (at offset 0)"));
  r.host = std::string(300, 'a');
  EXPECT_THAT(Verify(r).input_error, HasSubstr("host is 300 bytes long"));
  // Other hostile bytes are not an input error, just a name that does not match.
  r.host = "www.example.com\r\n\xff";
  v = Verify(r);
  EXPECT_THAT(v.input_error, IsEmpty());
  EXPECT_EQ(v.error_code, X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(VerifyTest, EmptyEverything) {
  Verdict v = Verify(VerifyRequest{});
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.input_error, "chain is empty");
  // A chain but no trust anchors: a verdict, not an input error.
  ValidChainPems pems = MakeValidChain();
  VerifyRequest r = ValidRequest(pems);
  r.trusted.clear();
  v = Verify(r);
  EXPECT_THAT(v.input_error, IsEmpty());
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.error_code, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  // No host: no name check.
  r = ValidRequest(pems);
  r.host.clear();
  EXPECT_TRUE(Verify(r).valid);
}

TEST_F(VerifyTest, RandomBytesNeverCrash) {
  ValidChainPems pems = MakeValidChain();
  std::string valid_chain = pems.leaf + pems.intermediate;
  uint32_t seed = 12345;
  auto next = [&] {
    seed = seed * 1103515245u + 12345u;
    return seed >> 16;
  };
  for (int i = 0; i < 300; ++i) {
    VerifyRequest r = ValidRequest(pems);
    std::string mutated = valid_chain;
    int flips = 1 + next() % 8;
    for (int k = 0; k < flips; ++k) {
      mutated[next() % mutated.size()] = static_cast<char>(next());
    }
    r.chain = mutated;
    Verdict v = Verify(r);
    // Anything but a crash; a verdict that says valid must have no input error.
    if (v.valid) {
      EXPECT_THAT(v.input_error, IsEmpty());
    }
  }
}

// --- The JSON form. ---

TEST(VerdictToJsonTest, EscapesEverythingHostile) {
  Verdict v;
  v.valid = false;
  v.error_code = 62;
  v.error_string = "hostname \"mismatch\"\\";
  v.error_depth = 0;
  v.chain = {{std::string("CN=a\nb\0c\x1f\x7f", 10), "CN=caf\xc3\xa9", "", "", ""},
             {"CN=bad\xff\xc3", "", "", "", ""}};
  v.input_error = "tab\there";
  const std::string json = VerdictToJson(v);
  EXPECT_EQ(json,
            "{\"valid\":false,\"error_code\":62,"
            "\"error_string\":\"hostname \\\"mismatch\\\"\\\\\",\"error_depth\":0,"
            "\"chain\":[{\"subject\":\"CN=a\\nb\\u0000c\\u001f\\u007f\",\"issuer\":\"CN=caf\xc3\xa9\","
            "\"not_before\":\"\",\"not_after\":\"\",\"sha256\":\"\"},"
            "{\"subject\":\"CN=bad\xef\xbf\xbd\xef\xbf\xbd\",\"issuer\":\"\",\"not_before\":\"\","
            "\"not_after\":\"\",\"sha256\":\"\"}],\"validation_time\":null,\"openssl\":\"\","
            "\"input_error\":\"tab\\there\",\"internal_error\":\"\"}");
  // And it parses back to the same strings (except the replaced invalid bytes).
  absl::StatusOr<JsonValue> parsed = ParseJson(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Find("chain")->array()[0].Find("subject")->string_value(),
            v.chain[0].subject);
  EXPECT_EQ(parsed->Find("error_string")->string_value(), v.error_string);
  EXPECT_FALSE(parsed->Find("valid")->bool_value());
}

TEST(VerdictToJsonTest, ValidVerdict) {
  Verdict v;
  v.valid = true;
  v.error_string = "ok";
  v.chain = {{"CN=x", "CN=y", "2020-01-01T00:00:00Z", "2045-01-01T00:00:00Z", "00ff"}};
  v.validation_time = 0;
  v.openssl_version = "OpenSSL 3.0.17 1 Jul 2025";
  EXPECT_EQ(VerdictToJson(v),
            "{\"valid\":true,\"error_code\":0,\"error_string\":\"ok\",\"error_depth\":-1,"
            "\"chain\":[{\"subject\":\"CN=x\",\"issuer\":\"CN=y\",\"not_before\":"
            "\"2020-01-01T00:00:00Z\",\"not_after\":\"2045-01-01T00:00:00Z\",\"sha256\":\"00ff\"}],"
            "\"validation_time\":\"1970-01-01T00:00:00Z\",\"openssl\":\"OpenSSL 3.0.17 1 Jul 2025\","
            "\"input_error\":\"\",\"internal_error\":\"\"}");
}

// The chain in the verdict: issuer, validity and the SHA-256 of the DER, per certificate;
// the time and OpenSSL's version echoed.
TEST(VerdictTest, DescribesTheChain) {
  ASSERT_TRUE(WarmUpOpenSsl());
  VerifyRequest r;
  r.trusted = ReadTestdata("demo_root.pem");
  r.chain = ReadTestdata("valid_chain.pem");
  r.host = "www.vow.test";
  r.time_unix = 1893456000;  // 2030-01-01
  Verdict v = Verify(r);
  ASSERT_TRUE(v.valid) << VerdictToJson(v);
  ASSERT_EQ(v.chain.size(), 3u);
  EXPECT_EQ(v.chain[0].issuer, v.chain[1].subject);
  EXPECT_EQ(v.chain[1].issuer, v.chain[2].subject);
  EXPECT_EQ(v.chain[2].issuer, v.chain[2].subject);
  EXPECT_EQ(v.chain[0].not_before, "2020-01-01T00:00:00Z");
  EXPECT_EQ(v.chain[0].not_after, "2045-01-01T00:00:00Z");
  // The fingerprint of the root, computed here from its PEM.
  BIO* bio = BIO_new_mem_buf(r.trusted.data(), static_cast<int>(r.trusted.size()));
  X509* root = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  ASSERT_NE(root, nullptr);
  unsigned char md[32];
  unsigned int len = 0;
  ASSERT_EQ(X509_digest(root, EVP_sha256(), md, &len), 1);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += absl::StrFormat("%02x", md[i]);
  X509_free(root);
  BIO_free(bio);
  EXPECT_EQ(v.chain[2].sha256, hex);
  EXPECT_EQ(v.validation_time, 1893456000);
  EXPECT_EQ(v.openssl_version, OpenSSL_version(OPENSSL_VERSION));
  EXPECT_EQ(FormatRfc3339(1893456000), "2030-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(-62135596800LL), "0001-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(253402300799LL), "9999-12-31T23:59:59Z");
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59Z");
  for (int64_t t : {int64_t{-62135596800LL}, int64_t{-86401}, int64_t{0}, int64_t{951782400},
                    int64_t{253402300799LL}}) {
    EXPECT_EQ(*ParseRfc3339(FormatRfc3339(t)), t);
  }
  EXPECT_EQ(Sanitize(std::string("a\x1b[31m\0b\x7f", 9)), "a\\x1b[31m\\x00b\\x7f");
}

// --- The crash hook. ---

TEST_F(VerifyTest, MagicBytesAreHarmlessWithoutTheHook) {
  VerifyRequest r;
  r.chain = std::string("xx") + kCrashMagic + "yy";
  Verdict v = Verify(r);
  EXPECT_FALSE(v.valid);
  EXPECT_THAT(v.input_error, Not(IsEmpty()));
}

TEST_F(VerifyTest, CrashHookAbortsOnMagicBytes) {
  VerifyRequest r;
  r.chain = std::string("xx") + kCrashMagic + "yy";
  EXPECT_DEATH(
      {
        EnableCrashHookForTesting();
        Verify(r);
      },
      "");
  // The hook needs both: enabled and the magic bytes.
  EXPECT_EXIT(
      {
        EnableCrashHookForTesting();
        VerifyRequest other;
        other.chain = "no magic here";
        Verify(other);
        _exit(7);
      },
      ::testing::ExitedWithCode(7), "");
}

}  // namespace
}  // namespace vow::x509
