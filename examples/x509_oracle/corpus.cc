#include "examples/x509_oracle/corpus.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

namespace vow::x509 {
namespace {

constexpr int64_t kYear = 365 * 86400;
constexpr int64_t k2020 = 1577836800;  // 2020-01-01T00:00:00Z
constexpr int64_t k2024 = 1704067200;
constexpr int64_t k2026 = 1767225600;
constexpr int64_t k2040 = 2208988800;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "corpus: %s failed\n", what);
  ERR_print_errors_fp(stderr);
  std::abort();
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// One certificate with its key.
struct Cert {
  PkeyPtr key;
  X509Ptr cert;
};

struct CertSpec {
  std::string cn;
  int64_t not_before = k2024;
  int64_t not_after = k2026;
  bool ca = false;
  int pathlen = -1;             // CA only; -1: no pathLenConstraint
  std::string san;              // "DNS:a,IP:1.2.3.4"; empty: none
  std::string eku;              // "serverAuth"; empty: none
  std::string name_constraints; // "permitted;DNS:example.com"; empty: none
  size_t opaque_ext_bytes = 0;  // > 0: an opaque non-critical extension this long
};

void AddExt(X509* cert, X509V3_CTX* v3, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, v3, nid, value.c_str());
  if (ext == nullptr) Die("X509V3_EXT_conf_nid");
  if (X509_add_ext(cert, ext, -1) != 1) Die("X509_add_ext");
  X509_EXTENSION_free(ext);
}

// Issues `spec` signed by `issuer` (self-signed when null).
Cert Issue(const CertSpec& spec, const Cert* issuer) {
  static long serial = 1000;
  Cert c;
  c.key.reset(EVP_EC_gen("P-256"));
  c.cert.reset(X509_new());
  if (!c.key || !c.cert) Die("EVP_EC_gen/X509_new");
  X509* x = c.cert.get();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
  if (!ASN1_TIME_set(X509_getm_notBefore(x), static_cast<time_t>(spec.not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(x), static_cast<time_t>(spec.not_after))) {
    Die("ASN1_TIME_set");
  }
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("vow test"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1,
                             -1, 0);
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : x;
  EVP_PKEY* issuer_key = issuer != nullptr ? issuer->key.get() : c.key.get();
  X509_set_issuer_name(x, X509_get_subject_name(issuer_cert));
  X509_set_pubkey(x, c.key.get());

  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer_cert, x, nullptr, nullptr, 0);
  if (spec.ca) {
    std::string bc = "critical,CA:TRUE";
    if (spec.pathlen >= 0) bc += ",pathlen:" + std::to_string(spec.pathlen);
    AddExt(x, &v3, NID_basic_constraints, bc);
    AddExt(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(x, &v3, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(x, &v3, NID_key_usage, "critical,digitalSignature");
  }
  AddExt(x, &v3, NID_subject_key_identifier, "hash");
  // For a self-signed certificate the issuer's SKID is its own: set it first.
  AddExt(x, &v3, NID_authority_key_identifier, "keyid:always");
  if (!spec.san.empty()) AddExt(x, &v3, NID_subject_alt_name, spec.san);
  if (!spec.eku.empty()) AddExt(x, &v3, NID_ext_key_usage, spec.eku);
  if (!spec.name_constraints.empty()) {
    AddExt(x, &v3, NID_name_constraints, "critical," + spec.name_constraints);
  }
  if (spec.opaque_ext_bytes > 0) {
    // 1.3.6.1.4.1.32473 is the documentation enterprise number (RFC 5612).
    ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.4.1.32473.1.1", 1);
    ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
    std::string bytes(spec.opaque_ext_bytes, '\0');
    uint32_t state = 0x9e3779b9u;  // xorshift: not compressible, not all zeros
    for (char& b : bytes) {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      b = static_cast<char>(state);
    }
    if (oid == nullptr || value == nullptr ||
        ASN1_OCTET_STRING_set(value, reinterpret_cast<const unsigned char*>(bytes.data()),
                              static_cast<int>(bytes.size())) != 1) {
      Die("the opaque extension");
    }
    X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, oid, 0, value);
    if (ext == nullptr || X509_add_ext(x, ext, -1) != 1) Die("X509_add_ext (opaque)");
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(value);
    ASN1_OBJECT_free(oid);
  }
  if (X509_sign(x, issuer_key, EVP_sha256()) <= 0) Die("X509_sign");
  return c;
}

std::string Pem(X509* x) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr || PEM_write_bio_X509(bio, x) != 1) Die("PEM_write_bio_X509");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string s(data, static_cast<size_t>(len));
  BIO_free(bio);
  return s;
}

std::string Der(X509* x) {
  unsigned char* buf = nullptr;
  int len = i2d_X509(x, &buf);
  if (len <= 0) Die("i2d_X509");
  std::string s(reinterpret_cast<char*>(buf), static_cast<size_t>(len));
  OPENSSL_free(buf);
  return s;
}

CertSpec CaSpec(std::string cn, int pathlen = -1) {
  CertSpec s;
  s.cn = std::move(cn);
  s.ca = true;
  s.pathlen = pathlen;
  s.not_before = k2020;
  s.not_after = k2040;
  return s;
}

CertSpec LeafSpec(std::string cn, std::string san, std::string eku = "serverAuth") {
  CertSpec s;
  s.cn = std::move(cn);
  s.san = std::move(san);
  s.eku = std::move(eku);
  return s;
}

}  // namespace

ValidChainPems MakeValidChain() {
  Cert root = Issue(CaSpec("vow test root"), nullptr);
  Cert inter = Issue(CaSpec("vow test intermediate", 0), &root);
  Cert leaf = Issue(LeafSpec("www.example.com", "DNS:www.example.com"), &inter);
  return {Pem(root.cert.get()), Pem(inter.cert.get()), Pem(leaf.cert.get())};
}

ValidChainPems MakeValidChainWithLargeLeaf(size_t leaf_bytes) {
  Cert root = Issue(CaSpec("vow test root"), nullptr);
  Cert inter = Issue(CaSpec("vow test intermediate", 0), &root);
  CertSpec spec = LeafSpec("www.example.com", "DNS:www.example.com");
  spec.opaque_ext_bytes = leaf_bytes;
  Cert leaf = Issue(spec, &inter);
  return {Pem(root.cert.get()), Pem(inter.cert.get()), Pem(leaf.cert.get())};
}

std::vector<CorpusEntry> MakeCorpus() {
  Cert root = Issue(CaSpec("vow test root"), nullptr);
  Cert inter = Issue(CaSpec("vow test intermediate", 0), &root);
  const std::string root_pem = Pem(root.cert.get());
  const std::string inter_pem = Pem(inter.cert.get());

  Cert leaf = Issue(LeafSpec("www.example.com", "DNS:www.example.com,DNS:*.example.com"),
                    &inter);
  CertSpec expired_spec = LeafSpec("www.example.com", "DNS:www.example.com");
  expired_spec.not_before = k2020;
  expired_spec.not_after = k2020 + kYear;
  Cert expired = Issue(expired_spec, &inter);
  CertSpec future_spec = LeafSpec("www.example.com", "DNS:www.example.com");
  future_spec.not_before = k2026 + kYear;
  future_spec.not_after = k2026 + 2 * kYear;
  Cert future = Issue(future_spec, &inter);
  Cert ip_leaf =
      Issue(LeafSpec("ip leaf", "IP:192.0.2.10,IP:2001:db8::10"), &inter);
  Cert client_leaf = Issue(LeafSpec("client", "DNS:client.example.com", "clientAuth"),
                           &inter);
  Cert self_signed = Issue(LeafSpec("www.example.com", "DNS:www.example.com"), nullptr);

  // Name constraints: an intermediate limited to example.com, and a leaf outside it.
  CertSpec nc_spec = CaSpec("vow constrained intermediate", 0);
  nc_spec.name_constraints = "permitted;DNS:example.com";
  Cert nc_inter = Issue(nc_spec, &root);
  Cert nc_leaf = Issue(LeafSpec("www.example.net", "DNS:www.example.net"), &nc_inter);

  // Path length: pathlen:0 intermediate, then another CA below it, then the leaf.
  Cert sub_ca = Issue(CaSpec("vow sub-CA under pathlen 0"), &inter);
  Cert deep_leaf = Issue(LeafSpec("www.example.com", "DNS:www.example.com"), &sub_ca);

  // Corrupted signature: flip a bit in the last byte of the DER (inside the signature
  // value), keeping the encoding well-formed.
  std::string corrupted_der = Der(leaf.cert.get());
  corrupted_der.back() ^= 0x01;
  std::string corrupted_pem;
  {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(corrupted_der.data());
    X509Ptr x(d2i_X509(nullptr, &p, static_cast<long>(corrupted_der.size())));
    if (!x) Die("d2i_X509 of the corrupted certificate");
    corrupted_pem = Pem(x.get());
  }

  const std::string leaf_pem = Pem(leaf.cert.get());
  auto chain_of = [&](const Cert& c) { return Pem(c.cert.get()) + inter_pem; };
  auto request = [&](std::string chain, std::string host) {
    VerifyRequest r;
    r.chain = std::move(chain);
    r.trusted = root_pem;
    r.host = std::move(host);
    r.time_unix = kCorpusTime;
    return r;
  };
  auto valid = [](std::string name, VerifyRequest r) {
    CorpusEntry e;
    e.name = std::move(name);
    e.request = std::move(r);
    e.expect_valid = true;
    e.expect_error = X509_V_OK;
    e.expect_depth = -1;
    return e;
  };
  auto invalid = [](std::string name, VerifyRequest r, int error, int depth) {
    CorpusEntry e;
    e.name = std::move(name);
    e.request = std::move(r);
    e.expect_valid = false;
    e.expect_error = error;
    e.expect_depth = depth;
    return e;
  };

  std::vector<CorpusEntry> out;
  out.push_back(valid("valid_chain", request(chain_of(leaf), "www.example.com")));
  out.push_back(valid("valid_wildcard", request(chain_of(leaf), "api.example.com")));
  {
    VerifyRequest r = request(Der(leaf.cert.get()), "www.example.com");
    r.untrusted = inter_pem;
    out.push_back(valid("valid_der_leaf_untrusted_intermediate", std::move(r)));
  }
  out.push_back(valid("valid_ipv4", request(chain_of(ip_leaf), "192.0.2.10")));
  out.push_back(valid("valid_ipv6", request(chain_of(ip_leaf), "2001:db8::10")));
  {
    VerifyRequest r = request(chain_of(client_leaf), "");
    r.purpose = kPurposeSslClient;
    out.push_back(valid("valid_client", std::move(r)));
  }
  out.push_back(invalid("expired_leaf", request(chain_of(expired), "www.example.com"),
                        X509_V_ERR_CERT_HAS_EXPIRED, 0));
  out.push_back(invalid("not_yet_valid_leaf",
                        request(chain_of(future), "www.example.com"),
                        X509_V_ERR_CERT_NOT_YET_VALID, 0));
  out.push_back(invalid("wrong_host", request(chain_of(leaf), "www.example.org"),
                        X509_V_ERR_HOSTNAME_MISMATCH, 0));
  out.push_back(invalid("wrong_host_partial_label",
                        request(chain_of(leaf), "a.b.example.com"),
                        X509_V_ERR_HOSTNAME_MISMATCH, 0));
  out.push_back(invalid("wrong_ipv4", request(chain_of(ip_leaf), "192.0.2.11"),
                        X509_V_ERR_IP_ADDRESS_MISMATCH, 0));
  out.push_back(invalid("wrong_ipv6", request(chain_of(ip_leaf), "2001:db8::11"),
                        X509_V_ERR_IP_ADDRESS_MISMATCH, 0));
  out.push_back(invalid("ip_host_against_dns_leaf",
                        request(chain_of(leaf), "192.0.2.10"),
                        X509_V_ERR_IP_ADDRESS_MISMATCH, 0));
  out.push_back(invalid("untrusted_self_signed",
                        request(Pem(self_signed.cert.get()), "www.example.com"),
                        X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0));
  out.push_back(invalid("missing_intermediate", request(leaf_pem, "www.example.com"),
                        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0));
  out.push_back(invalid("corrupted_signature",
                        request(corrupted_pem + inter_pem, "www.example.com"),
                        X509_V_ERR_CERT_SIGNATURE_FAILURE, 0));
  out.push_back(invalid("name_constraint_violation",
                        request(Pem(nc_leaf.cert.get()) + Pem(nc_inter.cert.get()),
                                "www.example.net"),
                        X509_V_ERR_PERMITTED_VIOLATION, 0));
  out.push_back(invalid("path_length_exceeded",
                        request(Pem(deep_leaf.cert.get()) + Pem(sub_ca.cert.get()) +
                                    inter_pem,
                                "www.example.com"),
                        X509_V_ERR_PATH_LENGTH_EXCEEDED, 2));
  out.push_back(invalid("wrong_eku_client_leaf_for_server",
                        request(chain_of(client_leaf), "client.example.com"),
                        X509_V_ERR_INVALID_PURPOSE, 0));
  {
    VerifyRequest r = request(chain_of(leaf), "");
    r.purpose = kPurposeSslClient;
    out.push_back(invalid("wrong_eku_server_leaf_for_client", std::move(r),
                          X509_V_ERR_INVALID_PURPOSE, 0));
  }
  {
    CorpusEntry e;
    e.name = "garbage";
    e.request = request("this is not a certificate\n\x01\x02\x03", "www.example.com");
    e.expect_input_error = true;
    out.push_back(std::move(e));
  }
  return out;
}

namespace {

std::string CrlPem(const Cert& issuer, const std::vector<long>& revoked_serials,
                   int64_t last_update, int64_t next_update) {
  X509_CRL* crl = X509_CRL_new();
  if (crl == nullptr) Die("X509_CRL_new");
  X509_CRL_set_version(crl, 1);  // v2
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer.cert.get()));
  ASN1_TIME* t = ASN1_TIME_new();
  ASN1_TIME_set(t, static_cast<time_t>(last_update));
  X509_CRL_set1_lastUpdate(crl, t);
  ASN1_TIME_set(t, static_cast<time_t>(next_update));
  X509_CRL_set1_nextUpdate(crl, t);
  for (long serial : revoked_serials) {
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* n = ASN1_INTEGER_new();
    ASN1_INTEGER_set(n, serial);
    X509_REVOKED_set_serialNumber(r, n);
    ASN1_TIME_set(t, static_cast<time_t>(last_update));
    X509_REVOKED_set_revocationDate(r, t);
    X509_CRL_add0_revoked(crl, r);
    ASN1_INTEGER_free(n);
  }
  ASN1_TIME_free(t);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer.cert.get(), nullptr, nullptr, crl, 0);
  X509_EXTENSION* akid = X509V3_EXT_conf_nid(nullptr, &v3, NID_authority_key_identifier,
                                             "keyid:always");
  if (akid == nullptr) Die("CRL AKID");
  X509_CRL_add_ext(crl, akid, -1);
  X509_EXTENSION_free(akid);
  ASN1_INTEGER* number = ASN1_INTEGER_new();
  ASN1_INTEGER_set(number, 1);
  X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0);
  ASN1_INTEGER_free(number);
  X509_CRL_sort(crl);
  if (X509_CRL_sign(crl, issuer.key.get(), EVP_sha256()) <= 0) Die("X509_CRL_sign");
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr || PEM_write_bio_X509_CRL(bio, crl) != 1) Die("PEM_write_bio_X509_CRL");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  X509_CRL_free(crl);
  return out;
}

long Serial(const Cert& c) { return ASN1_INTEGER_get(X509_get_serialNumber(c.cert.get())); }

// JSON string literal (the inputs here are ASCII and PEM).
std::string Q(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string List(const std::vector<std::string>& items, bool quote = true) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += quote ? Q(items[i]) : items[i];
  }
  return out + "]";
}

std::string Name(const char* kind, const char* value) {
  return std::string("{\"kind\": \"") + kind + "\", \"value\": " + Q(value) + "}";
}

}  // namespace

std::string MakeLimboSuite(int cases) {
  Cert root = Issue(CaSpec("vow limbo root"), nullptr);
  Cert inter = Issue(CaSpec("vow limbo intermediate"), &root);
  std::vector<Cert> leaves;
  leaves.push_back(Issue(LeafSpec("www.example.com",
                                  "DNS:www.example.com,IP:192.0.2.1,email:user@example.com"),
                         &inter));
  leaves.push_back(Issue(LeafSpec("client.example.com", "DNS:client.example.com", "clientAuth"),
                         &inter));
  leaves.push_back(Issue(LeafSpec("cn.example.com", ""), &inter));  // no SAN: CN only
  leaves.push_back(Issue(LeafSpec("www.example.com", "DNS:www.example.com", "codeSigning"),
                         &inter));
  leaves.push_back(Issue(LeafSpec("www.example.com", "DNS:*.example.com", ""), &inter));
  Cert revoked = Issue(LeafSpec("www.example.com", "DNS:www.example.com"), &inter);
  long revoked_serial = Serial(revoked);
  leaves.push_back(std::move(revoked));

  const std::string root_crl = CrlPem(root, {}, k2024, k2040);
  const std::string inter_crl = CrlPem(inter, {revoked_serial}, k2024, k2040);
  const std::string root_pem = Pem(root.cert.get());
  const std::string inter_pem = Pem(inter.cert.get());

  const std::vector<std::vector<std::string>> crl_sets = {
      {}, {root_crl, inter_crl}, {inter_crl}, {root_crl}};
  const std::vector<std::vector<std::string>> trusted_sets = {{root_pem}, {}, {inter_pem}};
  const std::vector<std::string> depths = {"null", "0", "1", "2", "5"};
  const std::vector<std::vector<std::string>> ekus = {
      {}, {"serverAuth"}, {"clientAuth"}, {"anyExtendedKeyUsage"}, {"codeSigning"},
      {"serverAuth", "clientAuth"}};
  const std::vector<std::string> peer_names = {
      "null",
      Name("DNS", "www.example.com"),
      Name("DNS", "other.example.com"),
      Name("DNS", "cn.example.com"),
      Name("DNS", "foo.example.com"),
      Name("IP", "192.0.2.1"),
      Name("IP", "192.0.2.2"),
      Name("RFC822", "user@example.com"),
      Name("RFC822", "other@example.com")};
  const std::vector<std::vector<std::string>> peer_name_lists = {
      {},
      {Name("DNS", "www.example.com")},
      {Name("DNS", "www.example.com"), Name("IP", "192.0.2.1")},
      {Name("DNS", "www.example.com"), Name("RFC822", "other@example.com")},
      {Name("DNS", "client.example.com")},
      {Name("RFC822", "user@example.com"), Name("IP", "192.0.2.1"),
       Name("DNS", "www.example.com")}};
  const std::vector<std::string> times = {"\"2025-01-01T00:00:00Z\"",
                                          "\"2030-06-01T12:00:00+02:00\"",
                                          "\"2023-06-01T00:00:00Z\"", "null"};

  std::string out = "{\"version\": 1, \"testcases\": [\n";
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto pick = [&state](size_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>((state >> 33) % n);
  };
  for (int i = 0; i < cases; ++i) {
    bool client = pick(3) == 0;
    const Cert& leaf = leaves[pick(leaves.size())];
    const auto& crls = crl_sets[pick(crl_sets.size())];
    const auto& trusted = trusted_sets[pick(trusted_sets.size())];
    bool with_inter = pick(4) != 0;
    std::string depth = depths[pick(depths.size())];
    const auto& eku = ekus[pick(ekus.size())];
    std::string time = times[pick(times.size())];
    size_t rare = pick(40);
    std::string key_usage = rare == 0 ? "[\"digitalSignature\"]" : "[]";
    std::string sig_algs = rare == 1 ? "[\"ECDSA_WITH_SHA256\"]" : "[]";
    std::string features = rare < 10 ? "[\"pedantic-rfc5280\"]" : "[]";
    std::string name = client ? "null" : peer_names[pick(peer_names.size())];
    std::string names = client ? List(peer_name_lists[pick(peer_name_lists.size())], false)
                               : "[]";
    if (i > 0) out += ",\n";
    out += "{\"id\": \"gen::" + std::to_string(i) + "\", \"description\": \"generated\"";
    out += ", \"features\": " + features;
    out += ", \"validation_kind\": \"" + std::string(client ? "CLIENT" : "SERVER") + "\"";
    out += ", \"trusted_certs\": " + List(trusted);
    out += ", \"untrusted_intermediates\": " +
           List(with_inter ? std::vector<std::string>{inter_pem} : std::vector<std::string>{});
    out += ", \"peer_certificate\": " + Q(Pem(leaf.cert.get()));
    out += ", \"validation_time\": " + time;
    out += ", \"signature_algorithms\": " + sig_algs;
    out += ", \"key_usage\": " + key_usage;
    out += ", \"extended_key_usage\": " + List(eku);
    out += ", \"expected_result\": \"SUCCESS\"";
    out += ", \"expected_peer_name\": " + name;
    out += ", \"expected_peer_names\": " + names;
    out += ", \"max_chain_depth\": " + depth;
    out += ", \"crls\": " + List(crls);
    out += "}";
  }
  out += "\n]}\n";
  return out;
}

}  // namespace vow::x509
