// The x509-limbo test-case reader and runner (https://x509-limbo.com, C2SP/x509-limbo,
// schema `limbo-schema.json`, version 1). Runs in the oracle's BROKER: it turns a
// limbo file into VerifyRequests; the verification itself is injected (in process for
// tests, a sandboxed worker in the oracle), so this file parses no certificate.
//
// Accepted input: one testcase object, or the whole suite {"version": 1,
// "testcases": [...]}. Malformed JSON, a wrong type, a missing required field or an
// unknown enum value where the schema fixes one (validation_kind, expected_result, a
// peer name's kind) make the whole file an error naming the case and the position.
//
// Every field is read the way limbo's own OpenSSL harness (harness/openssl/main.cpp)
// reads it, so that the oracle judges every case that harness judges, with the same
// OpenSSL settings (X509_STRICT, PARTIAL_CHAIN, security level 2 are fixed in verify.h):
//  - validation_kind SERVER and CLIENT are both judged (the harness skips CLIENT; the
//    kind itself sets no purpose there either, only extended_key_usage does);
//  - extended_key_usage: [] -> no purpose at all (kNoPurpose: no EKU check, as the
//    harness, which calls X509_STORE_CTX_set_purpose only for a listed EKU);
//    [serverAuth] / [clientAuth] / [anyExtendedKeyUsage] -> X509_PURPOSE_SSL_SERVER /
//    SSL_CLIENT / ANY; several EKUs or another one: SKIPPED (no OpenSSL purpose is
//    exactly that);
//  - expected_peer_name DNS / IP / RFC822 -> host with HostKind kDns / kIp / kEmail;
//    subject_cn_fallback is set (the harness sets only NO_PARTIAL_WILDCARDS);
//  - expected_peer_names: all of them must match the leaf (required_names);
//  - crls -> request.crls (CRL checking of the whole chain, as the harness:
//    X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
//  - max_chain_depth -> max_depth (X509_VERIFY_PARAM_set_depth); outside 0..kMaxDepth:
//    SKIPPED;
//  - trusted_certs -> trusted, and [] is an EMPTY store (never the system bundle);
//  - validation_time RFC 3339 -> time_unix; null or absent: `now_unix` (the caller's
//    clock). The harness sets X509_V_FLAG_NO_CHECK_TIME on its store AFTER
//    X509_STORE_CTX_init, which copies the store's flags at init, so its context checks
//    against the current time too; a case is SKIPPED if no `now_unix` is given;
//  - key_usage, signature_algorithms non-empty: SKIPPED (X509_verify_cert has no such
//    constraint; the harness skips them too);
//  - features: ignored, as the harness does; description, conflicts_with, importance,
//    peer_certificate_key: ignored; any other non-empty field: SKIPPED (a newer schema's
//    constraint must not be ignored).
#ifndef VOW_EXAMPLES_X509_ORACLE_LIMBO_H_
#define VOW_EXAMPLES_X509_ORACLE_LIMBO_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "examples/x509_oracle/verify.h"

namespace vow::x509 {

struct LimboCase {
  std::string id;
  std::string description;
  enum class Kind { kServer, kClient } kind = Kind::kServer;
  VerifyRequest request;   // meaningless when skip_reason is set
  bool expected_success = false;
  std::string skip_reason;  // non-empty: the oracle cannot judge this case
};

// Parses a limbo file (see above). `now_unix` stands in for a null validation_time.
absl::StatusOr<std::vector<LimboCase>> ParseLimbo(
    absl::string_view json, std::optional<int64_t> now_unix = std::nullopt);

// One entry of limbo's harness results format.
struct LimboResult {
  std::string id;
  enum class Actual { kSuccess, kFailure, kSkipped } actual = Actual::kFailure;
  // SUCCESS: none (null); FAILURE: OpenSSL's error text (X509_verify_cert_error_string,
  // as the harness) or "input error: ..."; SKIPPED: the reason.
  std::optional<std::string> context;
};

struct LimboReport {
  // One per case, in order.
  std::vector<LimboResult> results;
  // One line per case, in order:
  //   "<id>: valid, match"
  //   "<id>: invalid (error 10 at depth 0: certificate has expired), match"
  //   "<id>: invalid (input error: chain: ...), MISMATCH (expected SUCCESS)"
  //   "<id>: SKIP (<reason>)"
  // (ids and texts with control bytes shown as \xNN: see Sanitize)
  std::vector<std::string> lines;
  // "limbo: 12 cases: 9 match, 1 MISMATCH, 2 skipped"
  std::string summary;
  int total = 0;
  int matched = 0;
  int mismatched = 0;
  int skipped = 0;
};

// A verdict with an input_error counts as "invalid" (a FAILURE result).
using VerifyFn = std::function<Verdict(const VerifyRequest&)>;

// Runs every case that is not skipped through `verify`, `threads` at a time (`verify`
// must then be thread-safe); the report is in the cases' order either way.
LimboReport RunLimbo(const std::vector<LimboCase>& cases, const VerifyFn& verify,
                     int threads = 1);

// limbo's harness results JSON: {"version": 1, "harness": `harness`, "results":
// [{"id", "actual_result", "context"}, ...]}.
std::string LimboResultsJson(const LimboReport& report, absl::string_view harness);

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_LIMBO_H_
