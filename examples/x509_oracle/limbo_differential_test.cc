// Differential test of the limbo mode: a generated suite (corpus.h: MakeLimboSuite, every
// field the oracle reads) judged (1) by a reference written here directly against the
// OpenSSL API, mapping each field the way x509-limbo's OpenSSL harness does
// (harness/openssl/main.cpp, read, not copied), (2) by ParseLimbo + in-process Verify,
// (3) by ParseLimbo + the sandboxed oracle with 2 pooled workers, 2 cases at a time.
// All three must give the same actual_result for every case, and the same context (the
// OpenSSL error text) wherever X509_verify_cert itself failed.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/x509_oracle/corpus.h"
#include "examples/x509_oracle/json.h"
#include "examples/x509_oracle/limbo.h"
#include "examples/x509_oracle/oracle.h"
#include "examples/x509_oracle/verify.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::x509 {
namespace {

constexpr int kCases = 2000;

struct RefResult {
  std::string actual;  // SUCCESS / FAILURE / SKIPPED
  // FAILURE from X509_verify_cert: its error text; "" otherwise.
  std::string verify_error;
};

X509* ReadCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return x;
}

std::vector<std::string> StringList(const JsonValue& v) {
  std::vector<std::string> out;
  for (const JsonValue& s : v.array()) out.push_back(s.string_value());
  return out;
}

// The reference: one testcase, the harness's mapping, the same fixed settings.
RefResult Reference(const JsonValue& tc, int64_t now) {
  if (!tc.Find("signature_algorithms")->array().empty() ||
      !tc.Find("key_usage")->array().empty()) {
    return {"SKIPPED", ""};
  }
  std::vector<std::string> ekus = StringList(*tc.Find("extended_key_usage"));
  int purpose = 0;
  if (ekus.size() > 1) return {"SKIPPED", ""};
  if (ekus.size() == 1) {
    if (ekus[0] == "serverAuth") {
      purpose = X509_PURPOSE_SSL_SERVER;
    } else if (ekus[0] == "clientAuth") {
      purpose = X509_PURPOSE_SSL_CLIENT;
    } else if (ekus[0] == "anyExtendedKeyUsage") {
      purpose = X509_PURPOSE_ANY;
    } else {
      return {"SKIPPED", ""};
    }
  }
  X509_STORE* store = X509_STORE_new();
  X509_STORE_set_flags(store, X509_V_FLAG_X509_STRICT);
  X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
  for (const std::string& pem : StringList(*tc.Find("trusted_certs"))) {
    X509* x = ReadCert(pem);
    X509_STORE_add_cert(store, x);
    X509_free(x);
  }
  std::vector<std::string> crls = StringList(*tc.Find("crls"));
  for (const std::string& pem : crls) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509_CRL* crl = PEM_read_bio_X509_CRL(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
  }
  if (!crls.empty()) {
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  }
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (const std::string& pem : StringList(*tc.Find("untrusted_intermediates"))) {
    sk_X509_push(untrusted, ReadCert(pem));
  }
  X509* peer = ReadCert(tc.Find("peer_certificate")->string_value());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, peer, untrusted);
  const JsonValue* time = tc.Find("validation_time");
  // A null time: the current time (the harness's NO_CHECK_TIME, set on the store after
  // X509_STORE_CTX_init, does not reach the context); the oracle's "now" is `now`.
  X509_STORE_CTX_set_time(ctx, 0,
                          time->is_string() ? *ParseRfc3339(time->string_value()) : now);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_auth_level(param, 2);
  const JsonValue* name = tc.Find("expected_peer_name");
  if (name->is_object()) {
    const std::string& kind = name->Find("kind")->string_value();
    const std::string& value = name->Find("value")->string_value();
    if (kind == "RFC822") {
      X509_VERIFY_PARAM_set1_email(param, value.data(), value.size());
    } else if (kind == "DNS") {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, value.data(), value.size());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(param, value.c_str());
    }
  }
  if (purpose != 0) X509_STORE_CTX_set_purpose(ctx, purpose);
  const JsonValue* depth = tc.Find("max_chain_depth");
  int64_t d = 0;
  if (depth->AsInt64(&d)) X509_VERIFY_PARAM_set_depth(param, static_cast<int>(d));
  RefResult r;
  if (X509_verify_cert(ctx) == 1) {
    r.actual = "SUCCESS";
    // The oracle's extension of the harness: every expected_peer_names entry must match.
    for (const JsonValue& n : tc.Find("expected_peer_names")->array()) {
      const std::string& kind = n.Find("kind")->string_value();
      const std::string& value = n.Find("value")->string_value();
      int ok = kind == "DNS"    ? X509_check_host(peer, value.data(), value.size(),
                                                  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr)
               : kind == "IP"   ? X509_check_ip_asc(peer, value.c_str(), 0)
                                : X509_check_email(peer, value.data(), value.size(), 0);
      if (ok != 1) r.actual = "FAILURE";
    }
  } else {
    r.actual = "FAILURE";
    r.verify_error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  }
  X509_STORE_CTX_free(ctx);
  X509_free(peer);
  sk_X509_pop_free(untrusted, X509_free);
  X509_STORE_free(store);
  ERR_clear_error();
  return r;
}

const char* ActualName(LimboResult::Actual a) {
  switch (a) {
    case LimboResult::Actual::kSuccess: return "SUCCESS";
    case LimboResult::Actual::kFailure: return "FAILURE";
    case LimboResult::Actual::kSkipped: return "SKIPPED";
  }
  return "?";
}

// Compares a report with the reference, case by case. Returns how many differ.
int Compare(const LimboReport& report, const std::vector<RefResult>& ref, const char* who) {
  int differ = 0;
  EXPECT_EQ(report.results.size(), ref.size());
  for (size_t i = 0; i < ref.size() && i < report.results.size(); ++i) {
    const LimboResult& r = report.results[i];
    EXPECT_EQ(r.id, absl::StrCat("gen::", i));
    bool same = ActualName(r.actual) == ref[i].actual;
    if (same && !ref[i].verify_error.empty()) same = r.context == ref[i].verify_error;
    if (!same && ++differ <= 10) {
      ADD_FAILURE() << who << ": " << r.id << " is " << ActualName(r.actual) << " ("
                    << r.context.value_or("null") << "), the reference says "
                    << ref[i].actual << " (" << ref[i].verify_error << ")";
    }
  }
  return differ;
}

class LimboDifferentialTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(WarmUpOpenSsl());
    suite_ = new std::string(MakeLimboSuite(kCases));
    now_ = absl::ToUnixSeconds(absl::Now());
    absl::StatusOr<JsonValue> doc = ParseJson(*suite_);
    ASSERT_TRUE(doc.ok()) << doc.status();
    ref_ = new std::vector<RefResult>();
    for (const JsonValue& tc : doc->Find("testcases")->array()) {
      ref_->push_back(Reference(tc, now_));
    }
  }
  static std::string* suite_;
  static std::vector<RefResult>* ref_;
  static int64_t now_;
};
std::string* LimboDifferentialTest::suite_ = nullptr;
std::vector<RefResult>* LimboDifferentialTest::ref_ = nullptr;
int64_t LimboDifferentialTest::now_ = 0;

// The corpus exercises what it claims: each outcome and each OpenSSL error that the
// fields can cause occurs.
TEST_F(LimboDifferentialTest, CorpusCoversEveryField) {
  std::map<std::string, int> outcomes;
  for (const RefResult& r : *ref_) {
    ++outcomes[r.actual];
    if (!r.verify_error.empty()) ++outcomes[r.verify_error];
  }
  for (const char* want :
       {"SUCCESS", "FAILURE", "SKIPPED", "certificate revoked", "unable to get certificate CRL",
        "certificate chain too long", "unsuitable certificate purpose", "hostname mismatch",
        "IP address mismatch", "email address mismatch", "certificate has expired",
        "certificate is not yet valid", "unable to get local issuer certificate"}) {
    EXPECT_GE(outcomes[want], 5) << want;
  }
}

TEST_F(LimboDifferentialTest, InProcessEqualsReference) {
  absl::StatusOr<std::vector<LimboCase>> cases = ParseLimbo(*suite_, now_);
  ASSERT_TRUE(cases.ok()) << cases.status();
  LimboReport report = RunLimbo(*cases, Verify, 2);
  EXPECT_EQ(Compare(report, *ref_, "in-process"), 0);
}

TEST_F(LimboDifferentialTest, SandboxedPoolOfTwoEqualsReference) {
  absl::StatusOr<std::vector<LimboCase>> cases = ParseLimbo(*suite_, now_);
  ASSERT_TRUE(cases.ok()) << cases.status();
  OracleOptions o;
  o.pool_size = 2;
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(o);
  ASSERT_TRUE(oracle.ok()) << oracle.status();
  Oracle* p = oracle->get();
  LimboReport report =
      RunLimbo(*cases, [p](const VerifyRequest& r) { return p->Verify(r); }, 2);
  EXPECT_EQ(Compare(report, *ref_, "sandboxed"), 0);
  EXPECT_EQ(p->failed_workers(), 0u);

  // The results file: limbo's format, every case, in order.
  std::string json = LimboResultsJson(report, "vow-openssl-test");
  absl::StatusOr<JsonValue> doc = ParseJson(json);
  ASSERT_TRUE(doc.ok()) << doc.status();
  ASSERT_EQ(doc->object().size(), 3u);
  int64_t version = 0;
  ASSERT_TRUE(doc->Find("version")->AsInt64(&version));
  EXPECT_EQ(version, 1);
  EXPECT_EQ(doc->Find("harness")->string_value(), "vow-openssl-test");
  const auto& results = doc->Find("results")->array();
  ASSERT_EQ(results.size(), ref_->size());
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_EQ(results[i].object().size(), 3u);
    EXPECT_EQ(results[i].Find("id")->string_value(), absl::StrCat("gen::", i));
    EXPECT_EQ(results[i].Find("actual_result")->string_value(), (*ref_)[i].actual);
    EXPECT_EQ(results[i].Find("context")->is_null(), (*ref_)[i].actual == "SUCCESS");
  }
}

}  // namespace
}  // namespace vow::x509
