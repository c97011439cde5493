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
// Verification policy (fixed; the same in-process and in the sandbox):
//  - X509_V_FLAG_X509_STRICT: RFC 5280 strictness (critical basicConstraints on CAs,
//    AKID/SKID presence, no explicit EC parameters, ...). An oracle should answer for
//    the standard, not for OpenSSL's backwards-compatible leniency; x509-limbo's own
//    OpenSSL harness sets it too. Real web PKI chains satisfy it.
//  - X509_V_FLAG_PARTIAL_CHAIN: every certificate in `trusted` is a trust anchor, even
//    if it is not self-signed (as in nearly every other path builder).
//  - security level 2 (keys >= 112 bits of security: RSA/DSA >= 2048, no SHA-1/MD5
//    signatures).
//  - host names: X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT
//    (no subject-CN fallback, as in browsers); an IP literal is matched against
//    iPAddress SANs only.
//  - purpose: Kind::kServer -> X509_PURPOSE_SSL_SERVER (serverAuth EKU, or no EKU),
//    Kind::kClient -> X509_PURPOSE_SSL_CLIENT.
//  - no revocation (no CRLs, no OCSP), no policy checks.
#ifndef VOW_EXAMPLES_X509_ORACLE_VERIFY_H_
#define VOW_EXAMPLES_X509_ORACLE_VERIFY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vow::x509 {

// Limits on a request; anything above is an input_error, decided before any parsing
// beyond what is needed to count.
inline constexpr size_t kMaxFieldBytes = 16 << 20;  // per byte-buffer field
inline constexpr size_t kMaxHostBytes = 255;        // DNS names are <= 253 bytes
inline constexpr int kMaxChainCerts = 100;          // `chain`
inline constexpr int kMaxUntrustedCerts = 100;      // `untrusted`
inline constexpr int kMaxTrustedCerts = 1000;       // `trusted` (Debian's bundle: ~150)

struct VerifyRequest {
  // PEM (one or more certificates; the first is the leaf, the others are offered as
  // untrusted intermediates) or DER (exactly one certificate, no trailing bytes).
  std::string chain;
  // Optional extra untrusted intermediates, PEM.
  std::string untrusted;
  // Trust anchors, PEM (the broker supplies the system bundle or the request's).
  std::string trusted;
  // DNS name or IP literal (IPv4 dotted quad, IPv6 with or without brackets). Empty:
  // no name check. May contain hostile bytes: NUL is refused with an input_error.
  std::string host;
  // How `host` is matched. kAuto: an IP literal if it parses as one, else a DNS name.
  enum class HostKind { kAuto, kDns, kIp } host_kind = HostKind::kAuto;
  // Validation time, seconds since the epoch (UTC).
  int64_t time_unix = 0;
  // EKU purpose: serverAuth or clientAuth.
  enum class Kind { kServer, kClient } kind = Kind::kServer;
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
  // The chain OpenSSL built (as far as it got), leaf first: subject DNs, RFC 2253.
  std::vector<std::string> chain_subjects;
  // Non-empty when the input itself was unusable (garbage PEM, too many certificates,
  // NUL in host, oversized field...). valid is then false.
  std::string input_error;
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

// One JSON object: {"valid":..,"error_code":..,"error_string":..,"error_depth":..,
// "chain":[..],"input_error":..}. Strings are escaped as JSON requires (control bytes,
// quotes, backslash; bytes that are not valid UTF-8 become U+FFFD), so a hostile DN
// cannot break the framing.
std::string VerdictToJson(const Verdict& v);

// Test only: after this call, Verify() calls abort() when `chain` contains the bytes
// kCrashMagic. Lets tests crash a worker on purpose. Never called by production code.
inline constexpr char kCrashMagic[] = "VOW-TEST-CRASH-7f3a";
void EnableCrashHookForTesting();

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_VERIFY_H_
