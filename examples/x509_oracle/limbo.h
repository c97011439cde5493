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
// What the oracle checks, and what it skips (a skipped case is reported with its reason,
// never counted as a match):
//  - validation_kind SERVER / CLIENT -> Kind::kServer / kClient (the serverAuth /
//    clientAuth purpose);
//  - extended_key_usage must be exactly that purpose (["serverAuth"] for SERVER,
//    ["clientAuth"] for CLIENT); anything else, including [] ("no EKU constraint"), is
//    skipped, because the oracle always enforces the purpose;
//  - expected_peer_name DNS / IP -> host (HostKind::kDns / kIp); RFC822: skipped;
//    null or absent: no name check;
//  - validation_time RFC 3339 -> time_unix; null or absent: "now", i.e. the `now_unix`
//    the caller passes (the broker's clock); skipped if it passes none;
//  - skipped when present and non-empty: features (any), signature_algorithms,
//    key_usage, expected_peer_names, max_chain_depth (non-null), crls, and any field
//    this reader does not know (a newer schema's constraint must not be ignored);
//  - ignored: description, conflicts_with, importance, peer_certificate_key.
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
  VerifyRequest request;   // meaningless when skip_reason is set
  bool expected_success = false;
  std::string skip_reason;  // non-empty: the oracle cannot judge this case
};

// Parses a limbo file (see above). `now_unix` stands in for a null validation_time.
absl::StatusOr<std::vector<LimboCase>> ParseLimbo(
    absl::string_view json, std::optional<int64_t> now_unix = std::nullopt);

struct LimboReport {
  // One line per case, in order:
  //   "<id>: valid, match"
  //   "<id>: invalid (error 10 at depth 0: certificate has expired), match"
  //   "<id>: invalid (input error: chain: ...), MISMATCH (expected SUCCESS)"
  //   "<id>: SKIP (<reason>)"
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

// Runs every case that is not skipped through `verify`, in order.
LimboReport RunLimbo(const std::vector<LimboCase>& cases, const VerifyFn& verify);

// Seconds since the epoch for an RFC 3339 date-time ("2024-01-01T00:00:00Z",
// "...T02:00:00.5+02:00"; fractions are truncated).
absl::StatusOr<int64_t> ParseRfc3339(absl::string_view s);

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_LIMBO_H_
