// The X.509 verification core of the oracle. Runs INSIDE the locked worker: every byte
// of a VerifyRequest is hostile (the chain above all; the trust store and the time come
// from the broker but are treated the same way).
//
// What this code does not do, so that it can run under the `stdio` promise:
//  - no file or network I/O (all inputs are byte buffers, the answer is a struct);
//  - no clock reads: the validation time is `time_unix`, passed to OpenSSL with
//    X509_V_FLAG_USE_CHECK_TIME (verify_syscalls_test checks that OpenSSL then calls
//    none of time/gettimeofday/clock_gettime);
//  - no config files, engines or providers loaded lazily: call WarmUpOpenSsl() once
//    BEFORE lock-down; it initialises OpenSSL with OPENSSL_INIT_NO_LOAD_CONFIG and runs
//    one throw-away verification so that every one-time initialisation (the default
//    provider's algorithms, the DRBG, glibc's time zone state behind gmtime_r) has
//    happened. After it, Verify() makes no open/openat (checked under seccomp in
//    verify_syscalls_test).
//
// Verification settings. Fixed: X509_V_FLAG_X509_STRICT (RFC 5280 strictness, as
// x509-limbo's OpenSSL harness sets it), X509_V_FLAG_PARTIAL_CHAIN (every trusted
// certificate is an anchor, as in nearly every other path builder), security level 2
// (keys >= 112 bits of security, no SHA-1/MD5 signatures), no policy checks. Per request
// (VerifyRequest below): the purpose (X509_STORE_CTX_set_purpose; none at all is
// possible), the peer name (host, IP or e-mail; subject-CN fallback or not), names that
// must all match the leaf, the time (always given: X509_V_FLAG_USE_CHECK_TIME), the
// maximum depth (X509_VERIFY_PARAM_set_depth), and CRLs (with CRLs, every certificate of
// the chain is checked: X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL).
#ifndef VOW_EXAMPLES_X509_ORACLE_VERIFY_H_
#define VOW_EXAMPLES_X509_ORACLE_VERIFY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// OpenSSL's STACK_OF(X509), without its headers here.
struct stack_st_X509;

namespace vow::x509 {

// Limits on a request; anything above is an input_error, decided before any parsing
// beyond what is needed to count.
inline constexpr size_t kMaxFieldBytes = 16 << 20;  // per byte-buffer field
inline constexpr size_t kMaxHostBytes = 255;        // DNS names are <= 253 bytes
inline constexpr int kMaxChainCerts = 100;          // `chain`
inline constexpr int kMaxUntrustedCerts = 100;      // `untrusted`
inline constexpr int kMaxTrustedCerts = 1000;       // `trusted` (Debian's bundle: ~150)

// No X509_STORE_CTX_set_purpose call: no EKU or purpose check at all.
inline constexpr int kNoPurpose = 0;
// OpenSSL's X509_PURPOSE_SSL_SERVER / X509_PURPOSE_SSL_CLIENT (x509v3.h).
inline constexpr int kPurposeSslClient = 1;
inline constexpr int kPurposeSslServer = 2;
inline constexpr int kPurposeAny = 7;  // X509_PURPOSE_ANY

struct PeerName {
  enum class Kind { kDns, kIp, kEmail };
  Kind kind = Kind::kDns;
  std::string value;
};

struct VerifyRequest {
  // PEM (one or more certificates; the first is the leaf, the others are offered as
  // untrusted intermediates) or DER (exactly one certificate, no trailing bytes).
  std::string chain;
  // Optional extra untrusted intermediates, PEM.
  std::string untrusted;
  // Trust anchors, PEM (the broker supplies the system bundle or the request's). Empty:
  // an empty store (nothing is trusted).
  std::string trusted;
  // CRLs, PEM. Non-empty: revocation is checked for every certificate of the chain
  // (X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL); a certificate with no CRL from
  // its issuer then fails with "unable to get certificate CRL".
  std::string crls;
  // DNS name or IP literal (IPv4 dotted quad, IPv6 with or without brackets). Empty:
  // no name check. May contain hostile bytes: NUL is refused with an input_error.
  std::string host;
  // How `host` is matched. kAuto: an IP literal if it parses as one, else a DNS name;
  // kEmail: an RFC 822 address (X509_VERIFY_PARAM_set1_email).
  enum class HostKind { kAuto, kDns, kIp, kEmail } host_kind = HostKind::kAuto;
  // DNS names: false (the oracle's default) adds X509_CHECK_FLAG_NEVER_CHECK_SUBJECT (no
  // subject-CN fallback, as browsers); true leaves OpenSSL's default (the CN is checked
  // when the leaf has no DNS SAN), as x509-limbo's OpenSSL harness does. Partial
  // wildcards ("f*.example") are refused either way.
  bool subject_cn_fallback = false;
  // Names the leaf must ALL match (x509-limbo's expected_peer_names), checked with
  // X509_check_host / X509_check_ip / X509_check_email after a successful verification
  // (OpenSSL's verify parameters hold a set of names of which ANY may match). A miss is
  // X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH / EMAIL_MISMATCH at depth 0.
  std::vector<PeerName> required_names;
  // Validation time, seconds since the epoch (UTC).
  int64_t time_unix = 0;
  // The X509_PURPOSE_* id given to X509_STORE_CTX_set_purpose (1..X509_PURPOSE_MAX of
  // OpenSSL's table), or kNoPurpose.
  int purpose = kPurposeSslServer;
  // X509_VERIFY_PARAM_set_depth (0..kMaxDepth), or -1: OpenSSL's default (100).
  int max_depth = -1;
};

inline constexpr int kMaxDepth = 1000;
// The validation times Verify accepts (else an input_error): years 1..9999, what
// ASN1_TIME can express and what FormatRfc3339 formats.
inline constexpr int64_t kMinTimeUnix = -62135596800LL;  // 0001-01-01T00:00:00Z
inline constexpr int64_t kMaxTimeUnix = 253402300799LL;  // 9999-12-31T23:59:59Z
inline constexpr size_t kMaxRequiredNames = 64;

// One certificate of the chain OpenSSL built.
struct CertInfo {
  std::string subject;     // RFC 2253
  std::string issuer;      // RFC 2253
  std::string not_before;  // RFC 3339, UTC ("2024-01-01T00:00:00Z")
  std::string not_after;
  std::string sha256;      // SHA-256 of the DER, lower-case hex
};

struct Verdict {
  bool valid = false;
  // OpenSSL's X509_V_* code and string (X509_V_OK / "ok" when valid). 0 and "" when
  // the request never reached verification (see input_error).
  int error_code = 0;
  std::string error_string;
  // Depth (0 = leaf) of the certificate the error is about; -1 when valid or when the
  // request never reached verification.
  int error_depth = -1;
  // The chain OpenSSL built (as far as it got), leaf first.
  std::vector<CertInfo> chain;
  // The time the verification was made for (seconds since the epoch); none when the
  // request never reached verification.
  std::optional<int64_t> validation_time;
  // OpenSSL_version(OPENSSL_VERSION) of the verifying process ("" before verification).
  std::string openssl_version;
  // Non-empty when the input itself was unusable (garbage PEM, too many certificates,
  // NUL in host, oversized field...). valid is then false.
  std::string input_error;
  // Non-empty when the oracle itself failed (set by the front end, never by Verify: the
  // worker crashed, timed out or answered garbage; no worker could be had). valid is
  // then false.
  std::string internal_error;
};

// One-time OpenSSL initialisation; call in the worker BEFORE lock-down (and once in
// any process that calls Verify, e.g. tests and the in-process benchmark). Idempotent,
// thread-safe (the first call does the work). Returns false if OpenSSL could not be
// initialised or the throw-away verification failed: then do not lock down, because
// Verify() might still need a file.
bool WarmUpOpenSsl();

// Verifies `req`. Never throws, never aborts on any input (except the test crash hook
// below). Creates fresh OpenSSL objects per call; safe to call from several threads.
Verdict Verify(const VerifyRequest& req);

// Trust anchors parsed once for many Verify calls: the worker parses the system bundle
// (~140 certificates, each ~0.1 ms for OpenSSL 3.0 to decode) once, not for every job.
// Immutable after Parse; may be shared by threads (OpenSSL locks the certificates' lazily
// computed fields).
class TrustAnchors {
 public:
  // `pem` read exactly as VerifyRequest::trusted is (same limits, same errors). An error
  // is kept, and is the input_error of every verdict made with these anchors.
  static std::unique_ptr<TrustAnchors> Parse(const std::string& pem);
  ~TrustAnchors();
  TrustAnchors(const TrustAnchors&) = delete;
  TrustAnchors& operator=(const TrustAnchors&) = delete;
  const std::string& error() const { return error_; }
  // The parsed certificates (OpenSSL's STACK_OF(X509)); null after an error.
  ::stack_st_X509* certs() const { return certs_; }

 private:
  TrustAnchors() = default;
  ::stack_st_X509* certs_ = nullptr;
  std::string error_;
};

// Verifies `req` against `anchors` instead of req.trusted, which must be empty (else an
// input_error). The verdict is the one Verify(req with trusted = the anchors' PEM) gives.
Verdict VerifyWithAnchors(const VerifyRequest& req, const TrustAnchors& anchors);

// One JSON object: {"valid":..,"error_code":..,"error_string":..,"error_depth":..,
// "chain":[{"subject","issuer","not_before","not_after","sha256"}..],
// "validation_time":"RFC 3339"|null,"openssl":..,"input_error":..,"internal_error":..}. Strings are escaped as JSON requires (control bytes,
// quotes, backslash; bytes that are not valid UTF-8 become U+FFFD), so a hostile DN
// cannot break the framing.
std::string VerdictToJson(const Verdict& v);

// Test only: after this call, Verify() calls abort() when `chain` contains the bytes
// kCrashMagic. Lets tests crash a worker on purpose. Never called by production code.
inline constexpr char kCrashMagic[] = "VOW-TEST-CRASH-7f3a";
void EnableCrashHookForTesting();

// Seconds since the epoch for an RFC 3339 date-time ("2024-01-01T00:00:00Z",
// "...T02:00:00.5+02:00"; fractions are truncated).
absl::StatusOr<int64_t> ParseRfc3339(absl::string_view s);

// OpenSSL's purpose short names ("sslserver", "sslclient", "any", ...; X509_PURPOSE
// table) -> the id, or "none" -> kNoPurpose; nullopt for an unknown name.
std::optional<int> PurposeByName(absl::string_view name);
// Every name PurposeByName accepts, ", "-separated.
std::string PurposeNames();

// "YYYY-MM-DDThh:mm:ssZ" for seconds since the epoch (years 1..9999).
std::string FormatRfc3339(int64_t unix_seconds);

// Replaces control bytes (< 0x20, 0x7f) with "\\xNN" so that hostile text (a case id, a
// subject, an error string) cannot drive a terminal; other bytes are kept.
std::string Sanitize(absl::string_view s);

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_VERIFY_H_
