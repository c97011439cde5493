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

#include "absl/strings/str_cat.h"
#include "examples/x509_oracle/json.h"

namespace vow::x509 {
namespace {

std::atomic<bool> g_crash_hook_enabled{false};

// Years 1..9999: what ASN1_TIME can express.
constexpr int64_t kMinTime = -62135596800LL;
constexpr int64_t kMaxTime = 253402300799LL;

// A subject DN longer than this is cut (a hostile certificate can carry megabytes).
constexpr size_t kMaxSubjectBytes = 4096;

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

std::string SubjectRfc2253(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return "";
  if (X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) {
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
  X509_VERIFY_PARAM_set_hostflags(
      param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
  if (X509_VERIFY_PARAM_set1_host(param, host.data(), host.size()) != 1) {
    return absl::StrCat("cannot set the host name (", TakeOpenSslError(), ")");
  }
  return "";
}

Verdict VerifyParsed(const VerifyRequest& req) {
  if (req.chain.empty()) return InputError("chain is empty");
  for (const auto& [field, value] : {std::pair<const char*, const std::string*>{
                                         "chain", &req.chain},
                                     {"untrusted", &req.untrusted},
                                     {"trusted", &req.trusted},
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
  if (err.empty()) {
    err = ParseCertificates(req.trusted, "trusted", kMaxTrustedCerts, /*allow_der=*/false,
                            trusted.get());
  }
  if (!err.empty()) return InputError(std::move(err));
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
  for (int i = 0; i < sk_X509_num(trusted.get()); ++i) {
    // X509_STORE_add_cert takes its own reference; duplicates are ignored.
    if (X509_STORE_add_cert(store.get(), sk_X509_value(trusted.get(), i)) != 1) {
      return InputError(absl::StrCat("trusted: cannot add certificate #", i + 1, " (",
                                     TakeOpenSslError(), ")"));
    }
  }

  CtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1) {
    return InputError(absl::StrCat("cannot set up verification (", TakeOpenSslError(),
                                   ")"));
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
  // Sets X509_V_FLAG_USE_CHECK_TIME: OpenSSL compares with this, never with time().
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(req.time_unix));
  X509_VERIFY_PARAM_set_auth_level(param, 2);
  int purpose = req.kind == VerifyRequest::Kind::kClient ? X509_PURPOSE_SSL_CLIENT
                                                         : X509_PURPOSE_SSL_SERVER;
  if (X509_STORE_CTX_set_purpose(ctx.get(), purpose) != 1) {
    return InputError(absl::StrCat("cannot set purpose (", TakeOpenSslError(), ")"));
  }
  err = SetHost(req, param);
  if (!err.empty()) return InputError(std::move(err));

  Verdict v;
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
      v.chain_subjects.push_back(SubjectRfc2253(sk_X509_value(built, i)));
    }
  }
  return v;
}

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
  Verdict v = VerifyParsed(req);
  req.host = "192.0.2.1";
  Verdict v_ip = VerifyParsed(req);
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
  Verdict v = VerifyParsed(req);
  ERR_clear_error();
  return v;
}

std::string VerdictToJson(const Verdict& v) {
  std::string out = "{\"valid\":";
  out.append(v.valid ? "true" : "false");
  absl::StrAppend(&out, ",\"error_code\":", v.error_code, ",\"error_string\":");
  AppendJsonString(v.error_string, &out);
  absl::StrAppend(&out, ",\"error_depth\":", v.error_depth, ",\"chain\":[");
  for (size_t i = 0; i < v.chain_subjects.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(v.chain_subjects[i], &out);
  }
  out.append("],\"input_error\":");
  AppendJsonString(v.input_error, &out);
  out.push_back('}');
  return out;
}

void EnableCrashHookForTesting() {
  g_crash_hook_enabled.store(true, std::memory_order_relaxed);
}

}  // namespace vow::x509
