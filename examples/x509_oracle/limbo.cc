#include "examples/x509_oracle/limbo.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "examples/x509_oracle/json.h"

namespace vow::x509 {
namespace {

// Fields the reader knows, so that any other field makes a case skipped.
constexpr absl::string_view kKnownFields[] = {
    "id",
    "description",
    "conflicts_with",
    "importance",
    "features",
    "validation_kind",
    "trusted_certs",
    "untrusted_intermediates",
    "peer_certificate",
    "peer_certificate_key",
    "validation_time",
    "signature_algorithms",
    "key_usage",
    "extended_key_usage",
    "expected_result",
    "expected_peer_name",
    "expected_peer_names",
    "max_chain_depth",
    "crls",
};

// True if `v` carries no information: null, false, "", [], {}.
bool IsEmptyValue(const JsonValue& v) {
  switch (v.type()) {
    case JsonValue::Type::kNull: return true;
    case JsonValue::Type::kBool: return !v.bool_value();
    case JsonValue::Type::kString: return v.string_value().empty();
    case JsonValue::Type::kArray: return v.array().empty();
    case JsonValue::Type::kObject: return v.object().empty();
    case JsonValue::Type::kNumber: return false;
  }
  return false;
}

// Reads one testcase object; errors carry the case and the position.
class CaseReader {
 public:
  CaseReader(absl::string_view text, const JsonValue& obj, size_t index,
             std::optional<int64_t> now)
      : text_(text), obj_(obj), index_(index), now_(now) {}

  absl::StatusOr<LimboCase> Read() {
    if (!obj_.is_object()) return Error(obj_, "a testcase must be an object");
    LimboCase c;
    // The id first, so that every later error can name the case.
    const JsonValue* id = obj_.Find("id");
    if (id == nullptr) return Error(obj_, "missing required field \"id\"");
    if (!id->is_string()) return TypeError(*id, "id", "a string");
    c.id = id->string_value();

    if (const JsonValue* d = obj_.Find("description"); d != nullptr) {
      if (!d->is_string()) return TypeError(*d, "description", "a string");
      c.description = d->string_value();
    } else {
      return Error(obj_, "missing required field \"description\"");
    }

    std::vector<std::string> skip;

    // validation_kind
    absl::StatusOr<std::string> kind = RequiredString("validation_kind");
    if (!kind.ok()) return kind.status();
    if (*kind == "SERVER") {
      c.kind = LimboCase::Kind::kServer;
    } else if (*kind == "CLIENT") {
      c.kind = LimboCase::Kind::kClient;
    } else {
      return Error(*obj_.Find("validation_kind"),
                   absl::StrCat("validation_kind must be \"SERVER\" or \"CLIENT\", got \"",
                                *kind, "\""));
    }

    // Certificates.
    absl::StatusOr<std::vector<std::string>> trusted = RequiredStrings("trusted_certs");
    if (!trusted.ok()) return trusted.status();
    c.request.trusted = absl::StrJoin(*trusted, "\n");
    absl::StatusOr<std::vector<std::string>> untrusted =
        RequiredStrings("untrusted_intermediates");
    if (!untrusted.ok()) return untrusted.status();
    c.request.untrusted = absl::StrJoin(*untrusted, "\n");
    absl::StatusOr<std::string> peer = RequiredString("peer_certificate");
    if (!peer.ok()) return peer.status();
    c.request.chain = *std::move(peer);
    if (const JsonValue* k = obj_.Find("peer_certificate_key");
        k != nullptr && !k->is_null() && !k->is_string()) {
      return TypeError(*k, "peer_certificate_key", "a string or null");
    }

    // expected_result
    absl::StatusOr<std::string> expected = RequiredString("expected_result");
    if (!expected.ok()) return expected.status();
    if (*expected == "SUCCESS") {
      c.expected_success = true;
    } else if (*expected == "FAILURE") {
      c.expected_success = false;
    } else {
      return Error(*obj_.Find("expected_result"),
                   absl::StrCat("expected_result must be \"SUCCESS\" or \"FAILURE\", got \"",
                                *expected, "\""));
    }

    // validation_time
    const JsonValue* vt = obj_.Find("validation_time");
    if (vt == nullptr || vt->is_null()) {
      if (now_.has_value()) {
        c.request.time_unix = *now_;
      } else {
        skip.push_back("validation_time is null (\"now\") and no current time was given");
      }
    } else if (vt->is_string()) {
      absl::StatusOr<int64_t> t = ParseRfc3339(vt->string_value());
      if (!t.ok()) return Error(*vt, absl::StrCat("validation_time: ", t.status().message()));
      c.request.time_unix = *t;
    } else {
      return TypeError(*vt, "validation_time", "an RFC 3339 string or null");
    }

    // Names are matched as limbo's OpenSSL harness does: no partial wildcards, and
    // OpenSSL's default subject-CN fallback (it sets no NEVER_CHECK_SUBJECT).
    c.request.subject_cn_fallback = true;

    // expected_peer_name (SERVER cases): the name the verify parameters check.
    const JsonValue* name = obj_.Find("expected_peer_name");
    if (name != nullptr && !name->is_null()) {
      absl::StatusOr<PeerName> pn = ReadPeerName(*name, "expected_peer_name");
      if (!pn.ok()) return pn.status();
      c.request.host = pn->value;
      switch (pn->kind) {
        case PeerName::Kind::kDns: c.request.host_kind = VerifyRequest::HostKind::kDns; break;
        case PeerName::Kind::kIp: c.request.host_kind = VerifyRequest::HostKind::kIp; break;
        case PeerName::Kind::kEmail:
          c.request.host_kind = VerifyRequest::HostKind::kEmail;
          break;
      }
    }

    // expected_peer_names (CLIENT cases): the leaf must match every one.
    absl::StatusOr<std::vector<PeerName>> names = ReadPeerNames();
    if (!names.ok()) return names.status();
    if (names->size() > kMaxRequiredNames) {
      skip.push_back(absl::StrCat("expected_peer_names: ", names->size(),
                                  " names (the oracle checks at most ", kMaxRequiredNames,
                                  ")"));
    } else {
      c.request.required_names = *std::move(names);
    }

    // extended_key_usage -> the purpose, exactly as the harness maps it: [] sets none
    // (no EKU check at all), one of serverAuth / clientAuth / anyExtendedKeyUsage sets
    // X509_PURPOSE_SSL_SERVER / SSL_CLIENT / ANY; anything else cannot be expressed as
    // one OpenSSL purpose.
    absl::StatusOr<std::vector<std::string>> ekus = RequiredStrings("extended_key_usage");
    if (!ekus.ok()) return ekus.status();
    c.request.purpose = kNoPurpose;
    if (ekus->size() > 1) {
      skip.push_back(absl::StrCat("extended_key_usage [", absl::StrJoin(*ekus, ", "),
                                  "]: OpenSSL checks one purpose, not several EKUs"));
    } else if (ekus->size() == 1) {
      const std::string& eku = (*ekus)[0];
      if (eku == "serverAuth") {
        c.request.purpose = kPurposeSslServer;
      } else if (eku == "clientAuth") {
        c.request.purpose = kPurposeSslClient;
      } else if (eku == "anyExtendedKeyUsage") {
        c.request.purpose = kPurposeAny;
      } else {
        skip.push_back(absl::StrCat("extended_key_usage [", eku,
                                    "]: no OpenSSL purpose checks exactly this EKU"));
      }
    }

    // Constraints X509_verify_cert cannot express (the harness skips them too).
    for (const char* field : {"signature_algorithms", "key_usage"}) {
      absl::StatusOr<std::vector<std::string>> list = RequiredStrings(field);
      if (!list.ok()) return list.status();
      if (!list->empty()) {
        skip.push_back(absl::StrCat(field, " [", absl::StrJoin(*list, ", "),
                                    "]: X509_verify_cert has no such constraint"));
      }
    }
    // features: tags for consumers; the harness ignores them, so does the oracle (each
    // is still checked to be a string).
    if (const JsonValue* f = obj_.Find("features"); f != nullptr && !f->is_null()) {
      absl::StatusOr<std::vector<std::string>> features = Strings(*f, "features");
      if (!features.ok()) return features.status();
    }
    if (const JsonValue* d = obj_.Find("max_chain_depth"); d != nullptr && !d->is_null()) {
      int64_t depth;
      if (!d->AsInt64(&depth)) return TypeError(*d, "max_chain_depth", "an integer or null");
      if (depth < 0 || depth > kMaxDepth) {
        skip.push_back(absl::StrCat("max_chain_depth ", depth, " is outside 0..", kMaxDepth));
      } else {
        c.request.max_depth = static_cast<int>(depth);
      }
    }
    if (const JsonValue* crls = obj_.Find("crls"); crls != nullptr && !crls->is_null()) {
      absl::StatusOr<std::vector<std::string>> list = Strings(*crls, "crls");
      if (!list.ok()) return list.status();
      c.request.crls = absl::StrJoin(*list, "\n");
    }
    for (const auto& [field, value] : obj_.object()) {
      bool known = false;
      for (absl::string_view k : kKnownFields) known = known || field == k;
      if (!known && !IsEmptyValue(value)) {
        skip.push_back(absl::StrCat("unknown field \"", field, "\""));
      }
    }
    c.skip_reason = absl::StrJoin(skip, "; ");
    return c;
  }

 private:
  absl::Status Error(const JsonValue& at, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(
        "limbo testcase #", index_ + 1, id_for_errors(), " at ",
        JsonPosition(text_, at.offset()), ": ", what));
  }

  absl::Status TypeError(const JsonValue& at, absl::string_view field,
                         absl::string_view want) const {
    return Error(at, absl::StrCat("field \"", field, "\" must be ", want, ", not ",
                                  JsonValue::TypeName(at.type())));
  }

  std::string id_for_errors() const {
    const JsonValue* id = obj_.Find("id");
    if (id == nullptr || !id->is_string()) return "";
    return absl::StrCat(" (", id->string_value(), ")");
  }

  absl::StatusOr<std::string> RequiredString(const char* field) const {
    const JsonValue* v = obj_.Find(field);
    if (v == nullptr) return Error(obj_, absl::StrCat("missing required field \"", field, "\""));
    if (!v->is_string()) return TypeError(*v, field, "a string");
    return v->string_value();
  }

  absl::StatusOr<std::vector<std::string>> Strings(const JsonValue& v,
                                                   absl::string_view field) const {
    if (!v.is_array()) return TypeError(v, field, "an array of strings");
    std::vector<std::string> out;
    for (const JsonValue& item : v.array()) {
      if (!item.is_string()) {
        return TypeError(item, absl::StrCat(field, "[", out.size(), "]"), "a string");
      }
      out.push_back(item.string_value());
    }
    return out;
  }

  absl::StatusOr<std::vector<std::string>> RequiredStrings(const char* field) const {
    const JsonValue* v = obj_.Find(field);
    if (v == nullptr) return Error(obj_, absl::StrCat("missing required field \"", field, "\""));
    return Strings(*v, field);
  }

  absl::StatusOr<PeerName> ReadPeerName(const JsonValue& v, absl::string_view field) const {
    if (!v.is_object()) return TypeError(v, field, "an object {kind, value}");
    const JsonValue* kind = v.Find("kind");
    const JsonValue* value = v.Find("value");
    if (kind == nullptr || !kind->is_string()) {
      return Error(v, absl::StrCat(field, ".kind must be a string"));
    }
    if (value == nullptr || !value->is_string()) {
      return Error(v, absl::StrCat(field, ".value must be a string"));
    }
    const std::string& k = kind->string_value();
    PeerName name;
    name.value = value->string_value();
    if (k == "DNS") {
      name.kind = PeerName::Kind::kDns;
    } else if (k == "IP") {
      name.kind = PeerName::Kind::kIp;
    } else if (k == "RFC822") {
      name.kind = PeerName::Kind::kEmail;
    } else {
      return Error(*kind, absl::StrCat(field, ".kind must be \"DNS\", \"IP\" or \"RFC822\", got \"",
                                       k, "\""));
    }
    return name;
  }

  // expected_peer_names (absent or null counts as empty).
  absl::StatusOr<std::vector<PeerName>> ReadPeerNames() const {
    const JsonValue* v = obj_.Find("expected_peer_names");
    std::vector<PeerName> out;
    if (v == nullptr || v->is_null()) return out;
    if (!v->is_array()) return TypeError(*v, "expected_peer_names", "an array");
    for (const JsonValue& item : v->array()) {
      absl::StatusOr<PeerName> pn = ReadPeerName(item, "expected_peer_names[]");
      if (!pn.ok()) return pn.status();
      out.push_back(*std::move(pn));
    }
    return out;
  }

  absl::string_view text_;
  const JsonValue& obj_;
  size_t index_;
  std::optional<int64_t> now_;
};

std::string DescribeVerdict(const Verdict& v) {
  if (v.valid) return "valid";
  if (!v.input_error.empty()) return absl::StrCat("invalid (input error: ", v.input_error, ")");
  return absl::StrCat("invalid (error ", v.error_code, " at depth ", v.error_depth, ": ",
                      v.error_string, ")");
}

}  // namespace

absl::StatusOr<std::vector<LimboCase>> ParseLimbo(absl::string_view json,
                                                  std::optional<int64_t> now_unix) {
  absl::StatusOr<JsonValue> doc = ParseJson(json);
  if (!doc.ok()) return doc.status();
  if (!doc->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("limbo: the top level must be a testcase object or a suite object, not ",
                     JsonValue::TypeName(doc->type())));
  }
  std::vector<LimboCase> out;
  const JsonValue* testcases = doc->Find("testcases");
  if (testcases == nullptr) {
    if (doc->Find("id") == nullptr) {
      return absl::InvalidArgumentError(
          "limbo: the top-level object has neither \"testcases\" (a suite) nor \"id\" "
          "(a single testcase)");
    }
    absl::StatusOr<LimboCase> c = CaseReader(json, *doc, 0, now_unix).Read();
    if (!c.ok()) return c.status();
    out.push_back(*std::move(c));
    return out;
  }
  const JsonValue* version = doc->Find("version");
  int64_t v = 0;
  if (version == nullptr || !version->AsInt64(&v) || v != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "limbo: suite ",
        version == nullptr ? "has no \"version\""
                           : absl::StrCat("at ", JsonPosition(json, version->offset()),
                                          " has a \"version\" other than 1"),
        " (only version 1 is supported)"));
  }
  if (!testcases->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("limbo: \"testcases\" at ", JsonPosition(json, testcases->offset()),
                     " must be an array"));
  }
  out.reserve(testcases->array().size());
  for (size_t i = 0; i < testcases->array().size(); ++i) {
    absl::StatusOr<LimboCase> c =
        CaseReader(json, testcases->array()[i], i, now_unix).Read();
    if (!c.ok()) return c.status();
    out.push_back(*std::move(c));
  }
  return out;
}

LimboReport RunLimbo(const std::vector<LimboCase>& cases, const VerifyFn& verify,
                     int threads) {
  std::vector<Verdict> verdicts(cases.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < cases.size(); i = next.fetch_add(1)) {
      if (cases[i].skip_reason.empty()) verdicts[i] = verify(cases[i].request);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(threads, 1); ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();

  LimboReport r;
  for (size_t i = 0; i < cases.size(); ++i) {
    const LimboCase& c = cases[i];
    ++r.total;
    std::string id = Sanitize(c.id);
    LimboResult result;
    result.id = c.id;
    if (!c.skip_reason.empty()) {
      ++r.skipped;
      r.lines.push_back(absl::StrCat(id, ": SKIP (", Sanitize(c.skip_reason), ")"));
      result.actual = LimboResult::Actual::kSkipped;
      result.context = c.skip_reason;
      r.results.push_back(std::move(result));
      continue;
    }
    const Verdict& v = verdicts[i];
    result.actual = v.valid ? LimboResult::Actual::kSuccess : LimboResult::Actual::kFailure;
    if (!v.valid) {
      result.context = v.input_error.empty() ? v.error_string
                                             : absl::StrCat("input error: ", v.input_error);
    }
    r.results.push_back(std::move(result));
    bool match = v.valid == c.expected_success;
    if (match) {
      ++r.matched;
      r.lines.push_back(absl::StrCat(id, ": ", Sanitize(DescribeVerdict(v)), ", match"));
    } else {
      ++r.mismatched;
      r.lines.push_back(absl::StrCat(id, ": ", Sanitize(DescribeVerdict(v)),
                                     ", MISMATCH (expected ",
                                     c.expected_success ? "SUCCESS" : "FAILURE", ")"));
    }
  }
  r.summary = absl::StrCat("limbo: ", r.total, " cases: ", r.matched, " match, ",
                           r.mismatched, " MISMATCH, ", r.skipped, " skipped");
  return r;
}

std::string LimboResultsJson(const LimboReport& report, absl::string_view harness) {
  std::string out = "{\n  \"version\": 1,\n  \"harness\": ";
  AppendJsonString(harness, &out);
  out.append(",\n  \"results\": [");
  for (size_t i = 0; i < report.results.size(); ++i) {
    const LimboResult& r = report.results[i];
    out.append(i > 0 ? ",\n    {\"id\": " : "\n    {\"id\": ");
    AppendJsonString(r.id, &out);
    out.append(", \"actual_result\": ");
    switch (r.actual) {
      case LimboResult::Actual::kSuccess: out.append("\"SUCCESS\""); break;
      case LimboResult::Actual::kFailure: out.append("\"FAILURE\""); break;
      case LimboResult::Actual::kSkipped: out.append("\"SKIPPED\""); break;
    }
    out.append(", \"context\": ");
    if (r.context.has_value()) {
      AppendJsonString(*r.context, &out);
    } else {
      out.append("null");
    }
    out.push_back('}');
  }
  out.append(report.results.empty() ? "]\n}\n" : "\n  ]\n}\n");
  return out;
}

}  // namespace vow::x509
