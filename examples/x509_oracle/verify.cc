#include "examples/x509_oracle/verify.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "examples/x509_oracle/json.h"

namespace vow::x509 {
namespace {

std::atomic<bool> g_crash_hook_enabled{false};

constexpr int64_t kMinTime = kMinTimeUnix;
constexpr int64_t kMaxTime = kMaxTimeUnix;

// A subject DN longer than this is cut (a hostile certificate can carry megabytes).
constexpr size_t kMaxSubjectBytes = 4096;

// CRLs per request.
constexpr int kMaxCrls = 1000;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct CtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using StackPtr = std::unique_ptr<STACK_OF(X509), StackFree>;
using StorePtr = std::unique_ptr<X509_STORE, StoreFree>;
using CtxPtr = std::unique_ptr<X509_STORE_CTX, CtxFree>;

// A PEM block can claim to be encrypted ("Proc-Type: 4,ENCRYPTED"); OpenSSL's default
// password callback would then read a password from the terminal (/dev/tty). Never.
int NoPassword(char*, int, int, void*) { return -1; }

// The most recent OpenSSL error on this thread, as text; clears the queue.
std::string TakeOpenSslError() {
  unsigned long last = 0;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) last = e;
  if (last == 0) return "no detail from OpenSSL";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof(buf));
  return buf;
}

bool IsEndOfPem(unsigned long err) {
  return ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
}

// Parses the certificates in `data` into `out` (appending). PEM: every CERTIFICATE /
// X509 CERTIFICATE block, other block types skipped; at most `max_certs`, counting
// stops at the first one over. DER (only with `allow_der`, when the data holds no PEM
// header): exactly one certificate and no trailing bytes. Returns "" or the error.
std::string ParseCertificates(const std::string& data, const char* what, int max_certs,
                              bool allow_der, STACK_OF(X509) * out) {
  if (data.empty()) return "";
  if (data.find("-----BEGIN") == std::string::npos) {
    if (!allow_der) {
      return absl::StrCat(what, ": no PEM certificate found (expected PEM)");
    }
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    const unsigned char* end = p + data.size();
    X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(data.size())));
    if (cert == nullptr) {
      return absl::StrCat(what, ": neither PEM nor a DER certificate (",
                          TakeOpenSslError(), ")");
    }
    if (p != end) {
      return absl::StrCat(what, ": ", end - p, " trailing bytes after the DER certificate");
    }
    if (sk_X509_push(out, cert.get()) <= 0) return absl::StrCat(what, ": out of memory");
    cert.release();
    return "";
  }
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (bio == nullptr) return absl::StrCat(what, ": out of memory");
  int count = 0;
  for (;;) {
    ERR_clear_error();
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
    if (cert == nullptr) {
      unsigned long err = ERR_peek_last_error();
      if (IsEndOfPem(err)) {
        ERR_clear_error();
        break;
      }
      return absl::StrCat(what, ": bad PEM certificate #", count + 1, " (",
                          TakeOpenSslError(), ")");
    }
    if (++count > max_certs) {
      return absl::StrCat(what, ": more than ", max_certs, " certificates");
    }
    if (sk_X509_push(out, cert.get()) <= 0) return absl::StrCat(what, ": out of memory");
    cert.release();
  }
  if (count == 0) return absl::StrCat(what, ": no PEM certificate found");
  return "";
}

std::string NameRfc2253(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return "";
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return "";
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) return "";
  std::string s(data, static_cast<size_t>(len));
  if (s.size() > kMaxSubjectBytes) {
    s.resize(kMaxSubjectBytes);
    s.append("...");
  }
  return s;
}

Verdict InputError(std::string why) {
  Verdict v;
  v.valid = false;
  v.input_error = std::move(why);
  return v;
}

unsigned int HostFlags(const VerifyRequest& req) {
  return X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
         (req.subject_cn_fallback ? 0u : X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
}

// Checks one peer name's form (no NUL, bounded). Returns "" or the error.
std::string CheckNameForm(absl::string_view what, absl::string_view value) {
  size_t nul = value.find('\0');
  if (nul != absl::string_view::npos) {
    return absl::StrCat(what, " contains a NUL byte (at offset ", nul, ")");
  }
  if (value.size() > kMaxHostBytes) {
    return absl::StrCat(what, " is ", value.size(), " bytes long (at most ", kMaxHostBytes,
                        ")");
  }
  if (value.empty()) return absl::StrCat(what, " is empty");
  return "";
}

// Parses the PEM CRLs in `data` into `store`. Returns "" or the error.
std::string AddCrls(const std::string& data, X509_STORE* store) {
  if (data.empty()) return "";
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (bio == nullptr) return "crls: out of memory";
  int count = 0;
  for (;;) {
    ERR_clear_error();
    X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, NoPassword, nullptr);
    if (crl == nullptr) {
      if (IsEndOfPem(ERR_peek_last_error())) {
        ERR_clear_error();
        break;
      }
      return absl::StrCat("crls: bad PEM CRL #", count + 1, " (", TakeOpenSslError(), ")");
    }
    ++count;
    int ok = count <= kMaxCrls ? X509_STORE_add_crl(store, crl) : 0;
    X509_CRL_free(crl);
    if (count > kMaxCrls) return absl::StrCat("crls: more than ", kMaxCrls, " CRLs");
    if (ok != 1) {
      return absl::StrCat("crls: cannot add CRL #", count, " (", TakeOpenSslError(), ")");
    }
  }
  if (count == 0) return "crls: no PEM CRL found";
  return "";
}

// After a successful verification: every required name must match the leaf.
void CheckRequiredNames(const VerifyRequest& req, X509* leaf, Verdict* v) {
  for (const PeerName& name : req.required_names) {
    int rc = 0, code = 0;
    switch (name.kind) {
      case PeerName::Kind::kDns:
        rc = X509_check_host(leaf, name.value.data(), name.value.size(), HostFlags(req),
                             nullptr);
        code = X509_V_ERR_HOSTNAME_MISMATCH;
        break;
      case PeerName::Kind::kIp:
        rc = X509_check_ip_asc(leaf, name.value.c_str(), 0);
        code = X509_V_ERR_IP_ADDRESS_MISMATCH;
        break;
      case PeerName::Kind::kEmail:
        rc = X509_check_email(leaf, name.value.data(), name.value.size(), 0);
        code = X509_V_ERR_EMAIL_MISMATCH;
        break;
    }
    if (rc == 1) continue;
    ERR_clear_error();
    v->valid = false;
    v->error_code = code;
    v->error_string = absl::StrCat(X509_verify_cert_error_string(code), " (",
                                   rc == -2 ? "malformed name " : "",
                                   Sanitize(name.value), ")");
    v->error_depth = 0;
    return;
  }
}

std::string Asn1TimeToRfc3339(const ASN1_TIME* t) {
  struct tm tm;
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return "";
  }
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

CertInfo DescribeCert(X509* cert) {
  CertInfo info;
  info.subject = NameRfc2253(X509_get_subject_name(cert));
  info.issuer = NameRfc2253(X509_get_issuer_name(cert));
  info.not_before = Asn1TimeToRfc3339(X509_get0_notBefore(cert));
  info.not_after = Asn1TimeToRfc3339(X509_get0_notAfter(cert));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) == 1) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < len; ++i) {
      info.sha256.push_back(kHex[md[i] >> 4]);
      info.sha256.push_back(kHex[md[i] & 15]);
    }
  }
  ERR_clear_error();
  return info;
}

// Applies the host check to `param`. Returns "" or an input error.
std::string SetHost(const VerifyRequest& req, X509_VERIFY_PARAM* param) {
  const std::string& host = req.host;
  if (host.empty()) return "";
  size_t nul = host.find('\0');
  if (nul != std::string::npos) {
    return absl::StrCat("host contains a NUL byte (at offset ", nul, ")");
  }
  if (host.size() > kMaxHostBytes) {
    return absl::StrCat("host is ", host.size(), " bytes long (at most ", kMaxHostBytes,
                        ")");
  }
  std::string literal = host;
  if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']') {
    literal = literal.substr(1, literal.size() - 2);
  }
  unsigned char addr[16];
  size_t addr_len = 0;
  if (inet_pton(AF_INET, literal.c_str(), addr) == 1) {
    addr_len = 4;
  } else if (inet_pton(AF_INET6, literal.c_str(), addr) == 1) {
    addr_len = 16;
  }
  if (req.host_kind == VerifyRequest::HostKind::kEmail) {
    if (X509_VERIFY_PARAM_set1_email(param, host.data(), host.size()) != 1) {
      return absl::StrCat("cannot set the e-mail address (", TakeOpenSslError(), ")");
    }
    return "";
  }
  bool as_ip;
  switch (req.host_kind) {
    case VerifyRequest::HostKind::kIp:
      if (addr_len == 0) return "host is not an IPv4 or IPv6 literal";
      as_ip = true;
      break;
    case VerifyRequest::HostKind::kDns:
      as_ip = false;
      break;
    case VerifyRequest::HostKind::kAuto:
    case VerifyRequest::HostKind::kEmail:
    default:
      if (addr_len == 0 && host.find(':') != std::string::npos) {
        return "host contains ':' but is not a valid IPv6 literal";
      }
      as_ip = addr_len != 0;
      break;
  }
  if (as_ip) {
    if (X509_VERIFY_PARAM_set1_ip(param, addr, addr_len) != 1) {
      return absl::StrCat("cannot set the IP address (", TakeOpenSslError(), ")");
    }
    return "";
  }
  X509_VERIFY_PARAM_set_hostflags(param, HostFlags(req));
  if (X509_VERIFY_PARAM_set1_host(param, host.data(), host.size()) != 1) {
    return absl::StrCat("cannot set the host name (", TakeOpenSslError(), ")");
  }
  return "";
}

Verdict VerifyParsed(const VerifyRequest& req, const TrustAnchors* anchors) {
  if (req.chain.empty()) return InputError("chain is empty");
  for (const auto& [field, value] : {std::pair<const char*, const std::string*>{
                                         "chain", &req.chain},
                                     {"untrusted", &req.untrusted},
                                     {"trusted", &req.trusted},
                                     {"crls", &req.crls},
                                     {"host", &req.host}}) {
    if (value->size() > kMaxFieldBytes) {
      return InputError(absl::StrCat(field, " is ", value->size(), " bytes (at most ",
                                     kMaxFieldBytes, ")"));
    }
  }
  if (req.time_unix < kMinTime || req.time_unix > kMaxTime) {
    return InputError(absl::StrCat("time ", req.time_unix,
                                   " is outside the years 1..9999"));
  }

  if (req.purpose != kNoPurpose && X509_PURPOSE_get_by_id(req.purpose) < 0) {
    return InputError(absl::StrCat("purpose ", req.purpose, " is not one OpenSSL knows"));
  }
  if (req.max_depth < -1 || req.max_depth > kMaxDepth) {
    return InputError(absl::StrCat("max_depth ", req.max_depth, " is outside -1..", kMaxDepth));
  }
  if (req.required_names.size() > kMaxRequiredNames) {
    return InputError(absl::StrCat(req.required_names.size(), " required names (at most ",
                                   kMaxRequiredNames, ")"));
  }
  for (size_t i = 0; i < req.required_names.size(); ++i) {
    std::string err = CheckNameForm(absl::StrCat("required name #", i + 1),
                                    req.required_names[i].value);
    if (!err.empty()) return InputError(std::move(err));
  }

  StackPtr chain(sk_X509_new_null());
  StackPtr untrusted(sk_X509_new_null());
  StackPtr trusted(sk_X509_new_null());
  if (!chain || !untrusted || !trusted) return InputError("out of memory");
  std::string err =
      ParseCertificates(req.chain, "chain", kMaxChainCerts, /*allow_der=*/true, chain.get());
  if (err.empty()) {
    err = ParseCertificates(req.untrusted, "untrusted", kMaxUntrustedCerts,
                            /*allow_der=*/false, untrusted.get());
  }
  if (err.empty() && anchors != nullptr) {
    if (!req.trusted.empty()) {
      err = "trusted: the request names anchors and parsed anchors were given as well";
    } else {
      err = anchors->error();
    }
  } else if (err.empty()) {
    err = ParseCertificates(req.trusted, "trusted", kMaxTrustedCerts, /*allow_der=*/false,
                            trusted.get());
  }
  if (!err.empty()) return InputError(std::move(err));
  // The store's anchors: parsed for this request, or parsed once before.
  STACK_OF(X509)* anchor_certs = anchors != nullptr ? anchors->certs() : trusted.get();
  if (sk_X509_num(chain.get()) < 1) return InputError("chain: no certificate");

  // The leaf is chain[0]; chain[1..] and `untrusted` are offered for path building.
  X509* leaf = sk_X509_value(chain.get(), 0);
  for (int i = 1; i < sk_X509_num(chain.get()); ++i) {
    X509* c = sk_X509_value(chain.get(), i);
    if (!X509_up_ref(c) || sk_X509_push(untrusted.get(), c) <= 0) {
      return InputError("out of memory");
    }
  }

  StorePtr store(X509_STORE_new());
  if (store == nullptr) return InputError("out of memory");
  for (int i = 0; i < sk_X509_num(anchor_certs); ++i) {
    // X509_STORE_add_cert takes its own reference; duplicates are ignored.
    if (X509_STORE_add_cert(store.get(), sk_X509_value(anchor_certs, i)) != 1) {
      return InputError(absl::StrCat("trusted: cannot add certificate #", i + 1, " (",
                                     TakeOpenSslError(), ")"));
    }
  }

  err = AddCrls(req.crls, store.get());
  if (!err.empty()) return InputError(std::move(err));

  CtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1) {
    return InputError(absl::StrCat("cannot set up verification (", TakeOpenSslError(),
                                   ")"));
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_flags(
      param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN |
                 (req.crls.empty() ? 0 : X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL));
  if (req.max_depth >= 0) X509_VERIFY_PARAM_set_depth(param, req.max_depth);
  // Sets X509_V_FLAG_USE_CHECK_TIME: OpenSSL compares with this, never with time().
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(req.time_unix));
  X509_VERIFY_PARAM_set_auth_level(param, 2);
  if (req.purpose != kNoPurpose && X509_STORE_CTX_set_purpose(ctx.get(), req.purpose) != 1) {
    return InputError(absl::StrCat("cannot set purpose (", TakeOpenSslError(), ")"));
  }
  err = SetHost(req, param);
  if (!err.empty()) return InputError(std::move(err));

  Verdict v;
  v.validation_time = req.time_unix;
  v.openssl_version = OpenSSL_version(OPENSSL_VERSION);
  int rc = X509_verify_cert(ctx.get());
  int code = X509_STORE_CTX_get_error(ctx.get());
  if (rc == 1 && code == X509_V_OK) {
    v.valid = true;
    v.error_code = X509_V_OK;
    v.error_string = X509_verify_cert_error_string(X509_V_OK);
    v.error_depth = -1;
  } else {
    v.valid = false;
    if (code == X509_V_OK) {
      // Failed without a verification error: an internal error (allocation...).
      v.error_code = X509_V_ERR_UNSPECIFIED;
      v.error_string = absl::StrCat("verification failed without an error code (",
                                    TakeOpenSslError(), ")");
    } else {
      v.error_code = code;
      v.error_string = X509_verify_cert_error_string(code);
    }
    v.error_depth = X509_STORE_CTX_get_error_depth(ctx.get());
  }
  STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get());
  if (built != nullptr) {
    for (int i = 0; i < sk_X509_num(built); ++i) {
      v.chain.push_back(DescribeCert(sk_X509_value(built, i)));
    }
  }
  if (v.valid) CheckRequiredNames(req, leaf, &v);
  return v;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// A throw-away self-signed EC certificate for WarmUpOpenSsl, as PEM; "" on failure.
std::string MakeWarmUpCertificate() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"),
                                                         EVP_PKEY_free);
  X509Ptr cert(X509_new());
  if (key == nullptr || cert == nullptr) return "";
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, 0, nullptr);
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), 1, 0, nullptr);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("vow warm-up"), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair<int, const char*>{NID_basic_constraints,
                                                        "critical,CA:TRUE"},
                            {NID_key_usage, "critical,keyCertSign,digitalSignature"},
                            {NID_subject_key_identifier, "hash"},
                            {NID_subject_alt_name, "DNS:warm-up.invalid,IP:192.0.2.1"},
                            {NID_ext_key_usage, "serverAuth,clientAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (ext == nullptr) return "";
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return "";
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert.get()) != 1) return "";
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

bool DoWarmUp() {
  if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_LOAD_CRYPTO_STRINGS |
                              OPENSSL_INIT_ADD_ALL_CIPHERS | OPENSSL_INIT_ADD_ALL_DIGESTS,
                          nullptr) != 1) {
    return false;
  }
  // glibc initialises its time zone state (reading /etc/localtime) on the first
  // gmtime_r, which OpenSSL calls to compare certificate times.
  time_t t = 0;
  struct tm tm;
  gmtime_r(&t, &tm);
  // Fetch (and cache in the default library context) the algorithms a verification
  // may need, so that no provider work is left for later.
  for (const char* md : {"SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "SHA3-256",
                         "SHA3-384", "SHA3-512", "MD5"}) {
    EVP_MD_free(EVP_MD_fetch(nullptr, md, nullptr));
  }
  for (const char* alg : {"RSA", "RSA-PSS", "EC", "ED25519", "ED448", "DSA"}) {
    EVP_KEYMGMT_free(EVP_KEYMGMT_fetch(nullptr, alg, nullptr));
    EVP_SIGNATURE_free(EVP_SIGNATURE_fetch(nullptr, alg, nullptr));
  }
  ERR_clear_error();
  // One real verification end to end (PEM, path building, EC signature, host and IP
  // checks, times).
  std::string pem = MakeWarmUpCertificate();
  if (pem.empty()) return false;
  VerifyRequest req;
  req.chain = pem;
  req.trusted = pem;
  req.host = "warm-up.invalid";
  req.time_unix = static_cast<int64_t>(std::time(nullptr));
  Verdict v = VerifyParsed(req, nullptr);
  req.host = "192.0.2.1";
  Verdict v_ip = VerifyParsed(req, nullptr);
  ERR_clear_error();
  return v.valid && v_ip.valid;
}

}  // namespace

bool WarmUpOpenSsl() {
  static const bool ok = DoWarmUp();
  return ok;
}

Verdict Verify(const VerifyRequest& req) {
  if (g_crash_hook_enabled.load(std::memory_order_relaxed) &&
      req.chain.find(kCrashMagic) != std::string::npos) {
    abort();
  }
  ERR_clear_error();
  Verdict v = VerifyParsed(req, nullptr);
  ERR_clear_error();
  return v;
}

Verdict VerifyWithAnchors(const VerifyRequest& req, const TrustAnchors& anchors) {
  if (g_crash_hook_enabled.load(std::memory_order_relaxed) &&
      req.chain.find(kCrashMagic) != std::string::npos) {
    abort();
  }
  ERR_clear_error();
  Verdict v = VerifyParsed(req, &anchors);
  ERR_clear_error();
  return v;
}

std::unique_ptr<TrustAnchors> TrustAnchors::Parse(const std::string& pem) {
  std::unique_ptr<TrustAnchors> anchors(new TrustAnchors());
  if (pem.size() > kMaxFieldBytes) {
    anchors->error_ =
        absl::StrCat("trusted is ", pem.size(), " bytes (at most ", kMaxFieldBytes, ")");
    return anchors;
  }
  StackPtr certs(sk_X509_new_null());
  if (certs == nullptr) {
    anchors->error_ = "out of memory";
    return anchors;
  }
  ERR_clear_error();
  anchors->error_ = ParseCertificates(pem, "trusted", kMaxTrustedCerts, /*allow_der=*/false,
                                      certs.get());
  ERR_clear_error();
  if (anchors->error_.empty()) anchors->certs_ = certs.release();
  return anchors;
}

TrustAnchors::~TrustAnchors() {
  if (certs_ != nullptr) sk_X509_pop_free(certs_, X509_free);
}

std::string VerdictToJson(const Verdict& v) {
  std::string out = "{\"valid\":";
  out.append(v.valid ? "true" : "false");
  absl::StrAppend(&out, ",\"error_code\":", v.error_code, ",\"error_string\":");
  AppendJsonString(v.error_string, &out);
  absl::StrAppend(&out, ",\"error_depth\":", v.error_depth, ",\"chain\":[");
  for (size_t i = 0; i < v.chain.size(); ++i) {
    const CertInfo& c = v.chain[i];
    out.append(i > 0 ? ",{\"subject\":" : "{\"subject\":");
    AppendJsonString(c.subject, &out);
    out.append(",\"issuer\":");
    AppendJsonString(c.issuer, &out);
    out.append(",\"not_before\":");
    AppendJsonString(c.not_before, &out);
    out.append(",\"not_after\":");
    AppendJsonString(c.not_after, &out);
    out.append(",\"sha256\":");
    AppendJsonString(c.sha256, &out);
    out.push_back('}');
  }
  out.append("],\"validation_time\":");
  if (v.validation_time.has_value()) {
    AppendJsonString(FormatRfc3339(*v.validation_time), &out);
  } else {
    out.append("null");
  }
  out.append(",\"openssl\":");
  AppendJsonString(v.openssl_version, &out);
  out.append(",\"input_error\":");
  AppendJsonString(v.input_error, &out);
  out.append(",\"internal_error\":");
  AppendJsonString(v.internal_error, &out);
  out.push_back('}');
  return out;
}

absl::StatusOr<int64_t> ParseRfc3339(absl::string_view s) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an RFC 3339 date-time (", why, "): \"", Sanitize(s), "\""));
  };
  size_t p = 0;
  auto digits = [&](int n, int* out) {
    if (p + n > s.size()) return false;
    int v = 0;
    for (int i = 0; i < n; ++i) {
      char c = s[p + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    p += n;
    *out = v;
    return true;
  };
  auto expect = [&](absl::string_view chars) {
    if (p < s.size() && chars.find(s[p]) != absl::string_view::npos) {
      ++p;
      return true;
    }
    return false;
  };
  int year, month, day, hour, minute, second;
  if (!digits(4, &year) || !expect("-") || !digits(2, &month) || !expect("-") ||
      !digits(2, &day)) {
    return bad("expected YYYY-MM-DD");
  }
  if (!expect("Tt ")) return bad("expected 'T' after the date");
  if (!digits(2, &hour) || !expect(":") || !digits(2, &minute) || !expect(":") ||
      !digits(2, &second)) {
    return bad("expected hh:mm:ss");
  }
  if (expect(".")) {
    size_t start = p;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
    if (p == start) return bad("expected digits after '.'");
  }
  int offset_seconds = 0;
  if (expect("Zz")) {
    // UTC
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    int sign = s[p] == '-' ? -1 : 1;
    ++p;
    int oh, om;
    if (!digits(2, &oh) || !expect(":") || !digits(2, &om) || oh > 23 || om > 59) {
      return bad("expected a +hh:mm offset");
    }
    offset_seconds = sign * (oh * 3600 + om * 60);
  } else {
    return bad("expected 'Z' or an offset");
  }
  if (p != s.size()) return bad("unexpected characters at the end");
  static constexpr int kDaysIn[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) return bad("month out of range");
  int max_day = kDaysIn[month - 1] + (month == 2 && IsLeap(year) ? 1 : 0);
  if (day < 1 || day > max_day) return bad("day out of range");
  // 60 is a leap second; POSIX time has none, count it as the next second.
  if (hour > 23 || minute > 59 || second > 60) return bad("time out of range");
  return DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
         offset_seconds;
}

std::string FormatRfc3339(int64_t t) {
  // Civil from days (H. Hinnant's algorithm), proleptic Gregorian.
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, secs / 3600,
                         secs / 60 % 60, secs % 60);
}

std::optional<int> PurposeByName(absl::string_view name) {
  if (name == "none") return kNoPurpose;
  for (int i = 0; i < X509_PURPOSE_get_count(); ++i) {
    X509_PURPOSE* p = X509_PURPOSE_get0(i);
    if (p != nullptr && name == X509_PURPOSE_get0_sname(p)) return X509_PURPOSE_get_id(p);
  }
  return std::nullopt;
}

std::string PurposeNames() {
  std::string out = "none";
  for (int i = 0; i < X509_PURPOSE_get_count(); ++i) {
    X509_PURPOSE* p = X509_PURPOSE_get0(i);
    if (p != nullptr) absl::StrAppend(&out, ", ", X509_PURPOSE_get0_sname(p));
  }
  return out;
}

std::string Sanitize(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out.append(absl::StrFormat("\\x%02x", u));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void EnableCrashHookForTesting() {
  g_crash_hook_enabled.store(true, std::memory_order_relaxed);
}

}  // namespace vow::x509
