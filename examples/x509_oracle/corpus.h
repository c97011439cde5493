// Test support (testonly): generates, with the OpenSSL API, a corpus of certificate
// chains and the verdict each must get, for the oracle's tests and benchmarks: the
// in-process half of the differential test here, the sandboxed half in the lead's.
// Trusted side: runs in the test process; aborts on any OpenSSL failure (a broken
// test environment, never hostile input).
#ifndef VOW_EXAMPLES_X509_ORACLE_CORPUS_H_
#define VOW_EXAMPLES_X509_ORACLE_CORPUS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "examples/x509_oracle/verify.h"

namespace vow::x509 {

// The validation time of every corpus entry: 2025-01-01T00:00:00Z. Certificates that
// should be valid are valid 2024-01-01..2026-01-01 (CAs 2020..2040).
inline constexpr int64_t kCorpusTime = 1735689600;

struct CorpusEntry {
  std::string name;
  VerifyRequest request;
  bool expect_valid = false;
  // OpenSSL's X509_V_* code (X509_V_OK when valid) and the depth it is reported at
  // (-1 when valid). Ignored when expect_input_error.
  int expect_error = 0;
  int expect_depth = -1;
  // The request must be refused as unusable input (Verdict::input_error non-empty).
  bool expect_input_error = false;
};

// A fresh corpus (new keys every call; takes a few milliseconds). Covers: valid chain
// (PEM, DER leaf + untrusted intermediate, IPv4, IPv6, client), expired leaf,
// not-yet-valid leaf, wrong host, wrong IP, untrusted self-signed, missing
// intermediate, corrupted signature, name-constraint violation, path length exceeded,
// wrong EKU (both directions), garbage input.
std::vector<CorpusEntry> MakeCorpus();

// Root, intermediate and leaf (for www.example.com) PEMs of a fresh valid chain, for
// tests that need certificates of their own (e.g. hostile-input tests).
struct ValidChainPems {
  std::string root;
  std::string intermediate;
  std::string leaf;
};
ValidChainPems MakeValidChain();

// The same, with a leaf whose DER is at least `leaf_bytes` long: the bulk is one opaque,
// non-critical extension (a private OID, an OCTET STRING of pseudo-random bytes), which
// verification must carry and ignore.
ValidChainPems MakeValidChainWithLargeLeaf(size_t leaf_bytes);

// A generated x509-limbo suite (JSON text, schema version 1) of `cases` testcases that
// covers every field the oracle reads: validation_kind SERVER and CLIENT;
// extended_key_usage [], one of serverAuth/clientAuth/anyExtendedKeyUsage, others and
// several (skipped); expected_peer_name DNS / IP / RFC822 / none, matching or not, and a
// subject-CN-only leaf; expected_peer_names (0-3 names); crls (none, complete, one
// revoking a leaf, one issuer's CRL missing); max_chain_depth null/0/1/2/5; trusted_certs
// [] / the root / the intermediate; untrusted_intermediates [] or the intermediate;
// validation_time in or after the validity, or null; key_usage and signature_algorithms
// (skipped); features (ignored). Cases are drawn deterministically from the product of
// these, ids "gen::N". expected_result is always SUCCESS (a differential test compares
// actual results, not expectations). New keys on every call.
std::string MakeLimboSuite(int cases);

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_CORPUS_H_
